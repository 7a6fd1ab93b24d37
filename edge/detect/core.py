"""`Detections`: the one value that flows from the detector to zones and events.

Arrays, not lists of tuples or dicts, so every later stage (zones, matching, drawing) works on
whole columns at once; frozen and read-only, so a stage can never change what another one sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _frozen(values: npt.ArrayLike, dtype: type[np.generic], shape_tail: tuple[int, ...], what: str) -> Any:
    array = np.array(values, dtype=dtype, copy=True)
    if array.size == 0:
        array = array.reshape((0, *shape_tail))
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        raise ValueError(f"Detections.{what} must have shape {('N', *shape_tail)}, got {array.shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False, init=False)
class Detections:
    """N boxes found in one frame.

    xyxy: float32 (N, 4), x1, y1, x2, y2 in pixels of the full camera frame.
    confidence: float32 (N,). class_id: int64 (N,), an index into `class_names`.
    The constructor takes any array-like and keeps read-only copies of the right dtype: the
    caller's arrays stay theirs, and nobody downstream can change what another stage sees.
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    class_names: tuple[str, ...]

    def __init__(
        self,
        xyxy: npt.ArrayLike,
        confidence: npt.ArrayLike,
        class_id: npt.ArrayLike,
        class_names: Sequence[str] = (),
    ) -> None:
        object.__setattr__(self, "xyxy", _frozen(xyxy, np.float32, (4,), "xyxy"))
        object.__setattr__(self, "confidence", _frozen(confidence, np.float32, (), "confidence"))
        object.__setattr__(self, "class_id", _frozen(class_id, np.int64, (), "class_id"))
        object.__setattr__(self, "class_names", tuple(class_names))
        n = len(self.xyxy)
        if len(self.confidence) != n or len(self.class_id) != n:
            raise ValueError(
                f"Detections columns differ in length: xyxy {n}, confidence {len(self.confidence)}, "
                f"class_id {len(self.class_id)}"
            )

    @classmethod
    def empty(cls, class_names: tuple[str, ...] = ()) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros((0,), np.float32),
            class_id=np.zeros((0,), np.int64),
            class_names=class_names,
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: BoolArray | IntArray | slice) -> Detections:
        """Rows selected by a boolean mask, an index array or a slice; class names are kept."""
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            class_names=self.class_names,
        )

    def filter(self, mask: BoolArray) -> Detections:
        """The rows where `mask` (bool, shape (N,)) is True."""
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != (len(self),):
            raise ValueError(
                f"filter needs a bool mask of shape ({len(self)},), got {mask.dtype} {mask.shape}"
            )
        return self[mask]

    def name_of(self, class_id: int) -> str:
        """The class name of an id; ids the model did not name read 'class_<id>'."""
        if 0 <= class_id < len(self.class_names):
            return self.class_names[class_id]
        return f"class_{class_id}"

    def names(self) -> list[str]:
        """The class name of every row."""
        return [self.name_of(int(c)) for c in self.class_id]

    def with_names(self, names: set[str] | frozenset[str]) -> BoolArray:
        """A mask of the rows whose class name is in `names`."""
        return np.array([n in names for n in self.names()], dtype=np.bool_).reshape(len(self))
