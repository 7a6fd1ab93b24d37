"""How fast a detector file runs on this CPU: the model alone, and with the edge's pre/post-processing.

- model only: `InferenceSession.run` on an already prepared tensor, with the session options
  edge.detect.OnnxDetector uses (intra-op threads, one inter-op thread, sequential, no spinning);
- with pre/post-processing: `OnnxDetector.detect` on a BGR frame: letterbox, colour conversion,
  the run, decoding, NMS, boxes back to frame pixels, at the edge's default threshold (0.35).

Timings are medians of single runs: the machine is shared and a mean would mostly measure the
neighbours. Several models measured together are interleaved run by run, so a burst of load
elsewhere hits all of them alike and their ratios stay meaningful.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.detect import OnnxDetector, letterbox

Frame = npt.NDArray[np.uint8]
# The edge's default operating threshold (edge.config.DetectorConfig.confidence): detections
# at or above it are what the edge acts on, so errors, recall and speed are measured there.
EDGE_CONFIDENCE = 0.35


@dataclass(frozen=True)
class Speed:
    model: str
    input_hw: tuple[int, int]
    threads: int
    model_only_ips: float  # images per second, session.run only
    with_pre_post_ips: float  # images per second, OnnxDetector.detect on the frames
    runs: int


def edge_session(model: Path, threads: int) -> ort.InferenceSession:
    """An onnxruntime session configured as edge.detect.OnnxDetector configures its own."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])


def _tensor(frame: Frame, input_hw: tuple[int, int]) -> npt.NDArray[np.float32]:
    padded, _ = letterbox(frame, input_hw)
    return np.ascontiguousarray(padded[:, :, ::-1].transpose(2, 0, 1)[None], np.float32) / 255.0


def measure(models: Sequence[Path], frames: Sequence[Frame], *, threads: int, runs: int = 30,
            warmup: int = 3) -> list[Speed]:
    """Speed of each model at its own input size on `frames` (cycled), interleaved run by run."""
    if not frames:
        raise ValueError("speed needs at least one frame")
    detectors = [OnnxDetector(m, conf_default=EDGE_CONFIDENCE, intra_op_threads=threads) for m in models]
    sessions = [edge_session(m, threads) for m in models]
    tensors = [[_tensor(f, d.info.input_hw) for f in frames] for d in detectors]
    names = [s.get_inputs()[0].name for s in sessions]
    model_times: list[list[float]] = [[] for _ in models]
    full_times: list[list[float]] = [[] for _ in models]
    for i in range(warmup + runs):
        k = i % len(frames)
        for j, (detector, session) in enumerate(zip(detectors, sessions, strict=True)):
            t0 = time.perf_counter()
            session.run(None, {names[j]: tensors[j][k]})
            t1 = time.perf_counter()
            detector.detect(frames[k])
            t2 = time.perf_counter()
            if i >= warmup:
                model_times[j].append(t1 - t0)
                full_times[j].append(t2 - t1)
    return [
        Speed(model=Path(m).name, input_hw=d.info.input_hw, threads=threads,
              model_only_ips=1.0 / statistics.median(model_times[j]),
              with_pre_post_ips=1.0 / statistics.median(full_times[j]), runs=runs)
        for j, (m, d) in enumerate(zip(models, detectors, strict=True))
    ]
