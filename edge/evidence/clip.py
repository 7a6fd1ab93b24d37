"""MP4 clips cut by remuxing buffered packets: no decoding, no re-encoding (H.264 and H.265).

The output stream copies the input stream's codec parameters (extradata included). `StreamTemplate`
keeps a detached copy of them, because an av stream must never be touched after its container is
closed (PyAV crashes the process), and the ingest closes and reopens containers on reconnects.

The moov box goes before the media data (players can start before the whole file is there) by
reserving room for it at the start of the file (the mp4 muxer's moov_size), not with faststart,
which writes the file, reads it back and writes it again: a third of the CPU time of a 20 s
clip at 4 Mbit/s (bench/clip.py). The reservation is a safe upper bound on the moov's size;
should it ever be short, the clip is written again with faststart.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
from av.video.stream import VideoStream

from edge.evidence.ringbuffer import BufferedPacket

__all__ = ["ClipError", "StreamTemplate", "write_clip"]

log = logging.getLogger(__name__)


class ClipError(RuntimeError):
    """A clip could not be written; the text says which and why."""


class StreamTemplate:
    """The codec parameters of a video stream, valid after its container is closed.

    They live in a stream of a never-written in-memory output container, which is exactly what
    `add_stream_from_template` wants and owns no decoder or encoder.
    """

    def __init__(self, stream: VideoStream) -> None:
        if stream.type != "video":
            raise ValueError(f"a clip template must be a video stream, not {stream.type}")
        self._holder = av.open(io.BytesIO(), "w", format="mp4")
        # opaque=True: copy the template's own codec, so no encoder for it has to be installed.
        self.stream: VideoStream = self._holder.add_stream_from_template(stream, opaque=True)
        self.codec_name: str = stream.codec_context.name
        self.width: int = stream.codec_context.width
        self.height: int = stream.codec_context.height
        self.time_base: Fraction | None = stream.time_base
        self.extradata: bytes = bytes(stream.codec_context.extradata or b"")

    @classmethod
    def from_stream(cls, stream: VideoStream) -> StreamTemplate:
        return cls(stream)

    def same_as(self, other: StreamTemplate) -> bool:
        """True when packets made for `other` can go into a clip made from this template."""
        return (self.codec_name, self.width, self.height, self.extradata) == (
            other.codec_name,
            other.width,
            other.height,
            other.extradata,
        )

    def __repr__(self) -> str:
        return f"StreamTemplate({self.codec_name} {self.width}x{self.height}, tb={self.time_base})"


# The moov box's size is a few tables with one entry per sample at most (stsz 4 bytes, stco/co64
# up to 8, stts 8, ctts 8, stss 4, stsc 12, sdtp 1: 45), plus fixed boxes and the codec's extradata.
_MOOV_PER_PACKET = 64
_MOOV_FIXED = 8192


def _moov_reserve(packets: Sequence[BufferedPacket], extradata: bytes) -> int:
    return _MOOV_FIXED + len(extradata) + _MOOV_PER_PACKET * len(packets)


def _rebased(item: BufferedPacket, tb: Fraction, first: int, last_dts: int) -> tuple[int, int]:
    """(pts, dts) of `item` in `tb`, shifted by `first`; dts kept above `last_dts`, pts never below dts."""
    pts = _in_tb(item.pts, item.time_base, tb) - first if item.pts is not None else None
    dts = _in_tb(item.dts, item.time_base, tb) - first if item.dts is not None else pts
    dts = last_dts + 1 if dts is None else max(dts, last_dts + 1)
    pts = dts if pts is None else max(pts, dts)
    return pts, dts


def _in_tb(value: int, src: Fraction, dst: Fraction) -> int:
    # `is` first: buffered packets share their stream's Fraction (BufferedPacket.copy_of), and
    # Fraction.__eq__ per packet was a tenth of a clip's CPU time.
    return value if src is dst or src == dst else round(value * src / dst)


def _mux(packets: Sequence[BufferedPacket], template: VideoStream, out_path: Path, tb: Fraction, first: int,
         options: dict[str, str]) -> None:
    with av.open(str(out_path), "w", format="mp4", options=options) as out:
        stream = out.add_stream_from_template(template, opaque=True)
        last_dts = -1
        for item in packets:
            pts, dts = _rebased(item, tb, first, last_dts)
            last_dts = dts
            packet = av.Packet(item.data)
            packet.pts, packet.dts, packet.time_base = pts, dts, tb
            if item.duration is not None:
                packet.duration = _in_tb(item.duration, item.time_base, tb)
            packet.is_keyframe = item.is_keyframe
            packet.stream = stream
            out.mux(packet)


def write_clip(
    packets: Sequence[BufferedPacket],
    stream_template: StreamTemplate | VideoStream,
    path: Path,
) -> Path:
    """Remux `packets` (starting at a keyframe) into an MP4 at `path`; return `path`.

    Timestamps are rebased so the first dts is 0, and dts made strictly increasing (a camera's
    glitch must not make the muxer refuse the whole clip). The file is written beside `path`
    under a temporary name, fsynced and renamed, so `path` is either complete or absent.
    """
    if not packets:
        raise ClipError(f"{path.name}: no packets to write")
    if not packets[0].is_keyframe:
        raise ClipError(f"{path.name}: the first packet is not a keyframe")
    if isinstance(stream_template, StreamTemplate):
        template, extradata = stream_template.stream, stream_template.extradata
    else:
        template, extradata = stream_template, bytes(stream_template.codec_context.extradata or b"")
    tb = packets[0].time_base
    first_ts = packets[0].dts if packets[0].dts is not None else packets[0].pts
    if first_ts is None:
        raise ClipError(f"{path.name}: the first packet has neither dts nor pts")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        try:
            _mux(packets, template, tmp, tb, first_ts, {"moov_size": str(_moov_reserve(packets, extradata))})
        except av.FFmpegError as exc:
            log.warning("clip %s: writing with room reserved for the moov failed (%s); again with faststart",
                        path.name, exc)
            _mux(packets, template, tmp, tb, first_ts, {"movflags": "+faststart"})
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (av.FFmpegError, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        raise ClipError(f"{path.name}: remuxing {len(packets)} packets failed: {exc}") from exc
    log.debug("clip %s: %d packets, %d bytes", path.name, len(packets), path.stat().st_size)
    return path
