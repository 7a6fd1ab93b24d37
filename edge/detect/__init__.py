"""Frame -> `Detections`: letterbox, ONNX inference on the CPU, decoding, NMS (supervision style)."""

from edge.detect.boxes import box_area, clip_boxes, cxcywh_to_xyxy, unletterbox_boxes
from edge.detect.core import Detections
from edge.detect.iou_and_nms import box_iou, class_aware_nms, nms
from edge.detect.letterbox import PAD_VALUE, Letterbox, letterbox
from edge.detect.model_info import ModelError, ModelInfo, file_sha256, parse_imgsz, parse_names
from edge.detect.onnx_detector import OnnxDetector, default_intra_op_threads

__all__ = [
    "PAD_VALUE",
    "Detections",
    "Letterbox",
    "ModelError",
    "ModelInfo",
    "OnnxDetector",
    "box_area",
    "box_iou",
    "class_aware_nms",
    "clip_boxes",
    "cxcywh_to_xyxy",
    "default_intra_op_threads",
    "file_sha256",
    "letterbox",
    "nms",
    "parse_imgsz",
    "parse_names",
    "unletterbox_boxes",
]
