"""`garbagewatch model quantize`: a static int8 (QDQ) copy of the detector, calibrated on real images.

Dynamic quantisation leaves a YOLO's activations in float and gains nothing on its convolutions,
so this is static: activation ranges come from running the float model on calibration images
from the train split, prepared exactly as the edge prepares frames (letterbox, RGB, 0..1).

Three choices matter for a YOLO on an x86 CPU (each measured; figures in models/README.md):
- weights in 7 bits (`reduce_range`): without AVX-512 VNNI, onnxruntime's int8 convolutions
  add pairs of uint8 x int8 products in 16 bits, which saturate with full-range weights
  (onnxruntime's documentation says as much). Full range cost us 0.03 exposed-garbage AP50,
  almost all of it in the stem, the first convolution, which sees the raw image;
- the last 1x1 convolutions of the Detect head (`cv2.i.2` boxes, `cv3.i.2` class scores) and
  everything after them (DFL softmax, box decoding, sigmoid) stay in float: they are the
  numbers we threshold on, and in int8 every score collapses (AP50 0);
- weights per channel: YOLO's folded batch-norm gives channels very different ranges.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.detect import letterbox

log = logging.getLogger(__name__)

_MODULE = re.compile(r"^/model\.(\d+)/")
# Inside the Detect head (the last module): its output convolutions (cv2.<level>.2 boxes,
# cv3.<level>.2 class scores) and its non-conv tail (reshapes, DFL, box decoding, sigmoid).
_HEAD_OUTPUT_CONV = re.compile(r"^cv[23]\.\d+/cv[23]\.\d+\.2/Conv$")
_HEAD_TAIL = re.compile(r"^(dfl/.*|[A-Z][A-Za-z]*(_\d+)?)$")


def head_nodes(model_path: Path) -> list[str]:
    """Names of the Detect head nodes kept in float: its output convolutions and its decoding tail."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    modules = [int(m.group(1)) for n in graph.node if (m := _MODULE.match(n.name))]
    if not modules:
        return []
    prefix = f"/model.{max(modules)}/"
    inner = [n.name[len(prefix):] for n in graph.node if n.name.startswith(prefix)]
    return [prefix + name for name in inner if _HEAD_OUTPUT_CONV.match(name) or _HEAD_TAIL.match(name)]


def stem_nodes(model_path: Path) -> list[str]:
    """Names of the convolutions that read the graph's input directly (the stem)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    inputs = {i.name for i in graph.input}
    return [n.name for n in graph.node if n.op_type == "Conv" and inputs & set(n.input)]


def _prepare(path: Path, input_hw: tuple[int, int]) -> npt.NDArray[np.float32] | None:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        log.warning("calibration: %s is not a readable image; skipped", path)
        return None
    padded, _ = letterbox(np.asarray(img, np.uint8), input_hw)
    tensor = padded[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
    return tensor[None]


def calibration_images(split_dir: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` images of a split, drawn at random but reproducibly (the split is sorted by name first)."""
    images = sorted((split_dir / "images").glob("*.jpg"))
    if not images:
        raise FileNotFoundError(f"no *.jpg under {split_dir / 'images'}")
    pick = np.random.default_rng(seed).permutation(len(images))[:count]
    return [images[int(i)] for i in sorted(pick)]


def quantize_int8(model: Path, out: Path, calibration: list[Path], *, keep_head_float: bool = True,
                  keep_stem_float: bool = False, per_channel: bool = True, reduce_range: bool = True) -> Path:
    """Write the static int8 QDQ version of `model` to `out`, calibrated on `calibration` images."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    input_name, input_hw = model_input.name, (int(model_input.shape[2]), int(model_input.shape[3]))
    del session

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._items: Iterator[Path] = iter(calibration)

        def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
            for path in self._items:
                tensor = _prepare(path, input_hw)
                if tensor is not None:
                    return {input_name: tensor}
            return None

    out.parent.mkdir(parents=True, exist_ok=True)
    prepared = out.with_name(out.stem + ".pre.onnx")
    try:
        # Shape inference and constant folding first, as onnxruntime recommends before quantising.
        quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=per_channel,
            reduce_range=reduce_range, calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=(head_nodes(prepared) if keep_head_float else [])
            + (stem_nodes(prepared) if keep_stem_float else []),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    finally:
        prepared.unlink(missing_ok=True)
    _copy_metadata(model, out)
    return out


def _copy_metadata(src: Path, dst: Path) -> None:
    """Carry ultralytics' metadata (names, imgsz, ...) over: the edge reads class names from it."""
    import onnx

    source = onnx.load(str(src), load_external_data=False)
    target = onnx.load(str(dst))
    present = {p.key for p in target.metadata_props}
    for prop in source.metadata_props:
        if prop.key not in present:
            target.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(target, str(dst))
