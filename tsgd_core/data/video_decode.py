"""Decoding one video (or a folder of frames) into T uniformly sampled frames of (H, W): decord
where it imports, PyAV otherwise, with native decoder messages kept off the terminal."""

from __future__ import annotations

import functools
import os
import re
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .clips import DataError
from .video_base import (
    BACKENDS,
    IMAGE_EXTENSIONS,
    REFERENCE_FPS,
    SAMPLINGS,
    STRIDE,
    VideoDecodeError,
    check_choice,
    check_geometry,
    message_line,
    natural_key,
)


def sample_indices(num_available: int, frames: int) -> np.ndarray:
    """`frames` indices spread uniformly over [0, num_available); short videos repeat frames."""
    return np.linspace(0, num_available - 1, frames).round().astype(np.int64)


def stride_indices(num_available: int, frames: int, fps: float | None) -> np.ndarray:
    """`frames` indices STRIDE frames apart at REFERENCE_FPS (scaled by `fps`; a frame folder,
    fps None, counts as REFERENCE_FPS), centred in the video; a video shorter than the window
    repeats its first and last frames."""
    rate = fps if fps and np.isfinite(fps) and fps > 0 else REFERENCE_FPS
    step = max(1, round(STRIDE * rate / REFERENCE_FPS))
    start = (num_available - 1 - (frames - 1) * step) // 2
    return np.clip(start + step * np.arange(frames), 0, num_available - 1).astype(np.int64)


def frame_indices(num_available: int, frames: int, sampling: str, fps: float | None) -> np.ndarray:
    """The source frames a clip takes under `sampling` (one of SAMPLINGS)."""
    if sampling == "stride":
        return stride_indices(num_available, frames, fps)
    return sample_indices(num_available, frames)


def read_clip(
    path: str | Path,
    frames: int,
    size: tuple[int, int],
    backend: str = "auto",
    sampling: str = "spread",
) -> np.ndarray:
    """Decode `frames` frames of the video, resized to size=(H, W).

    Returns uint8 (T, H, W, 3) RGB. `path` is a video file or a folder of jpg/png frames.
    backend: "decord", "pyav", or "auto" (decord where it imports, PyAV when decord is missing
    or fails on the file). sampling: "spread" over the whole video or "stride" at the video's
    own speed (`frame_indices`). Raises VideoDecodeError when the video cannot be read.
    """
    frames, size = check_geometry(frames, size)
    check_choice("backend", backend, BACKENDS)
    check_choice("sampling", sampling, SAMPLINGS)
    path = Path(path)
    refuse_special_file(path)
    if path.is_dir():
        clip = _read_frame_folder(path, frames, size, sampling)
    elif not path.is_file():
        raise VideoDecodeError(path, "no such file or folder")
    elif backend == "pyav" or (backend == "auto" and not _decord_available()):
        clip = _read_with_pyav(path, frames, size, sampling)
    elif backend == "decord":
        clip = _read_with_decord(path, frames, size, sampling)
    else:
        clip = _read_with_decord_then_pyav(path, frames, size, sampling)
    if clip.shape != (frames, *size, 3) or clip.dtype != np.uint8:
        raise VideoDecodeError(
            path, f"decoded to {clip.dtype} {clip.shape}, not uint8 (T, H, W, 3)"
        )
    return np.ascontiguousarray(clip)


# what may stand where a video should, that no decoder may open: reading a named pipe blocks
# until someone writes to it, and a device may never end
_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


VIDEO_IN_PLACE = (
    "a video file",
    "a listed video must be a regular file or a folder of frames; put the video there, or "
    "leave it out of the split file",
)


def refuse_special_file(
    path: str | Path, mode: int | None = None, expected: tuple[str, str] = VIDEO_IN_PLACE
) -> None:
    """A named pipe, device or socket where a file is read is a DataError naming it (`mode`:
    the path's st_mode when known; `expected`: what should be there, and what to do); nothing
    is done for a file, folder or missing path."""
    if mode is None:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return
    kind = next((text for test, text in _SPECIAL_FILES if test(mode)), None)
    if kind is not None:
        raise DataError(f"{path} is {kind}, not {expected[0]}: {expected[1]}")


@functools.lru_cache(maxsize=1)
def _decord_available() -> bool:
    # PyAV's FFmpeg first: decord loads its own, older FFmpeg into the global symbol scope, and a
    # PyAV loaded after it then binds its libvpx calls there (WebM encoding fails with EINVAL)
    with suppress(ImportError):
        import av  # noqa: F401
    try:
        import decord  # noqa: F401
    except Exception:  # ImportError, or a broken native library
        return False
    return True


def _read_with_decord_then_pyav(
    path: Path, frames: int, size: tuple[int, int], sampling: str
) -> np.ndarray:
    try:
        return _read_with_decord(path, frames, size, sampling)
    except VideoDecodeError as first:
        try:
            return _read_with_pyav(path, frames, size, sampling)
        except VideoDecodeError as second:
            raise VideoDecodeError(path, f"{first.reason}; {second.reason}") from second


def _read_with_decord(path: Path, frames: int, size: tuple[int, int], sampling: str) -> np.ndarray:
    if not _decord_available():
        raise DataError(
            "backend='decord' needs the decord package: pip install decord, or use 'pyav'"
        )
    import decord

    failure: Exception | None = None
    # decord's C++ side logs straight to the stderr file descriptor: keep those lines out of the
    # terminal and put their gist into the one error (or warning) that names the file
    with _native_stderr_captured() as native:
        try:
            reader = decord.VideoReader(str(path), width=size[1], height=size[0])
            count = len(reader)
            fps = reader.get_avg_fps() if sampling == "stride" else None
            chosen = frame_indices(count, frames, sampling, fps)
            batch = reader.get_batch(chosen.tolist()) if count else None
        except Exception as error:  # decord raises its own DECORDError / RuntimeError
            failure = error
    if failure is not None:
        detail = _native_detail(native, path)
        raise VideoDecodeError(path, f"decord: {message_line(failure)}{detail}") from failure
    if batch is None:
        raise VideoDecodeError(path, "decord: no frames")
    # A torch bridge set elsewhere returns a tensor instead of a decord NDArray.
    return np.asarray(batch.asnumpy() if hasattr(batch, "asnumpy") else batch)


class _Fd2Redirect:
    """File descriptor 2 sent to one sink while any decoding thread needs it (reference-counted).

    The first thread in saves the real descriptor and points fd 2 at a temporary file; the last
    one out puts the real descriptor back. Swapping fd 2 per thread without this loses stderr for
    the rest of the process: two overlapping threads restore each other's saved descriptors out
    of order, and the last restore points fd 2 at a closed sink.
    """

    # re-entrant: taking it, this thread flushes sys.stderr, which may be _VisibleStderr and
    # take it again (a plain Lock deadlocked the first decode of every grid run)
    lock = threading.RLock()
    users = 0
    saved: int | None = None  # the real fd 2 while redirected
    sink: Any = None  # the temporary file fd 2 points at while redirected


@contextmanager
def _native_stderr_captured() -> Iterator[list[str]]:
    """Send what native code writes to file descriptor 2 into a list (filled on exit).

    Safe from several threads at once (see `_Fd2Redirect`). Lines are those written to fd 2
    while this block ran; where threads overlap they may include another decoder's lines.
    """
    lines: list[str] = []
    state = _Fd2Redirect
    with state.lock:
        if state.users == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded, notebook)
                saved = None
            if saved is not None:
                sink = tempfile.TemporaryFile()
                os.dup2(sink.fileno(), 2)
                state.saved, state.sink = saved, sink
        redirected = state.saved is not None
        if redirected:
            state.users += 1
            start = os.lseek(state.sink.fileno(), 0, os.SEEK_END)
    if not redirected:
        yield lines
        return
    try:
        yield lines
    finally:
        with state.lock:
            sink = state.sink
            end = os.lseek(sink.fileno(), 0, os.SEEK_END)
            text = os.pread(sink.fileno(), max(end - start, 0), start) if end > start else b""
            state.users -= 1
            if state.users == 0:
                os.dup2(state.saved, 2)
                os.close(state.saved)
                sink.close()
                state.saved, state.sink = None, None
        lines += text.decode(errors="replace").splitlines()


class _VisibleStderr:
    """sys.stderr for Python-level messages (progress bar, warnings) while decoders run: what it
    is given reaches the real stderr even while fd 2 points at the decoders' sink."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        state = _Fd2Redirect
        with state.lock:
            if state.saved is None:
                return self._inner.write(text)
            self._inner.flush()
            os.write(
                state.saved,
                text.encode(getattr(self._inner, "encoding", None) or "utf-8", errors="replace"),
            )
            return len(text)

    def flush(self) -> None:
        with _Fd2Redirect.lock:
            if _Fd2Redirect.saved is None:
                self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def python_stderr_visible() -> Iterator[None]:
    """While decoding threads redirect fd 2, keep sys.stderr's writes on the real stderr."""
    inner = sys.stderr
    try:
        real_fd2 = inner.fileno() == 2
    except (OSError, ValueError, AttributeError):  # a notebook's stream, a test's capture
        real_fd2 = False
    if not real_fd2:
        yield
        return
    sys.stderr = _VisibleStderr(inner)
    try:
        yield
    finally:
        if isinstance(sys.stderr, _VisibleStderr):
            sys.stderr = inner


def _native_detail(lines: list[str], path: Path | None = None) -> str:
    """The last native log line without its time stamp and source location, as ' (...)';
    the last one naming `path` where there is one (other decoding threads write there too)."""
    text = [re.sub(r"^\[[^\]]*\]\s*(\S+:\d+:\s*)?", "", line).strip() for line in lines]
    text = [t for t in text if t]
    if path is not None:
        text = [t for t in text if path.name in t] or text
    return f" ({text[-1]})" if text else ""


def _read_with_pyav(path: Path, frames: int, size: tuple[int, int], sampling: str) -> np.ndarray:
    try:
        import av
    except ImportError as error:
        raise DataError("reading video needs PyAV: pip install av") from error
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "PyAV: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else None
            if stream.frames > 0:
                chosen = frame_indices(stream.frames, frames, sampling, fps)
                clip = _pyav_sampled_frames(container, stream, chosen, size)
                if clip is not None:
                    return clip
                container.seek(0)
            decoded = _pyav_every_frame(container, stream, size)
    except VideoDecodeError:
        raise
    except Exception as error:  # av.FFmpegError and friends
        raise VideoDecodeError(path, f"PyAV: {message_line(error)}") from error
    if not decoded:
        raise VideoDecodeError(path, "PyAV: no frames")
    return np.stack([decoded[i] for i in frame_indices(len(decoded), frames, sampling, fps)])


def _pyav_frame(frame: Any, size: tuple[int, int]) -> np.ndarray:
    # FFmpeg's bilinear scaler, as decord uses, so both backends give the same pixels
    return frame.to_ndarray(format="rgb24", width=size[1], height=size[0])


def _pyav_every_frame(container: Any, stream: Any, size: tuple[int, int]) -> list[np.ndarray]:
    """Every frame, shrunk as it is decoded: for containers that do not give their frame count."""
    return [_pyav_frame(frame, size) for frame in container.decode(stream)]


def _pyav_sampled_frames(
    container: Any, stream: Any, chosen: np.ndarray, size: tuple[int, int]
) -> np.ndarray | None:
    """Only the sampled frames: seek to a keyframe when one lies between the decoder and the
    next sampled frame, decode on otherwise, and convert nothing else.

    A frame's index comes from its timestamp (constant frame rate); keyframes come from a pass
    over the packets (no decoding). Returns None where that does not hold (no timestamps, a
    sampled frame not found), and the caller decodes everything.
    """
    rate, base = stream.average_rate or stream.guessed_rate, stream.time_base
    if not rate or not base:
        return None
    start = stream.start_time or 0

    def index_of(pts: int) -> int:
        return round(float((pts - start) * base * rate))

    keyframes = [
        index_of(p.pts) for p in container.demux(stream) if p.is_keyframe and p.pts is not None
    ]
    container.seek(start, stream=stream, backward=True)
    targets = sorted(set(chosen.tolist()))
    found: dict[int, np.ndarray] = {}
    position = -1  # index of the last decoded frame

    def worth_seeking(target: int) -> bool:
        """A keyframe after the decoder's position and at or before the target."""
        before = [k for k in keyframes if k <= target]
        return bool(before) and before[-1] > position + 1

    while len(found) < len(targets):
        target = targets[len(found)]
        if worth_seeking(target):
            container.seek(start + int(target / rate / base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.pts is None:
                return None
            position = index_of(frame.pts)
            if position > target:  # the sampled frame is not there (variable frame rate)
                return None
            if position == target:
                found[target] = _pyav_frame(frame, size)
                if len(found) == len(targets):
                    break
                target = targets[len(found)]
                if worth_seeking(target):
                    break
        else:
            break  # end of stream
    if len(found) < len(targets):
        return None
    return np.stack([found[i] for i in chosen.tolist()])


def _read_frame_folder(path: Path, frames: int, size: tuple[int, int], sampling: str) -> np.ndarray:
    import imageio.v3 as iio

    files = sorted(
        (p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
        key=lambda p: natural_key(p.name),
    )
    if not files:
        raise VideoDecodeError(path, f"no {'/'.join(IMAGE_EXTENSIONS)} frames in the folder")
    chosen = frame_indices(len(files), frames, sampling, None)
    images: dict[int, np.ndarray] = {}
    for i in np.unique(chosen).tolist():
        try:
            images[i] = _resize_frames(_as_rgb_uint8(iio.imread(files[i]))[None], size)[0]
        except Exception as error:
            raise VideoDecodeError(files[i], f"imageio: {message_line(error)}") from error
    return np.stack([images[i] for i in chosen.tolist()])


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image[..., :3]


def _resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (T, h, w, 3) to (T, H, W, 3), bilinear with antialiasing when shrinking."""
    if frames.shape[1:3] == tuple(size):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    y = torch.nn.functional.interpolate(
        x, size=size, mode="bilinear", antialias=True, align_corners=False
    )
    return y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
