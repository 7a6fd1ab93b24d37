"""Browser-playable clips: an H.265 clip plays through an H.264 preview made once, on first view.

Browsers play H.264 in MP4 everywhere; H.265 only on some. The evidence file is never touched
(it is what the device signed); the preview is a separate, derived file under
data_dir/previews/<ab>/<sha256>.h264.mp4, named only from the checked sha256, written to a
temporary name and renamed into place, so a crash leaves no half preview behind. Concurrent
first views of one clip wait for one transcode.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from fractions import Fraction
from pathlib import Path

import av

from wire.ids import check_sha256

__all__ = ["PreviewError", "PreviewMaker", "video_codec"]

log = logging.getLogger("central.console")

# Codecs every browser plays in MP4 as they are.
_PLAYABLE = frozenset({"h264"})
_MAX_REMEMBERED = 10_000


class PreviewError(RuntimeError):
    """The clip cannot be read or transcoded; the text says why."""


def video_codec(path: Path) -> str | None:
    """The codec name of the first video stream ('h264', 'hevc', ...); None without one."""
    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            return str(streams[0].codec_context.name) if streams else None
    except (av.FFmpegError, OSError) as exc:
        raise PreviewError(f"cannot read the clip: {exc}") from None


def _even(n: float) -> int:
    return max(2, int(n) - int(n) % 2)


def _transcode(src: Path, dest: Path, max_width: int) -> None:
    with (
        av.open(str(src)) as inp,
        av.open(str(dest), mode="w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        istream = inp.streams.video[0]
        rate = istream.average_rate or Fraction(25)
        width = istream.codec_context.width
        height = istream.codec_context.height
        if width > max_width:
            width, height = max_width, round(height * max_width / width)
        width, height = _even(width), _even(height)
        ostream = out.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "23"})
        ostream.width, ostream.height = width, height
        ostream.pix_fmt = "yuv420p"
        time_base = istream.time_base or Fraction(1, 90000)
        ostream.time_base = time_base
        last_pts = -1
        for frame in inp.decode(istream):
            if frame.pts is None or frame.pts <= last_pts:
                continue  # a frame without a usable timestamp cannot be placed in the preview
            last_pts = frame.pts
            image = frame.reformat(width=width, height=height, format="yuv420p")
            image.pts = frame.pts
            image.time_base = time_base
            out.mux(ostream.encode(image))
        out.mux(ostream.encode(None))


class PreviewMaker:
    def __init__(self, root: Path, max_width: int = 1280) -> None:
        self.root = root
        self.max_width = max_width
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._codecs: dict[str, str | None] = {}

    def path_for(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / f"{sha256}.h264.mp4"

    def codec_of(self, sha256: str, source: Path) -> str | None:
        """The clip's codec (remembered: evidence files never change)."""
        if sha256 not in self._codecs:
            if len(self._codecs) >= _MAX_REMEMBERED:
                self._codecs.clear()
            self._codecs[sha256] = video_codec(source)
        return self._codecs[sha256]

    def playable(self, sha256: str, source: Path) -> tuple[Path, bool]:
        """(the file to serve, whether it is a preview): the clip itself when browsers play its
        codec, else its H.264 preview, made now if it is not there yet."""
        if self.codec_of(sha256, source) in _PLAYABLE:
            return source, False
        dest = self.path_for(sha256)
        if dest.exists():
            return dest, True
        with self._lock:
            lock = self._locks.setdefault(sha256, threading.Lock())
        with lock:
            if not dest.exists():
                self._make(source, dest, sha256)
        with self._lock:
            self._locks.pop(sha256, None)
        return dest, True

    def _make(self, source: Path, dest: Path, sha256: str) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{sha256}.{secrets.token_hex(4)}.tmp.mp4"
        try:
            _transcode(source, tmp, self.max_width)
            os.replace(tmp, dest)
        except (av.FFmpegError, OSError, IndexError, ValueError) as exc:
            raise PreviewError(f"cannot make the H.264 preview: {type(exc).__name__}: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        log.info("made the H.264 preview of clip %s (%d bytes)", sha256, dest.stat().st_size)
