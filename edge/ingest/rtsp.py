"""One camera's RTSP ingest with PyAV: packets into the ring buffer, frames only when analysed.

Garbage stays put, so a camera is analysed every `interval` seconds, not every frame. When the
stream's keyframes come at least that often, only keyframes are decoded (a keyframe decodes on
its own); otherwise every packet is decoded (P-frames need their references) but only the frame
that is due is converted to a BGR array. Either way every compressed packet goes into the ring
buffer, which the evidence clip is remuxed from.

Faults: open and read timeouts (PyAV's interrupt callback), a stall watchdog (no packet for
read_timeout), corrupt packets (counted, skipped), and reconnects with exponential backoff
and full jitter, capped at `reconnect_max` seconds. Each fault is counted in CameraStats; the
log gets one line per kind of fault, not one per retry, and never the camera's password.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import av.error
import numpy as np
import numpy.typing as npt
from av.video.codeccontext import VideoCodecContext
from av.video.frame import VideoFrame

from edge.evidence import PacketRingBuffer, StreamTemplate

log = logging.getLogger(__name__)

# A camera that stays unreachable is retried every few seconds for as long as it is down: its
# first failure (and any new kind of failure) is a warning, repeats of the same one are counted
# and reminded of at most this often, so one broken camera cannot flood the log. Corrupt packets
# likewise: all counted, a warning at most this often.
FAILURE_REMINDER_SECONDS = 60.0

# Until two keyframes have shown a camera's GOP, analyses at least this far apart are guessed to
# need keyframes only: cameras mostly send one every 1-2 s. A wrong guess costs one analysis;
# decoding every frame of every camera meanwhile costs, when a box with 32 cameras starts, about
# 4 cores for the first seconds (and a decoder's frame pool each). Shorter intervals need every
# frame on nearly any camera, so those start decoding every frame.
KEYFRAME_GUESS_MIN_INTERVAL = 1.0


@dataclass(frozen=True)
class AnalysisFrame:
    """A decoded frame that is due for analysis.

    `image` is what the detector sees: the camera frame already scaled to the size the detector
    would shrink it to (640x360 for a 1080p camera and a 384x640 model), converted straight from
    the decoder's YUV in one pass. The full-size frame is converted only for evidence
    (`full_image()`), which few analyses need: at 1080p the full conversion alone cost 5.4 ms
    against 1.3 ms for the small one, and the detector's own resize and the spot reference's
    went with it (bench/edge_capacity.py). Boxes are always in `size` (camera frame) pixels.
    """

    camera: str
    image: npt.NDArray[np.uint8]  # BGR, H x W x 3, at the analysis size
    wall: float  # time.time() when it arrived
    mono: float  # time.monotonic() when it arrived: the events' clock
    frame_size: tuple[int, int] | None = None  # (w, h) of the camera frame; None: `image` is full size
    source: VideoFrame | None = None  # the decoded camera frame (YUV), for full_image()

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the camera frame."""
        return self.frame_size or (self.image.shape[1], self.image.shape[0])

    def full_image(self) -> npt.NDArray[np.uint8]:
        """The camera frame at full size, BGR (converted now, when `image` was scaled down)."""
        if self.source is None or self.size == (self.image.shape[1], self.image.shape[0]):
            return self.image
        full: npt.NDArray[np.uint8] = self.source.to_ndarray(format="bgr24")  # type: ignore[assignment]
        return full


def analysis_size(frame_w: int, frame_h: int, input_hw: tuple[int, int] | None) -> tuple[int, int]:
    """(w, h) a frame is analysed at: the size the detector's letterbox would scale it to, never larger."""
    if input_hw is None:
        return frame_w, frame_h
    scale = min(input_hw[0] / frame_h, input_hw[1] / frame_w)
    if scale >= 1:
        return frame_w, frame_h
    return max(1, round(frame_w * scale)), max(1, round(frame_h * scale))


@dataclass
class CameraStats:
    connected: bool = False
    connects: int = 0
    reconnects: int = 0
    stalls: int = 0
    open_failures: int = 0
    corrupt_packets: int = 0
    packets: int = 0
    frames_decoded: int = 0
    analyses_offered: int = 0
    codec: str = ""
    keyframe_interval: float = 0.0
    last_packet_wall: float = 0.0
    _window: list[float] = field(default_factory=list)

    def fps_in(self, now: float) -> float:
        recent = [t for t in self._window if now - t <= 5.0]
        return len(recent) / 5.0

    def as_dict(self, now: float) -> dict[str, float]:
        return {
            "connected": float(self.connected), "reconnects": self.reconnects, "stalls": self.stalls,
            "open_failures": self.open_failures, "corrupt_packets": self.corrupt_packets,
            "fps_in": round(self.fps_in(now), 2), "analyses": self.analyses_offered,
            "keyframe_interval": round(self.keyframe_interval, 2),
        }


def backoff_delay(attempt: int, cap: float, base: float = 0.25, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return (rng or random).uniform(0.0, min(cap, base * (2 ** min(attempt, 20))))


def analysis_due(elapsed: float, interval: float, next_chance: float = 0.0) -> bool:
    """Whether a decodable frame `elapsed` s after the last analysis is the one to analyse.

    `next_chance` is how long until the next frame that could be analysed instead: the keyframe
    interval when only keyframes are decoded, 0 when every frame is. A frame is taken when it is
    nearer the due time than the next chance would be, i.e. at most half of `next_chance` early.
    Without that slack, a camera whose keyframe interval equals the analysis interval has half
    its keyframes arrive a few ms "early" (network jitter) and be skipped for the next one, 2 s
    later: the bench measured 60% of the analyses asked for (bench/edge_capacity.py).
    """
    return elapsed >= interval - next_chance / 2


class CameraStream:
    """Reads one camera in its own thread until stop()."""

    def __init__(
        self,
        camera: str,
        url: str,
        ring: PacketRingBuffer,
        on_frame: Callable[[AnalysisFrame], None],
        on_template: Callable[[StreamTemplate], None],
        *,
        interval: float = 2.0,
        open_timeout: float = 10.0,
        read_timeout: float = 5.0,
        reconnect_max: float = 5.0,
        analysis_hw: tuple[int, int] | None = None,
    ) -> None:
        """`analysis_hw`: the detector's input (h, w); frames are scaled down to fit it as they are
        converted (see AnalysisFrame). None: analysed at full size."""
        self.camera, self.url, self.ring = camera, url, ring
        self.analysis_hw = analysis_hw
        self.on_frame, self.on_template = on_frame, on_template
        self.interval, self.open_timeout, self.read_timeout = interval, open_timeout, read_timeout
        self.reconnect_max = reconnect_max
        self.stats = CameraStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera}", daemon=True)
        self._last_analysis = -1e18
        self._last_key_wall: float | None = None
        self._failures_in_row = 0
        self._failure_reasons: set[str] = set()  # logged in the current streak of failed opens
        self._last_failure_logged = -1e18
        self._last_corrupt_logged = -1e18
        self._codec_name = ""
        self._extradata = b""
        self._decoder: VideoCodecContext | None = None  # every-frame decoding (long GOPs) only

    def start(self) -> CameraStream:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if self._session():
                    attempt = 0
            except Exception as exc:  # one camera's failure never takes the daemon down
                log.error("camera %s: %s: %s (url %s)", self.camera, type(exc).__name__, self._why(exc),
                          _redact(self.url))
            self.stats.connected = False
            if self._stop.is_set():
                break
            delay = backoff_delay(attempt, self.reconnect_max)
            attempt += 1
            self.stats.reconnects += 1
            self._stop.wait(delay)

    def _session(self) -> bool:
        """One connection; returns True if it delivered packets (so backoff restarts from zero)."""
        try:
            container = av.open(
                self.url,
                options={"rtsp_transport": "tcp", "stimeout": str(int(self.read_timeout * 1e6))},
                timeout=(self.open_timeout, self.read_timeout),
            )
        except av.error.ExitError:
            # PyAV's timeout interrupted the open; FFmpeg's own text ("Immediate exit requested")
            # would not tell an installer what happened.
            self._open_failed(f"no answer within {self.open_timeout:g} s")
            return False
        except (av.error.FFmpegError, OSError) as exc:
            self._open_failed(self._why(exc))
            return False
        delivered = False
        try:
            if not container.streams.video:
                self._open_failed("the stream has no video")  # counted, and not logged on every retry
                return False
            stream = container.streams.video[0]
            self.stats.codec = stream.codec_context.name
            self._codec_name, self._extradata = self.stats.codec, bytes(stream.codec_context.extradata or b"")
            self._decoder = None  # this connection's decoding starts at its first keyframe
            self.ring.clear()  # packets of the previous connection belong to another stream
            self.on_template(StreamTemplate.from_stream(stream))
            self.stats.connected = True
            self.stats.connects += 1
            # The gap to this connection's first keyframe is the outage, not the GOP: counted into
            # the keyframe interval it would switch keyframe-only decoding off for a long while.
            self._last_key_wall = None
            after = f" after {self._failures_in_row} failed attempt(s)" if self._failures_in_row else ""
            self._failures_in_row = 0
            self._failure_reasons.clear()
            log.info("camera %s: connected (%s %dx%d)%s", self.camera, self.stats.codec, stream.width,
                     stream.height, after)
            for packet in container.demux(stream):
                if self._stop.is_set():
                    break
                if packet.size == 0:
                    continue
                delivered = True
                self._on_packet(packet)
            else:
                log.warning("camera %s: stream ended; reconnecting", self.camera)
        except av.error.ExitError:
            self.stats.stalls += 1
            log.warning("camera %s: no data for %.1f s (stall); reconnecting", self.camera, self.read_timeout)
        except (av.error.FFmpegError, OSError) as exc:
            self.stats.stalls += 1
            log.warning("camera %s: read failed: %s; reconnecting", self.camera, self._why(exc))
        finally:
            self.stats.connected = False  # with the stall or failure counted, not after the close
            container.close()
        return delivered

    def _why(self, exc: BaseException) -> str:
        """An error's text for the log, without the camera's password.

        FFmpeg's errors end with the URL they were opened with, credentials included: only
        the reason (strerror) is kept, and any remaining copy of the URL is redacted.
        """
        text = getattr(exc, "strerror", None) or str(exc)
        return str(text).replace(self.url, _redact(self.url))

    def _open_failed(self, why: str) -> None:
        """Count a failed open; log it when this streak of failures has not logged that reason yet."""
        self.stats.open_failures += 1
        self._failures_in_row += 1
        now = time.monotonic()
        new = why not in self._failure_reasons and len(self._failure_reasons) < 8  # bounded
        if new or now - self._last_failure_logged >= FAILURE_REMINDER_SECONDS:
            streak = f" ({self._failures_in_row} attempts in a row)" if self._failures_in_row > 1 else ""
            log.warning("camera %s: cannot open %s: %s%s", self.camera, _redact(self.url), why, streak)
            self._failure_reasons.add(why)
            self._last_failure_logged = now
        else:
            log.debug("camera %s: cannot open %s: %s (again)", self.camera, _redact(self.url), why)

    def _on_packet(self, packet: av.Packet) -> None:  # type: ignore[type-arg]
        wall, mono = time.time(), time.monotonic()
        self.stats.packets += 1
        self.stats.last_packet_wall = wall
        window = self.stats._window
        window.append(wall)
        if len(window) > 400:
            del window[:200]
        self.ring.append(packet, wall=wall)
        if packet.is_keyframe:
            if self._last_key_wall is not None:
                gap = wall - self._last_key_wall
                ki = self.stats.keyframe_interval
                self.stats.keyframe_interval = gap if ki == 0 else 0.7 * ki + 0.3 * gap
            self._last_key_wall = wall
        ki = self.stats.keyframe_interval
        keyframes_only = ki <= self.interval * 1.05 if ki > 0 else self.interval >= KEYFRAME_GUESS_MIN_INTERVAL
        due = analysis_due(mono - self._last_analysis, self.interval,
                           self.stats.keyframe_interval if keyframes_only else 0.0)
        if keyframes_only and not packet.is_keyframe:
            return  # never decoded: the next analysis uses the next keyframe
        if keyframes_only and not due:
            return
        try:
            frames = self._decode(packet, keyframes_only)
        except av.error.FFmpegError as exc:
            self.stats.corrupt_packets += 1
            # A broken encoder can send many a second: a warning now and then, every one counted.
            now = time.monotonic()
            if now - self._last_corrupt_logged >= FAILURE_REMINDER_SECONDS:
                self._last_corrupt_logged = now
                log.warning("camera %s: corrupt packet skipped: %s (%d so far)", self.camera,
                            self._why(exc), self.stats.corrupt_packets)
            else:
                log.debug("camera %s: corrupt packet skipped: %s", self.camera, self._why(exc))
            return
        for frame in frames:
            self.stats.frames_decoded += 1
            if not due:
                continue
            # The only conversion: frames that are analysed, scaled as they are converted. bgr24 is uint8.
            width, height = analysis_size(frame.width, frame.height, self.analysis_hw)
            if (width, height) != (frame.width, frame.height):
                frame_bgr = frame.reformat(width=width, height=height, format="bgr24")  # one swscale pass
            else:
                frame_bgr = frame.reformat(format="bgr24")
            image: npt.NDArray[np.uint8] = frame_bgr.to_ndarray()  # type: ignore[assignment]
            self._last_analysis = mono
            due = False
            self.stats.analyses_offered += 1
            self.on_frame(AnalysisFrame(self.camera, image, wall, mono, (frame.width, frame.height), frame))

    def _decode(self, packet: av.Packet, keyframes_only: bool) -> list[VideoFrame]:  # type: ignore[type-arg]
        """The frames of `packet`.

        A keyframe analysed on its own is decoded by a decoder made for it and dropped after it:
        a long-lived decoder keeps a pool of full-size frames (measured: 2.5 MB a camera at 1080p,
        40 MB for 16 cameras) that one frame every few seconds has no use for, and opening one
        costs nothing measurable beside decoding a keyframe (45 ms of CPU at 1080p, 4 Mbit/s).
        Every-frame decoding (keyframes rarer than analyses) keeps one decoder, started at a keyframe.
        """
        if keyframes_only:
            self._decoder = None
            # One thread: a box decodes many cameras' keyframes at once, so slice threads add
            # only their wake-ups and hand-overs (about 2 ms of CPU a 1080p keyframe here).
            decoder = self._new_decoder(threads=1)
            return [*decoder.decode(packet), *decoder.decode(None)]
        if self._decoder is None:
            if not packet.is_keyframe:
                return []  # nothing before a keyframe can be decoded
            self._decoder = self._new_decoder()
        return self._decoder.decode(packet)

    def _new_decoder(self, threads: int = 0) -> VideoCodecContext:
        decoder = av.CodecContext.create(self._codec_name, "r")
        if not isinstance(decoder, VideoCodecContext):
            raise ValueError(f"codec {self._codec_name} is not a video codec")
        decoder.thread_count = threads  # 0: FFmpeg picks
        decoder.extradata = self._extradata or None
        return decoder


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.split("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
