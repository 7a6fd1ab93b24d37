"""`garbagewatch demo`: the whole chain on this machine, printing what happens.

    garbagewatch demo                      # generated street footage (garbage dumped, then cleaned)
    garbagewatch demo --video clip.mp4     # your own footage, served as an RTSP camera
    garbagewatch demo --url rtsp://...     # a real camera
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType

import numpy as np

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="garbagewatch demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--video", type=Path, help="a video file to serve as the camera (looped)")
    src.add_argument("--url", help="an RTSP URL of a real camera")
    p.add_argument("--data-dir", type=Path, default=Path("demo-data"),
                   help="where the run's database, evidence and spool go (default ./demo-data)")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--verbose", action="store_true", help="log every component")
    return p


def _prepare_video(video: Path, workdir: Path) -> Path:
    """An MP4 the RTSP server can serve as is: H.264/H.265 MP4 passes, anything else is re-encoded once."""
    import av

    from garbagewatch.devtools.footage import encode_h264

    if not video.is_file():
        raise SystemExit(f"--video {video}: no such file")
    try:
        with av.open(str(video)) as probe:
            codec = probe.streams.video[0].codec_context.name if probe.streams.video else ""
            container = probe.format.name
    except av.error.FFmpegError as exc:
        raise SystemExit(f"--video {video}: not a readable video: {exc}") from exc
    if codec in ("h264", "hevc") and "mp4" in container:
        return video
    print(f"  converting {video.name} ({codec or 'no video'} in {container}) to H.264 once for the camera")

    def frames() -> Iterator[np.ndarray]:
        with av.open(str(video)) as src:
            for frame in src.decode(video=0):
                yield frame.to_ndarray(format="bgr24")

    fps = 25
    return encode_h264(frames(), workdir / "camera.mp4", fps=fps, gop=fps)


def _say(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="  %(levelname)s %(name)s: %(message)s")
    from garbagewatch.demo.chain import Chain
    from garbagewatch.devtools.mosquitto import find_mosquitto
    from garbagewatch.devtools.rtsp_server import RtspServer

    try:
        find_mosquitto()
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    run_dir = args.data_dir / datetime.now().strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _say(f"garbagewatch demo: data in {run_dir}")
    server: RtspServer | None = None
    if args.url:
        url = args.url
        _say(f"camera: {url}")
    else:
        if args.video:
            video = _prepare_video(args.video, run_dir)
            _say(f"camera: your video {args.video}, served over RTSP in a loop")
        else:
            from garbagewatch.demo.footage import write_demo_footage

            video = args.data_dir / "street.mp4"  # made once, reused by later runs
            if not video.exists():
                write_demo_footage(video)
            _say("camera: generated street footage (clean 6 s, garbage dumped for 30 s, then cleaned up)")
        server = RtspServer(run_dir / "rtsp", streams={"cam-1": video}).start()
        url = server.url("cam-1")
    chain = Chain(run_dir, url, console=True)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        chain.start()
        _say(f"broker: mosquitto on 127.0.0.1:{chain.broker.port}; central and edge running "
             f"(confirm after {chain.timing.confirm_seconds:.0f} s, clear after {chain.timing.clear_seconds:.0f} s)")
        if chain.console is not None and chain.console_login:
            user, password = chain.console_login
            _say(f"console: {chain.console.url}  (sign in as {user} / {password})")
        _say("watching... (Ctrl-C to stop)")
        _watch(chain, stop, started, args.duration, generated=not (args.url or args.video))
    finally:
        _say("stopping...")
        chain.stop()
        if server:
            server.stop()
    return 0


def _watch(chain: object, stop: threading.Event, started: float, duration: float, generated: bool) -> None:
    from garbagewatch.demo.chain import Chain

    assert isinstance(chain, Chain)
    seen: dict[str, str] = {}
    notified = 0
    warned = False
    while not stop.wait(0.5):
        for order in chain.work_orders():
            oid, status = order["id"], order["status"]
            if seen.get(oid) == status:
                continue
            previous = seen.get(oid)
            seen[oid] = status
            elapsed = time.monotonic() - started
            if previous is None:
                _say(f"WORK ORDER {oid} filed after {elapsed:.0f} s ({status}): camera {order['camera']} "
                     f"zone {order['zone']}, due {order['due_at']}")
                for f in chain.evidence_of(oid):
                    _say(f"  evidence {f['role']:<15} {f['file']} (sha256 {f['sha256'][:12]}..., verified)")
            else:
                why = " (the camera saw the spot clean)" if status in ("verified", "closed") else ""
                _say(f"work order {oid}: {previous} -> {status}{why}")
        while notified < len(chain.sink.received):
            note = chain.sink.received[notified]
            notified += 1
            _say(f"notification delivered through Apprise: {note.get('title', '')!s}")
        elapsed = time.monotonic() - started
        if not seen and not warned and elapsed > (75 if generated else 90):
            warned = True
            _say("no garbage confirmed yet: the shipped model has not found garbage in this footage "
                 "(or it is not there). See models/README.md for what the model does and does not find.")
        if duration and elapsed >= duration:
            return
