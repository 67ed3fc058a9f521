"""How often the robustness stage's H.264 encoder gives another file for the same frames.

Encodes one clip `--repeats` times (grid.robustness.encode_h264, CRF 45) and counts the distinct
files and the distinct decoded pixels. Run several at once to load the machine, e.g.

    for i in 1 2 3; do python scripts/codec_determinism.py --repeats 400 & done; wait
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import torch

from tsgd_core.data.clips import to_uint8
from tsgd_core.data.video_decode import read_clip
from tsgd_core.grid.robustness import encode_h264


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--crf", type=int, default=45)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    clip = torch.rand(3, 8, 16, 16, generator=g) * 0.5 + 0.25
    clip[:, :, 4:10, 4:10] = 1.0
    pixels = np.ascontiguousarray(to_uint8(clip.permute(1, 0, 2, 3)).permute(0, 2, 3, 1).numpy())
    files, decoded = collections.Counter(), collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        for _ in range(args.repeats):
            encode_h264(pixels, path, args.crf)
            files[hashlib.md5(path.read_bytes()).hexdigest()] += 1
            frames = read_clip(path, 8, (16, 16), backend="pyav")
            decoded[hashlib.md5(frames.tobytes()).hexdigest()] += 1
    common = files.most_common(1)[0][1]
    print(
        f"{args.repeats} encodes: {len(files)} distinct files ({args.repeats - common} unlike the "
        f"most common), {len(decoded)} distinct decoded clips"
    )


if __name__ == "__main__":
    main()
