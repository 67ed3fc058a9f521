"""Write a small UCF101-layout folder of encoded videos to try the real-data path end to end.

    python scripts/example_video_folder.py DIR [--classes 5] [--per-class 12 2 5]

The clips are the built-in motion benchmark's, written as H.264 .mp4 / MPEG-4 .avi files with
UCF101's split files; the last class is renamed PlayingDhol, a class the benchmark lacks, so a
run on the folder shows whether every step took the folder's class names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tsgd_core.data.datasets import example_video_tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the folder to write (must not exist)")
    parser.add_argument("--classes", type=int, default=5, choices=range(2, 11), metavar="2..10")
    parser.add_argument(
        "--per-class",
        type=int,
        nargs=3,
        default=(12, 2, 5),
        metavar=("TRAIN", "VAL", "TEST"),
        help="clips per class and split",
    )
    args = parser.parse_args()
    if args.root.exists():
        parser.error(f"{args.root} exists: name a new folder")
    if min(args.per_class) < 1:
        parser.error("--per-class needs at least 1 clip in each split")
    print(example_video_tree(args.root, args.classes, tuple(args.per_class)))


if __name__ == "__main__":
    main()
