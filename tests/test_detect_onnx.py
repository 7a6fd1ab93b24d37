"""OnnxDetector end to end through onnxruntime, on tiny ONNX graphs built here with `onnx`.

Each graph returns constant boxes in one of the two ultralytics output layouts; the class scores
are multiplied by the brightest pixel of the input, so a dark frame scores lower than a bright
one and a batch shows which output belongs to which frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx package (dev dependency) builds the test models")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge.detect import ModelError, OnnxDetector  # noqa: E402

NAMES = {0: "garbage", 1: "garbage_bin", 2: "overflow"}


def save_model(
    path: Path,
    constant: np.ndarray,
    layout: str,
    input_hw: tuple[int, int],
    *,
    dynamic_batch: bool = False,
    dynamic_hw: bool = False,
    metadata: dict[str, str] | None = None,
    peak_channel: int | None = None,
) -> Path:
    """A model whose output is `constant` (1, C, N) or (1, N, 6), with scores times the input's
    maximum (over one RGB channel if `peak_channel` is given)."""
    batch: int | str = "batch" if dynamic_batch else 1
    h: int | str = "height" if dynamic_hw else input_hw[0]
    w: int | str = "width" if dynamic_hw else input_hw[1]
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, h, w])
    if layout == "classic":
        fixed, scores, axis = constant[:, :4], constant[:, 4:], 1
    else:
        fixed, scores, axis = constant[:, :, [0, 1, 2, 3, 5]], constant[:, :, 4:5], 2
    nodes = []
    if peak_channel is not None:
        nodes.append(helper.make_node("Slice", ["images", "c0", "c1", "ax1"], ["peak_input"]))
    nodes += [
        helper.make_node(
            "ReduceMax",
            ["images" if peak_channel is None else "peak_input"],
            ["peak"],
            axes=[1, 2, 3],
            keepdims=1,
        ),  # (B, 1, 1, 1)
        helper.make_node("Reshape", ["peak", "shape_b11"], ["peak_b11"]),
        helper.make_node("Mul", ["peak_b11", "zero"], ["zeros_b11"]),
        helper.make_node("Add", ["fixed", "zeros_b11"], ["fixed_b"]),  # broadcast to the batch
        helper.make_node("Mul", ["scores", "peak_b11"], ["scores_b"]),
    ]
    if layout == "classic":
        nodes.append(helper.make_node("Concat", ["fixed_b", "scores_b"], ["output0"], axis=axis))
    else:  # put the score back between the box and the class
        nodes += [
            helper.make_node("Slice", ["fixed_b", "s0", "s4", "ax2"], ["box_b"]),
            helper.make_node("Slice", ["fixed_b", "s4", "s5", "ax2"], ["cls_b"]),
            helper.make_node("Concat", ["box_b", "scores_b", "cls_b"], ["output0"], axis=axis),
        ]
    inits = [
        numpy_helper.from_array(np.ascontiguousarray(fixed, np.float32), "fixed"),
        numpy_helper.from_array(np.ascontiguousarray(scores, np.float32), "scores"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape_b11"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    if layout != "classic":
        inits += [
            numpy_helper.from_array(np.array([v], np.int64), name)
            for name, v in (("s0", 0), ("s4", 4), ("s5", 5), ("ax2", 2))
        ]
    if peak_channel is not None:
        inits += [
            numpy_helper.from_array(np.array([v], np.int64), name)
            for name, v in (("c0", peak_channel), ("c1", peak_channel + 1), ("ax1", 1))
        ]
    out_shape = [batch, constant.shape[1], constant.shape[2]]
    output = helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)
    graph = helper.make_graph(nodes, "const_detector", [images], [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"names": repr(NAMES), "imgsz": repr(list(input_hw)), "task": "detect", "stride": "32"}
    meta.update(metadata or {})
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def classic_output(rows: Sequence[tuple[float, float, float, float, int, float]], nc: int = 3) -> np.ndarray:
    """(1, 4 + nc, N) from (cx, cy, w, h, class, score) rows."""
    out = np.zeros((1, 4 + nc, len(rows)), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(rows):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + cls, i] = score
        out[0, 4 + (cls + 1) % nc, i] = score / 3  # a weaker second class, as real outputs have
    return out


def e2e_output(rows: Sequence[tuple[float, float, float, float, float, int]], n: int = 300) -> np.ndarray:
    """(1, n, 6) from (x1, y1, x2, y2, score, class) rows, zero-padded like an NMS-free export."""
    out = np.zeros((1, n, 6), np.float32)
    for i, row in enumerate(rows):
        out[0, i] = row
    return out


def bright_frame(h: int = 720, w: int = 1280) -> np.ndarray:
    frame = np.full((h, w, 3), 60, np.uint8)
    frame[:8, :8] = 255  # max(input) = 1: scores pass unchanged
    return frame


def dark_frame(h: int = 720, w: int = 1280) -> np.ndarray:
    return np.full((h, w, 3), 60, np.uint8)  # max(input) = 114/255 (the padding): scores * 0.45


def test_classic_layout_decodes_nms_and_maps_to_frame(tmp_path: Path) -> None:
    # Input 384 x 640 (h, w); a 1280 x 720 frame is scaled by 0.5 and padded 12 px top and bottom.
    rows = [
        (150, 162, 100, 100, 0, 0.9),  # garbage at input (100, 112, 200, 212) -> frame (200, 200, 400, 400)
        (152, 162, 100, 100, 0, 0.8),  # the same pile again: suppressed
        (150, 162, 100, 100, 1, 0.7),  # a bin at the same spot: another class, kept
        (500, 300, 60, 40, 2, 0.5),  # overflow
        (300, 300, 50, 50, 0, 0.1),  # below the threshold
        (320, 4, 40, 6, 0, 0.9),  # wholly in the top padding: nothing in the frame
    ]
    model = save_model(tmp_path / "classic.onnx", classic_output(rows), "classic", (384, 640))
    detector = OnnxDetector(model, intra_op_threads=1)
    assert detector.info.input_hw == (384, 640)
    assert detector.info.class_names == ("garbage", "garbage_bin", "overflow")
    d = detector.detect(bright_frame())
    assert d.names() == ["garbage", "garbage_bin", "overflow"]
    np.testing.assert_allclose(d.confidence, [0.9, 0.7, 0.5], atol=1e-6)
    np.testing.assert_allclose(d.xyxy[0], [200, 200, 400, 400], atol=1e-3)
    np.testing.assert_allclose(d.xyxy[2], [940, 536, 1060, 616], atol=1e-3)


def test_a_frame_scaled_down_first_gives_boxes_in_the_camera_frames_pixels(tmp_path: Path) -> None:
    # What the edge does: the camera's 1920x1080 frame is converted straight to 640x360 (the size
    # the letterbox would give it) and the boxes come back in 1920x1080 pixels.
    rows = [(150, 162, 100, 100, 0, 0.9), (500, 300, 60, 40, 2, 0.5)]
    model = save_model(tmp_path / "classic.onnx", classic_output(rows), "classic", (384, 640))
    detector = OnnxDetector(model, intra_op_threads=1)
    full = detector.detect(bright_frame(1080, 1920))
    small = detector.detect(bright_frame(360, 640), frame_size=(1920, 1080))
    np.testing.assert_allclose(small.xyxy, full.xyxy, atol=1e-3)
    np.testing.assert_allclose(full.xyxy[0], [300, 300, 600, 600], atol=1e-3)  # input (100, 112) -> x3


def test_end_to_end_layout_decodes_without_nms(tmp_path: Path) -> None:
    rows = [
        (100, 112, 200, 212, 0.6, 0),
        (102, 112, 202, 212, 0.95, 2),  # NMS-free output is trusted as is: both kept, best first
        (0, 0, 640, 384, 0.2, 1),  # below the threshold
    ]
    model = save_model(
        tmp_path / "e2e.onnx", e2e_output(rows), "e2e", (384, 640), metadata={"end2end": "True"}
    )
    detector = OnnxDetector(model, intra_op_threads=1)
    assert detector.info.end_to_end is True
    d = detector.detect(bright_frame())
    assert d.names() == ["overflow", "garbage"]
    np.testing.assert_allclose(d.xyxy, [[204, 200, 404, 400], [200, 200, 400, 400]], atol=1e-3)


def test_end_to_end_layout_is_recognised_without_metadata(tmp_path: Path) -> None:
    model = save_model(tmp_path / "nms.onnx", e2e_output([(10, 20, 50, 60, 0.9, 1)]), "e2e", (640, 640))
    d = OnnxDetector(model, intra_op_threads=1).detect(np.zeros((640, 640, 3), np.uint8) + 255)
    assert d.names() == ["garbage_bin"]
    np.testing.assert_allclose(d.xyxy, [[10, 20, 50, 60]], atol=1e-3)


def test_per_class_thresholds(tmp_path: Path) -> None:
    rows = [(100, 100, 50, 50, 0, 0.4), (300, 100, 50, 50, 1, 0.4), (500, 100, 50, 50, 2, 0.4)]
    model = save_model(tmp_path / "m.onnx", classic_output(rows), "classic", (640, 640))
    detector = OnnxDetector(model, conf_default=0.5, per_class_conf={"garbage": 0.3, "overflow": 0.35})
    assert detector.detect(bright_frame(640, 640)).names() == ["garbage", "overflow"]
    with pytest.raises(ModelError, match="garbge"):
        OnnxDetector(model, per_class_conf={"garbge": 0.3})


def test_dynamic_batch_runs_once_and_keeps_frames_apart(tmp_path: Path) -> None:
    rows = [(150, 162, 100, 100, 0, 0.9)]
    model = save_model(
        tmp_path / "dyn.onnx",
        classic_output(rows),
        "classic",
        (384, 640),
        dynamic_batch=True,
        dynamic_hw=True,
    )
    detector = OnnxDetector(model, conf_default=0.5, intra_op_threads=1)
    assert detector.info.batch_dynamic and detector.info.input_hw == (384, 640)  # from 'imgsz'
    results = detector.detect_batch([bright_frame(), dark_frame(), bright_frame()])
    assert [len(r) for r in results] == [1, 0, 1]
    assert detector.detect_batch([]) == []


def test_static_batch_loops(tmp_path: Path) -> None:
    model = save_model(
        tmp_path / "static.onnx", classic_output([(150, 162, 100, 100, 0, 0.9)]), "classic", (384, 640)
    )
    detector = OnnxDetector(model, conf_default=0.5, intra_op_threads=1)
    assert not detector.info.batch_dynamic
    assert [len(r) for r in detector.detect_batch([dark_frame(), bright_frame()])] == [0, 1]


def test_model_info_hash_and_name(tmp_path: Path) -> None:
    import hashlib

    model = save_model(tmp_path / "garbagewatch-v3.onnx", classic_output([]), "classic", (640, 640))
    info = OnnxDetector(model).info
    assert info.name == "garbagewatch-v3"
    assert info.sha256 == hashlib.sha256(model.read_bytes()).hexdigest()


def test_bad_frames_and_bad_files_fail_clearly(tmp_path: Path) -> None:
    model = save_model(tmp_path / "m.onnx", classic_output([]), "classic", (640, 640))
    detector = OnnxDetector(model)
    with pytest.raises(ValueError, match="BGR uint8"):
        detector.detect(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="BGR uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ModelError, match="does not exist"):
        OnnxDetector(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxDetector(tmp_path / "junk.onnx")
    no_size = save_model(
        tmp_path / "nosize.onnx",
        classic_output([]),
        "classic",
        (640, 640),
        dynamic_hw=True,
        metadata={"imgsz": "x"},
    )
    with pytest.raises(ModelError, match="imgsz"):
        OnnxDetector(no_size)


def test_input_is_rgb_scaled_to_unit_range(tmp_path: Path) -> None:
    # The score is max(R channel of the input): 1.0 exactly when BGR was swapped to RGB and /255.
    rows = [(150, 162, 100, 100, 0, 1.0)]
    model = save_model(tmp_path / "m.onnx", classic_output(rows), "classic", (384, 640), peak_channel=0)
    detector = OnnxDetector(model, conf_default=0.01)
    red = np.zeros((720, 1280, 3), np.uint8)
    red[..., 2] = 255  # red in BGR
    np.testing.assert_allclose(detector.detect(red).confidence, [1.0], atol=1e-6)
    blue = np.zeros((720, 1280, 3), np.uint8)
    blue[..., 0] = 255  # no red at all: only the grey padding's 114 is left
    np.testing.assert_allclose(detector.detect(blue).confidence, [114 / 255], atol=1e-6)
