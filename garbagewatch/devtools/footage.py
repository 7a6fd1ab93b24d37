"""Make camera-like MP4 footage for the demo and the tests.

The clips are H.264 (or H.265) without B-frames: the RTSP server sends them as they are and the
edge cuts evidence clips by remuxing packets, and both are simpler and exact when decode order
equals presentation order. Keyframes come at a fixed interval (no scene-cut keyframes) so a clip
behaves like a real camera with a fixed GOP.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeAlias

import av
import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["ImageItem", "clip_from_images", "encode_h264", "letterbox"]

BgrImage: TypeAlias = npt.NDArray[np.uint8]
ImageItem: TypeAlias = tuple[str | Path | BgrImage, float]
"""One still image (a path or a BGR array) and how many seconds to hold it."""

LETTERBOX_FILL = (114, 114, 114)  # the grey YOLO letterboxing uses, so padding looks like "nothing"
NOISE_FRAMES = 8  # precomputed noise patterns cycled over frames: real P-frames at little CPU cost
NOISE_AMPLITUDE = 3  # +-3 levels of 255: invisible, but enough to make every frame differ


def _codec_options(codec: str, gop: int) -> dict[str, str]:
    # bframes=0: decode order == presentation order (see module docstring).
    # scenecut off / fixed keyint: one IDR every `gop` frames, like a camera.
    if codec == "libx264":
        return {
            "preset": "veryfast",
            "profile": "main",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0",
        }
    if codec == "libx265":
        return {
            "preset": "veryfast",
            "x265-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:log-level=error",
        }
    return {}


def encode_h264(
    frames: Iterable[BgrImage],
    path: str | Path,
    fps: int = 25,
    gop: int = 50,
    bitrate: int | None = None,
    size: tuple[int, int] | None = None,
    codec: str = "libx264",
) -> Path:
    """Encode BGR frames into an MP4 at `path` and return the path.

    `size` is (width, height); by default the first frame's size. Frames of another size are
    scaled to it. `codec` may be "libx265" for H.265 footage. `bitrate` in bits/s; by default the
    encoder's constant-quality mode.
    """
    out = Path(path)
    if fps <= 0 or gop <= 0:
        raise ValueError(f"fps and gop must be positive, got fps={fps} gop={gop}")
    images = iter(frames)
    first = next(images, None)
    if first is None:
        raise ValueError(f"no frames to encode into {out}")
    width, height = size or (int(first.shape[1]), int(first.shape[0]))
    width, height = width - width % 2, height - height % 2  # yuv420p needs even dimensions
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        _encode(itertools.chain([first], images), out, fps, gop, (width, height), bitrate, codec)
    except BaseException:
        out.unlink(missing_ok=True)  # no half-written clip left behind
        raise
    return out


def _encode(
    frames: Iterable[BgrImage],
    out: Path,
    fps: int,
    gop: int,
    size: tuple[int, int],
    bitrate: int | None,
    codec: str,
) -> None:
    width, height = size
    time_base = Fraction(1, fps)
    with av.open(str(out), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps, options=_codec_options(codec, gop))
        if not isinstance(stream, av.VideoStream):
            raise ValueError(f"{codec} is not a video codec")
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = 0
        if bitrate:
            stream.codec_context.bit_rate = bitrate
        for n, image in enumerate(frames):
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"frame {n}: expected an HxWx3 BGR array, got shape {image.shape}")
            if image.shape[1] != width or image.shape[0] != height:
                image = np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            frame.pts = n
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def letterbox(image: BgrImage, size: tuple[int, int]) -> BgrImage:
    """Scale `image` to fit (width, height) keeping its aspect ratio, padding with grey."""
    width, height = size
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = np.asarray(cv2.resize(image, (new_w, new_h), interpolation=interpolation))
    canvas = np.full((height, width, 3), LETTERBOX_FILL, dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


def _load(item: str | Path | BgrImage, index: int) -> BgrImage:
    image: npt.NDArray[Any]
    if isinstance(item, np.ndarray):
        image = item
    else:
        read = cv2.imread(str(item), cv2.IMREAD_COLOR)
        if read is None:
            raise ValueError(f"item {index}: cannot read an image from {item}")
        image = np.asarray(read)
    if image.ndim == 2:
        image = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"item {index}: expected a BGR image, got shape {image.shape}")
    return image.astype(np.uint8, copy=False)


def _held_frames(
    items: Sequence[ImageItem], size: tuple[int, int], fps: int, seed: int
) -> Iterable[BgrImage]:
    rng = np.random.default_rng(seed)
    width, height = size
    noise = [
        rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, (height, width, 3), dtype=np.int16)
        for _ in range(NOISE_FRAMES)
    ]
    n = 0
    for index, (item, seconds) in enumerate(items):
        base = letterbox(_load(item, index), size).astype(np.int16)
        for _ in range(max(1, round(seconds * fps))):
            # sensor noise: a still image would otherwise encode to empty P-frames
            yield np.clip(base + noise[n % NOISE_FRAMES], 0, 255).astype(np.uint8)
            n += 1


def clip_from_images(
    items: Sequence[ImageItem],
    path: str | Path,
    size: tuple[int, int] = (1280, 720),
    fps: int = 10,
    gop: int = 20,
    codec: str = "libx264",
    seed: int = 0,
) -> Path:
    """Hold each still image for its seconds, letterboxed into `size`, and encode them into an MP4.

    The frames (noise included) are the same for the same `seed`. Returns the path.
    """
    if not items:
        raise ValueError("clip_from_images needs at least one (image, seconds) item")
    for index, (_, seconds) in enumerate(items):
        if not seconds > 0:
            raise ValueError(f"item {index}: seconds must be positive, got {seconds}")
    return encode_h264(_held_frames(items, size, fps, seed), path, fps=fps, gop=gop, size=size, codec=codec)
