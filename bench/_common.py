"""Shared by the edge benches: the cached camera clip, a process's CPU and memory from /proc, local cameras.

The clip is what the issue's cameras send: 1080p, 25 fps, H.264 at 4 Mbit/s, a keyframe every
2 s, made once from synthetic street frames (garbagewatch.demo.footage) and cached under
bench/.cache. The RTSP server sends it as stored, looping, so every camera is a real stream.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CACHE_DIR",
    "CLIP_BITRATE",
    "CLIP_FPS",
    "CLIP_GOP",
    "CLIP_SIZE",
    "CameraFarm",
    "CpuSample",
    "camera_clip",
    "cpu_sample",
    "machine_cpu",
    "machine_line",
    "peak_rss_mb",
    "rss_mb",
    "wait_for_quiet",
]

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
CLIP_SIZE = (1920, 1080)
CLIP_FPS = 25
CLIP_GOP = 50  # a keyframe every 2 s at 25 fps
CLIP_BITRATE = 4_000_000
CLIP_SECONDS = 24  # it loops: a few keyframe intervals with and without garbage are enough


def camera_clip(seconds: int = CLIP_SECONDS) -> Path:
    """The bench camera's MP4 (made on first use, ~1 min on 2 cores; then cached)."""
    w, h = CLIP_SIZE
    path = CACHE_DIR / f"street-{w}x{h}-{CLIP_FPS}fps-gop{CLIP_GOP}-{CLIP_BITRATE // 1000}k-{seconds}s.mp4"
    if path.is_file():
        return path
    from garbagewatch.demo.footage import street_frames
    from garbagewatch.devtools.footage import encode_h264

    # 4 s clean, 16 s with a garbage pile, 4 s clean: the detector sees both in every loop.
    clean, dirty = 4.0, seconds - 8.0
    frames = street_frames(clean_s=clean, dirty_s=dirty, after_s=seconds - clean - dirty, fps=CLIP_FPS, size=CLIP_SIZE)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
    encode_h264(frames, tmp, fps=CLIP_FPS, gop=CLIP_GOP, bitrate=CLIP_BITRATE)
    os.replace(tmp, path)
    return path


CAMERA_PHASES = 10  # distinct keyframe phases: cameras 0.2 s apart within the 2 s GOP


def phased_clips(base: Path, phases: int = CAMERA_PHASES) -> list[Path]:
    """`phases` copies of `base` whose keyframes fall at different moments of the GOP (cached).

    Independent cameras are not frame-synchronous; cameras served from one file all started
    together would send their keyframes at the same instant, and every keyframe-driven analysis
    of the box would arrive in one burst every 2 s. Copy k starts `k * GOP / phases` frames into
    the file and wraps around (packets remuxed, not re-encoded): its first frames, before its
    first keyframe, cannot be decoded, as when a client joins a live camera mid-GOP; once
    looping it is the same continuous stream.
    """
    import av

    out = [CACHE_DIR / f"{base.stem}-phase{k}of{phases}.mp4" for k in range(phases)]
    if all(p.is_file() for p in out):
        return out
    with av.open(str(base)) as src:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
        step = packets[1].pts - packets[0].pts  # type: ignore[operator]
        for k, path in enumerate(out):
            offset = k * CLIP_GOP // phases
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
            with av.open(str(tmp), "w", format="mp4") as dst:
                copy = dst.add_stream_from_template(stream, opaque=True)
                for i, packet in enumerate(packets[offset:] + packets[:offset]):
                    packet.pts = packet.dts = i * step
                    packet.stream = copy
                    dst.mux(packet)
            os.replace(tmp, path)
    return out


# ---------------------------------------------------------------- /proc readings


@dataclass(frozen=True)
class CpuSample:
    """A process's CPU seconds (all threads, user + system) at a monotonic time."""

    cpu_s: float
    mono: float

    def cores_since(self, earlier: CpuSample) -> float:
        """Average cores used between `earlier` and this sample."""
        wall = self.mono - earlier.mono
        return (self.cpu_s - earlier.cpu_s) / wall if wall > 0 else 0.0


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_sample(pid: int) -> CpuSample:
    """utime + stime of `pid` from /proc/PID/stat (the process's own CPU, not its children's)."""
    import time

    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return CpuSample((utime + stime) / _TICKS, time.monotonic())


def machine_cpu() -> CpuSample:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat), at a monotonic time."""
    import time

    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return CpuSample((user + nice + system + irq + softirq + steal) / _TICKS, time.monotonic())


def wait_for_quiet(max_cores: float = 0.3, timeout: float = 120.0, sample: float = 3.0) -> float:
    """Wait until the machine's other work uses at most `max_cores` (up to `timeout` s); return what it used.

    The machine is shared: a measurement taken while a neighbour's test suite runs would measure
    the neighbour. This waits for a quiet moment but never longer than `timeout`.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        before = machine_cpu()
        time.sleep(sample)
        busy = machine_cpu().cores_since(before)
        if busy <= max_cores or time.monotonic() >= deadline:
            return busy


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"/proc/{pid}/status has no {key}")


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has had, in MB (10**6 bytes)."""
    return _status_kb(pid, "VmHWM") * 1024 / 1e6


def rss_mb(pid: int) -> float:
    """VmRSS: resident memory now, in MB (10**6 bytes)."""
    return _status_kb(pid, "VmRSS") * 1024 / 1e6


def machine_line() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, python {platform.python_version()}, load average {load}"


# ---------------------------------------------------------------- local cameras


class CameraFarm:
    """`count` RTSP cameras sending `clip` (in CAMERA_PHASES keyframe phases), over a few server processes."""

    def __init__(self, workdir: Path, clip: Path, count: int, per_server: int = 16) -> None:
        from garbagewatch.devtools.rtsp_server import RtspServer

        clips = phased_clips(clip)
        self.servers: list[RtspServer] = []
        self.urls: list[str] = []
        for first in range(0, count, per_server):
            names = {f"cam{i:03d}": clips[i % len(clips)] for i in range(first, min(count, first + per_server))}
            server = RtspServer(workdir / f"rtsp-{first // per_server}", streams=names)
            self.servers.append(server)
            self.urls += [server.url(n) for n in names]

    def __enter__(self) -> CameraFarm:
        for server in self.servers:
            server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.stop()

    @property
    def pids(self) -> Sequence[int]:
        return [s.proc.pid for s in self.servers if s.proc is not None]

    def __iter__(self) -> Iterator[str]:
        return iter(self.urls)
