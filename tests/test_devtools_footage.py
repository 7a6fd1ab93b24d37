"""garbagewatch.devtools.footage: camera-like MP4 clips made from frames or still images."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from garbagewatch.devtools.footage import LETTERBOX_FILL, clip_from_images, encode_h264, letterbox


def probe(path: Path) -> tuple[str, tuple[int, int], list[av.Packet], int]:  # type: ignore[type-arg]
    """(codec name, (width, height), demuxed packets, decoded frame count) of an MP4."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        frames = sum(len(stream.codec_context.decode(p)) for p in packets)
        frames += len(stream.codec_context.decode(None))
        return stream.codec_context.name, (stream.width, stream.height), packets, frames


def moving_square(n: int, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    width, height = size
    frames = []
    for i in range(n):
        frame = np.zeros((height, width, 3), np.uint8)
        x = (i * 7) % (width - 40)
        frame[100:140, x : x + 40] = (0, 0, 255)
        frames.append(frame)
    return frames


def test_encode_h264_fixed_gop_and_no_b_frames(tmp_path: Path) -> None:
    path = encode_h264(moving_square(30), tmp_path / "a.mp4", fps=10, gop=10)
    codec, size, packets, frames = probe(path)
    assert (codec, size, frames) == ("h264", (320, 240), 30)
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 10, 20]
    pts = [p.pts or 0 for p in packets]
    # no B-frames: decode order is presentation order
    assert pts == sorted(pts) and all(p.pts == p.dts for p in packets)


def test_encode_h264_scales_to_size_and_h265(tmp_path: Path) -> None:
    path = encode_h264(moving_square(5), tmp_path / "b.mp4", size=(160, 120), codec="libx265", gop=5)
    codec, size, _, frames = probe(path)
    assert (codec, size, frames) == ("hevc", (160, 120), 5)


def test_encode_h264_rejects_nothing_and_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frames"):
        encode_h264([], tmp_path / "empty.mp4")
    with pytest.raises(ValueError, match="frame 0"):
        encode_h264([np.zeros((10, 10), np.uint8)], tmp_path / "gray.mp4")


def test_letterbox_keeps_aspect_and_pads_grey() -> None:
    tall = np.full((200, 100, 3), 255, np.uint8)
    boxed = letterbox(tall, (320, 180))
    assert boxed.shape == (180, 320, 3)
    assert tuple(boxed[90, 0]) == LETTERBOX_FILL and tuple(boxed[90, 319]) == LETTERBOX_FILL
    white_cols = np.flatnonzero((boxed[90] == 255).all(axis=1))
    assert len(white_cols) == 90  # 100x200 scaled by 0.9 -> 90 wide, centred
    assert white_cols[0] == (320 - 90) // 2


def test_clip_from_images_holds_each_image(tmp_path: Path) -> None:
    red = np.zeros((90, 160, 3), np.uint8)
    red[..., 2] = 200
    blue = np.zeros((300, 300, 3), np.uint8)
    blue[..., 0] = 200
    path = clip_from_images([(red, 1.0), (blue, 0.5)], tmp_path / "c.mp4", size=(320, 180), fps=10, gop=5)
    codec, size, _, frames = probe(path)
    assert (codec, size, frames) == ("h264", (320, 180), 15)
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert decoded[5][90, 160, 2] > 150  # red held for 10 frames
    assert decoded[12][90, 160, 0] > 150  # then blue
    # sensor noise: consecutive frames of a still differ a little, so P-frames carry data
    assert not np.array_equal(decoded[3], decoded[4])
    assert np.abs(decoded[3].astype(int) - decoded[4].astype(int)).mean() < 4


def test_clip_from_images_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        clip_from_images([], tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="cannot read"):
        clip_from_images([(tmp_path / "missing.jpg", 1.0)], tmp_path / "x.mp4")
    ok = np.zeros((90, 160, 3), np.uint8)
    with pytest.raises(ValueError, match=r"item 1: cannot read .*missing\.jpg"):
        clip_from_images([(ok, 0.5), (tmp_path / "missing.jpg", 0.5)], tmp_path / "half.mp4", size=(160, 90))
    assert not (tmp_path / "half.mp4").exists(), "no half-written clip left behind"
    with pytest.raises(ValueError, match="seconds must be positive"):
        clip_from_images([(np.zeros((4, 4, 3), np.uint8), 0.0)], tmp_path / "x.mp4")


def test_clip_from_dataset_images(tmp_path: Path, dataset_dir: Path) -> None:
    images = sorted((dataset_dir / "valid" / "images").glob("*.jpg"))[:2]
    assert images, f"no images under {dataset_dir / 'valid' / 'images'}"
    path = clip_from_images([(p, 0.5) for p in images], tmp_path / "d.mp4", size=(640, 360), fps=10)
    _, size, _, frames = probe(path)
    assert (size, frames) == ((640, 360), 10)
