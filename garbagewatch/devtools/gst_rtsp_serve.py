"""Serve MP4 files as live RTSP cameras: H.264/H.265 sent as stored (no re-encoding), in real time, looping.

A standalone script for the system Python, which has GStreamer's introspection bindings
(Debian: python3-gi, gir1.2-gst-rtsp-server-1.0); a project virtualenv usually cannot import gi.
It imports only gi and the standard library. garbagewatch.devtools.rtsp_server runs it:

    /usr/bin/python3 gst_rtsp_serve.py --port 8554 --mount cam1=/path/a.mp4 --mount cam2=/path/b.mp4

How it plays: each mount is a shared media (one pipeline per camera, every client sees the same live
picture) running `filesrc ! qtdemux ! h26Xparse ! rtph26Xpay`, paced by the pipeline clock. It loops
by rewinding the demuxer at its end without resetting anything downstream (see Looper), so RTP
timestamps keep growing like a real camera's. Clients cannot seek: a PLAY just joins the stream.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)  # before the GstRtspServer subclasses below are registered

MOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SAMPLE_ENTRY_CODEC = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "h265", b"hev1": "h265"}
CONTAINER_BOXES = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


# ---------------------------------------------------------------- MP4 probing (stdlib only)


def _boxes(f: BinaryIO, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload_start, payload_end) of the boxes between start and end."""
    out: list[tuple[bytes, int, int]] = []
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        size, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", f.read(8))
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"corrupt MP4 box {kind!r} at offset {pos}")
        out.append((kind, pos + header, pos + size))
        pos += size
    return out


def video_codec(path: Path) -> str:
    """'h264' or 'h265' for the first video track of an MP4; ValueError otherwise."""
    with path.open("rb") as f:
        end = f.seek(0, 2)
        top = _boxes(f, 0, end)
        for kind, start, stop in top:
            if kind != b"moov":
                continue
            for tkind, tstart, tstop in _boxes(f, start, stop):
                if tkind != b"trak":
                    continue
                entry = _track_sample_entry(f, tstart, tstop)
                if entry is None:
                    continue
                if entry not in SAMPLE_ENTRY_CODEC:
                    raise ValueError(
                        f"{path}: video codec {entry.decode(errors='replace')!r}, "
                        "only H.264 and H.265 are served (without re-encoding)"
                    )
                return SAMPLE_ENTRY_CODEC[entry]
    raise ValueError(f"{path}: no video track found (is it an MP4 file?)")


def _track_sample_entry(f: BinaryIO, start: int, stop: int) -> bytes | None:
    """The sample entry type (b'avc1', ...) of a video track, None for other tracks."""
    handler = entry = None
    todo = [(start, stop)]
    while todo:
        a, b = todo.pop()
        for kind, s, e in _boxes(f, a, b):
            if kind in CONTAINER_BOXES:
                todo.append((s, e))
            elif kind == b"hdlr":
                f.seek(s + 8)  # version/flags, pre_defined
                handler = f.read(4)
            elif kind == b"stsd":
                f.seek(s + 8 + 4)  # version/flags, entry_count, first entry's size
                entry = f.read(4)
    return entry if handler == b"vide" else None


# ---------------------------------------------------------------- the RTSP side


class LoopingFileFactory(GstRtspServer.RTSPMediaFactory):  # type: ignore[misc]
    def __init__(self, path: Path, codec: str) -> None:
        super().__init__()
        self.path = path
        self.codec = codec
        self.set_shared(True)  # one pipeline per camera: every client sees the same live picture
        # A camera cannot be rewound: without this a client's PLAY (ffmpeg sends Range: npt=0-) would
        # seek the shared pipeline back to the start for everyone. rtsp-media treats media that
        # publish their clock (RFC 7273) as not seekable, so PLAY just joins the running stream.
        self.set_publish_clock_mode(GstRtspServer.RTSPPublishClockMode.CLOCK_AND_OFFSET)

    def do_create_element(self, url: Any) -> Gst.Element:
        bin_ = Gst.Bin.new(None)
        src = Gst.ElementFactory.make("filesrc", "src")
        src.set_property("location", str(self.path))
        demux = Gst.ElementFactory.make("qtdemux", "demux")
        parse = Gst.ElementFactory.make(f"{self.codec}parse", "parse")
        pay = Gst.ElementFactory.make(f"rtp{self.codec}pay", "pay0")
        pay.set_property("pt", 96)
        pay.set_property("config-interval", 1)  # parameter sets with every keyframe: clients can join
        for element in (src, demux, parse, pay):
            bin_.add(element)
        src.link(demux)
        parse.link(pay)
        demux.connect("pad-added", _link_video_pad, parse)
        Looper(demux, parse.get_static_pad("sink"), pay.get_static_pad("sink"))
        return bin_


def _link_video_pad(demux: Gst.Element, pad: Gst.Pad, parse: Gst.Element) -> None:
    sink = parse.get_static_pad("sink")
    caps = pad.get_current_caps() or pad.query_caps(None)
    if not sink.is_linked() and caps.get_structure(0).get_name().startswith("video/"):
        pad.link(sink)


class Looper:
    """Plays the demuxer's file forever as one continuous stream.

    At the demuxer's EOS (swallowed) the main loop seeks the demuxer alone back to 0 with a flush,
    which resets its state; the flush events are swallowed too, so nothing downstream is reset and
    the pipeline's clock runs on. Each new segment starts again at running time 0, so an offset on
    the payloader's input moves it to where the previous loop ended: RTP timestamps keep growing.
    The probe sits on the parser's input, where only the demuxer's events arrive (nothing else
    seeks: the factory's media are not seekable).
    """

    SWALLOWED = (Gst.EventType.EOS, Gst.EventType.FLUSH_START, Gst.EventType.FLUSH_STOP)

    def __init__(self, demux: Gst.Element, demuxed: Gst.Pad, shifted: Gst.Pad) -> None:
        self.demux = demux
        self.shifted = shifted
        self.next_start: int | None = None  # running time at which the next loop starts
        demuxed.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM | Gst.PadProbeType.EVENT_FLUSH, self._on_event)

    def _on_event(self, pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        event = info.get_event()
        if event is None:
            return Gst.PadProbeReturn.OK
        if event.type == Gst.EventType.EOS:
            # Seek from the main loop, not from this streaming thread: the seek stops the demuxer's task.
            GLib.idle_add(self._rewind)
        if event.type in self.SWALLOWED:
            return Gst.PadProbeReturn.DROP
        if event.type == Gst.EventType.SEGMENT:
            segment = event.parse_segment()
            if segment.format == Gst.Format.TIME and segment.stop != Gst.CLOCK_TIME_NONE:
                offset = 0 if self.next_start is None else self.next_start - segment.base
                self.shifted.set_offset(offset)
                self.next_start = segment.base + offset + (segment.stop - segment.start)
            else:  # cannot tell where the file ends: loops would overlap in time
                print("gst_rtsp_serve: file without a duration, timestamps may jump", file=sys.stderr)
        return Gst.PadProbeReturn.OK

    def _rewind(self) -> bool:
        flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT
        if not self.demux.seek(1.0, Gst.Format.TIME, flags, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1):
            print("gst_rtsp_serve: rewinding to the start failed", file=sys.stderr, flush=True)
        return False  # once


def parse_mount(text: str) -> tuple[str, Path]:
    name, sep, location = text.partition("=")
    if not sep or not MOUNT_NAME.match(name):
        raise argparse.ArgumentTypeError(f"--mount wants NAME=PATH with NAME like cam-1, got {text!r}")
    path = Path(location)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"--mount {name}: no such file {location!r}")
    return name, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--mount", type=parse_mount, action="append", default=[], metavar="NAME=PATH")
    args = parser.parse_args(argv)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for name, path in args.mount:
        try:
            codec = video_codec(path)
        except (OSError, ValueError, struct.error) as exc:
            print(f"gst_rtsp_serve: mount {name}: {exc}", file=sys.stderr, flush=True)
            return 2
        mounts.add_factory(f"/{name}", LoopingFileFactory(path, codec))
        print(f"gst_rtsp_serve: rtsp://{args.address}:{args.port}/{name} <- {path} ({codec})", flush=True)
    if server.attach(None) == 0:
        print(f"gst_rtsp_serve: cannot listen on {args.address}:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    parent = os.getppid()

    def parent_alive() -> bool:  # a crashed demo or test run must not leave cameras behind
        if os.getppid() != parent:
            loop.quit()
            return False
        return True

    GLib.timeout_add_seconds(1, parent_alive)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
