"""CPU time to cut a 20 s evidence clip from the packet ring buffer, beside re-encoding the same 20 s.

    python3 -m bench.clip                # ~2 min on 2 cores; last line: clip OURS ms baseline BASE ms ratio R

The ring buffer (edge.evidence.PacketRingBuffer) is filled with the bench camera's packets
(1080p, 25 fps, H.264 at 4 Mbit/s, a keyframe every 2 s; bench/_common.py), demuxed from the
MP4 and stamped with the wall times they would have arrived at. Ours: `packets_between` plus
`write_clip` (remux, no decoding; the file fsynced and renamed) of the 20 s before the newest
packet. Baseline: what a clip costs without a compressed ring buffer, decoding those 20 s and
encoding them again with libx264 (preset veryfast, the same bitrate and GOP). CPU time is
time.process_time() of this process (all its threads, user + system), median of the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av

from bench._common import CLIP_BITRATE, CLIP_FPS, CLIP_GOP, camera_clip, machine_line
from edge.evidence import BufferedPacket, PacketRingBuffer, StreamTemplate, write_clip

__all__ = ["fill_ring", "main"]

T0 = 1_700_000_000.0  # wall time of the first packet: any fixed value


def fill_ring(mp4: Path, seconds: float) -> tuple[PacketRingBuffer, StreamTemplate, float]:
    """A ring buffer holding `seconds` of `mp4`'s packets (looped), its stream template, the newest wall time."""
    ring = PacketRingBuffer(preroll_seconds=seconds + 5, max_bytes=1 << 30)
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        template = StreamTemplate.from_stream(stream)
        tb = stream.time_base
        assert tb is not None
        packets = [p for p in container.demux(stream) if p.size]
        copies = [BufferedPacket.copy_of(p, wall=0.0) for p in packets]
    loop_ticks = round(len(copies) / CLIP_FPS / tb)  # the clip's length in time-base units
    newest = T0
    for lap in range((int(seconds * CLIP_FPS) // len(copies)) + 2):
        for p in copies:
            shift = lap * loop_ticks
            pts = None if p.pts is None else p.pts + shift
            wall = T0 + float((pts or 0) * Fraction(tb))
            ring.append_buffered(BufferedPacket(p.data, pts, None if p.dts is None else p.dts + shift,
                                                p.duration, p.time_base, p.is_keyframe, wall))
            newest = wall
            if newest - T0 >= seconds + 2:
                return ring, template, newest
    return ring, template, newest


def ours_ms(ring: PacketRingBuffer, template: StreamTemplate, newest: float, seconds: float, out: Path) -> float:
    """One clip into `out` (a new file, as in the daemon, which cuts each clip in a new folder)."""
    out.unlink(missing_ok=True)  # outside the timing: freeing the last run's file is not this run's work
    t0 = time.process_time()
    packets = ring.packets_between(newest - seconds, newest)
    write_clip(packets, template, out)
    return (time.process_time() - t0) * 1000


def faststart_ms(ring: PacketRingBuffer, template: StreamTemplate, newest: float, seconds: float,
                 out: Path) -> float:
    """The same remux written the way write_clip did before (movflags +faststart: the file is written,
    read back and written again with the moov first), fsynced and renamed likewise: for comparison."""
    out.unlink(missing_ok=True)
    t0 = time.process_time()
    packets = ring.packets_between(newest - seconds, newest)
    tmp = out.with_name(f".{out.name}.tmp")
    tb, first = packets[0].time_base, packets[0].dts or 0
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream_from_template(template.stream, opaque=True)
        for item in packets:
            packet = av.Packet(item.data)
            packet.pts = None if item.pts is None else item.pts - first
            packet.dts = None if item.dts is None else item.dts - first
            packet.time_base, packet.is_keyframe, packet.stream = tb, item.is_keyframe, stream
            container.mux(packet)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    return (time.process_time() - t0) * 1000


def baseline_ms(ring: PacketRingBuffer, template: StreamTemplate, newest: float, seconds: float,
                out: Path) -> float:
    t0 = time.process_time()
    packets = ring.packets_between(newest - seconds, newest)
    decoder = av.CodecContext.create(template.codec_name, "r")
    decoder.extradata = template.extradata
    with av.open(str(out), "w", format="mp4") as container:
        enc = container.add_stream("libx264", rate=CLIP_FPS, options={
            "preset": "veryfast", "x264-params": f"keyint={CLIP_GOP}:min-keyint={CLIP_GOP}:scenecut=0"})
        enc.width, enc.height, enc.pix_fmt = template.width, template.height, "yuv420p"
        enc.codec_context.bit_rate = CLIP_BITRATE
        for i, item in enumerate(packets):
            for frame in decoder.decode(av.Packet(item.data)):  # type: ignore[attr-defined]
                frame.pts = None
                container.mux(enc.encode(frame))
            del i
        for frame in decoder.decode(None):  # type: ignore[attr-defined]
            container.mux(enc.encode(frame))
        container.mux(enc.encode(None))
    return (time.process_time() - t0) * 1000


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.clip", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="clip length")
    ap.add_argument("--runs", type=int, default=15, help="timed runs of ours (after 2 warm-up)")
    ap.add_argument("--baseline-runs", type=int, default=2)
    args = ap.parse_args(argv)
    print(f"# {machine_line()}", flush=True)
    ring, template, newest = fill_ring(camera_clip(), args.seconds)
    cut = ring.packets_between(newest - args.seconds, newest)
    mb = sum(len(p.data) for p in cut) / 1e6
    print(f"# ring {ring.nbytes / 1e6:.1f} MB, {ring.span_seconds():.1f} s; the cut: {len(cut)} packets, "
          f"{mb:.1f} MB, {cut[-1].wall - cut[0].wall:.1f} s from its keyframe", flush=True)
    with tempfile.TemporaryDirectory(prefix="gw-bench-clip-") as tmp:
        out = Path(tmp) / "clip.mp4"
        ours, fast = [], []
        for _ in range(args.runs + 2):  # interleaved, so load from elsewhere hits both alike
            ours.append(ours_ms(ring, template, newest, args.seconds, out))
            fast.append(faststart_ms(ring, template, newest, args.seconds, Path(tmp) / "faststart.mp4"))
        ours, fast = ours[2:], fast[2:]
        size = out.stat().st_size
        with av.open(str(out)) as check:
            frames = sum(1 for p in check.demux(check.streams.video[0]) if p.size)
        base = [baseline_ms(ring, template, newest, args.seconds, Path(tmp) / "re.mp4")
                for _ in range(args.baseline_runs)]
    o, b = statistics.median(ours), statistics.median(base)
    print(f"ours: remux, {args.runs} runs: median {o:.1f} ms CPU (min {min(ours):.1f}, max {max(ours):.1f}); "
          f"clip {size / 1e6:.1f} MB, {frames} frames", flush=True)
    print(f"for comparison, the same remux with movflags +faststart (write_clip before): "
          f"median {statistics.median(fast):.1f} ms CPU", flush=True)
    print(f"baseline: decode + libx264 veryfast, {args.baseline_runs} runs: median {b:.0f} ms CPU", flush=True)
    print(f"clip {o:.1f} ms baseline {b:.0f} ms ratio {b / o:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
