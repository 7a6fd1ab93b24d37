"""`OnnxDetector`: one BGR frame in, `Detections` in frame pixels out, on the CPU with onnxruntime.

Reads both output layouts ultralytics exports:
- classic, (B, 4 + nc, N): cx, cy, w, h then one score per class (no objectness), needs NMS;
- end-to-end / NMS-free (or exported with nms=True), (B, N, 6): x1, y1, x2, y2, score, class.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.detect.boxes import box_area, cxcywh_to_xyxy
from edge.detect.core import Detections, FloatArray, IntArray
from edge.detect.iou_and_nms import class_aware_nms
from edge.detect.letterbox import Letterbox, letterbox
from edge.detect.model_info import ModelError, ModelInfo

log = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]


def default_intra_op_threads() -> int:
    """Half the cores, at most 4.

    onnxruntime's own default takes every core and busy-spins between runs. On an edge box the
    same cores decode several RTSP streams, and a small YOLO gains little past 4 threads, so we
    leave room for the decoders instead of competing with them.
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


class OnnxDetector:
    def __init__(
        self,
        model_path: str | Path,
        *,
        conf_default: float = 0.25,
        per_class_conf: Mapping[str, float] | None = None,
        iou: float = 0.45,
        intra_op_threads: int | None = None,
        inter_op_threads: int = 1,
        max_detections: int = 300,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads or default_intra_op_threads()
        # A YOLO graph is one chain of ops: running branches in parallel (inter-op) buys nothing
        # and would add a second thread pool; sequential execution with one inter-op thread.
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # We analyse about one frame a second: threads spinning between runs would burn a core
        # for nothing.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise ModelError(f"{path}: onnxruntime cannot load it: {exc}") from exc
        self.info = ModelInfo.from_session(path, self._session)
        self.iou = iou
        self.max_detections = max_detections
        self.conf_default = conf_default
        self._class_conf = self._class_thresholds(conf_default, per_class_conf or {})
        self._half = self.info.input_type == "tensor(float16)"  # a half-precision export

    def _class_thresholds(self, default: float, per_class: Mapping[str, float]) -> FloatArray:
        names = self.info.class_names
        unknown = sorted(set(per_class) - set(names))
        if unknown:
            # A typo in a config must fail at start, not silently use the default threshold.
            raise ModelError(
                f"{self.info.path}: per_class_conf names {unknown} are not classes {list(names)}"
            )
        return np.array([per_class.get(n, default) for n in names], dtype=np.float32)

    def _thresholds(self, class_id: IntArray) -> FloatArray:
        known = (class_id >= 0) & (class_id < len(self._class_conf))
        out = np.full(class_id.shape, self.conf_default, dtype=np.float32)
        out[known] = self._class_conf[class_id[known]]
        return out

    def detect(self, frame_bgr: Frame, frame_size: tuple[int, int] | None = None) -> Detections:
        """Detections in one BGR uint8 H x W x 3 frame.

        `frame_size`: (w, h) of the camera frame `frame_bgr` was scaled down from (same aspect);
        the boxes are then in its pixels.
        """
        tensor, transform = self._prepare(frame_bgr)
        if frame_size is not None:
            transform = transform.from_larger(*frame_size)
        output = self._run(tensor[None])
        return self._decode(output[0], transform)

    def detect_batch(self, frames: Sequence[Frame]) -> list[Detections]:
        """Detections for each frame: one run when the model's batch dimension is dynamic, else a loop."""
        if not self.info.batch_dynamic or len(frames) <= 1:
            return [self.detect(frame) for frame in frames]
        prepared = [self._prepare(frame) for frame in frames]
        output = self._run(np.stack([tensor for tensor, _ in prepared]))
        return [self._decode(output[i], transform) for i, (_, transform) in enumerate(prepared)]

    def _prepare(self, frame_bgr: Frame) -> tuple[npt.NDArray[np.floating], Letterbox]:
        if not (
            isinstance(frame_bgr, np.ndarray)
            and frame_bgr.dtype == np.uint8
            and frame_bgr.ndim == 3
            and frame_bgr.shape[2] == 3
        ):
            shape = getattr(frame_bgr, "shape", None)
            raise ValueError(
                f"detector needs a BGR uint8 H x W x 3 frame, got {type(frame_bgr).__name__} {shape}"
            )
        padded, transform = letterbox(frame_bgr, self.info.input_hw)
        # BGR -> RGB, HWC -> CHW, 0..255 -> 0..1: what ultralytics models are trained on.
        tensor = padded[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)
        tensor *= 1.0 / 255.0
        if self._half:
            return tensor.astype(np.float16), transform
        return tensor, transform

    def _run(self, batch: npt.NDArray[np.floating]) -> FloatArray:
        outputs = self._session.run(None, {self.info.input_name: batch})
        out = np.asarray(outputs[0], dtype=np.float32)
        if out.ndim != 3 or out.shape[0] != batch.shape[0]:
            raise ModelError(
                f"{self.info.path}: output shape {out.shape} is neither (B, 4+nc, N) nor (B, N, 6)"
            )
        return out

    def _is_end_to_end(self, pred: FloatArray) -> bool:
        rows, cols = pred.shape
        nc = len(self.info.class_names)
        if self.info.end_to_end and cols == 6:
            return True
        if nc and rows == 4 + nc:
            return False
        if cols == 6:
            return True
        if not nc and rows > 4:
            return False
        raise ModelError(f"{self.info.path}: output {pred.shape} fits neither (4+{nc}, N) nor (N, 6)")

    def _decode(self, pred: FloatArray, transform: Letterbox) -> Detections:
        """One image's raw output -> Detections in frame pixels."""
        end_to_end = self._is_end_to_end(pred)
        if end_to_end:
            xyxy = pred[:, :4]
            score = pred[:, 4]
            class_id = np.rint(np.nan_to_num(pred[:, 5], nan=-1.0)).astype(np.int64)
        else:
            class_scores = pred[4:]
            class_id = np.argmax(class_scores, axis=0).astype(np.int64)
            score = class_scores[class_id, np.arange(class_scores.shape[1])]
            xyxy = cxcywh_to_xyxy(pred[:4].T)
        keep = (score >= self._thresholds(class_id)) & (class_id >= 0) & np.isfinite(xyxy).all(axis=1)
        xyxy, score, class_id = xyxy[keep], score[keep], class_id[keep]
        # An end-to-end model has already suppressed its duplicates.
        order = np.argsort(-score, kind="stable") if end_to_end else class_aware_nms(xyxy, score, class_id, self.iou)
        order = order[: self.max_detections]
        xyxy = transform.to_frame(xyxy[order])
        score, class_id = score[order], class_id[order]
        visible = box_area(xyxy) > 0  # boxes wholly in the padding collapse when clipped to the frame
        return Detections(xyxy[visible], score[visible], class_id[visible], self.info.class_names)
