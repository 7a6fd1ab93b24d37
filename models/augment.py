"""Photometric degradations of real photos: the cameras and image pipelines of other cities.

Used twice: in training (a share of real images replaced by one degraded copy) and in
evaluation (`garbagewatch model eval --degrade KIND` measures AP50 on degraded validation copies).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Degradation = Callable[[np.random.Generator, Image], Image]


def tone_map(rng: np.random.Generator, img: Image) -> Image:
    """Strong local contrast, as from HDR-like tone mapping (CLAHE on lightness)."""
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB)
    clahe = cv2.createCLAHE(clipLimit=float(rng.uniform(2.5, 5.0)), tileGridSize=(8, 8))
    lab[..., 0] = clahe.apply(lab[..., 0])
    out = np.asarray(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR), np.float32)
    sat = rng.uniform(1.1, 1.5)  # tone mappers also push saturation
    grey = out.mean(axis=2, keepdims=True)
    return np.asarray(np.clip(grey + (out - grey) * sat, 0, 255), np.uint8)


def blur(rng: np.random.Generator, img: Image) -> Image:
    """Defocus or motion blur."""
    if rng.random() < 0.5:
        k = int(rng.choice([5, 7, 9]))
        return np.asarray(cv2.GaussianBlur(img, (k, k), 0), np.uint8)
    k = int(rng.choice([7, 9, 13]))
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0 / k
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    kernel = np.asarray(cv2.warpAffine(kernel, rot, (k, k)), np.float32)
    return np.asarray(cv2.filter2D(img, -1, kernel / max(float(kernel.sum()), 1e-6)), np.uint8)


def jpeg(rng: np.random.Generator, img: Image) -> Image:
    """Heavy JPEG compression, as from a saturated uplink."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(10, 30))])
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    return img if decoded is None else np.asarray(decoded, np.uint8)


def dusk(rng: np.random.Generator, img: Image) -> Image:
    """Low light: darker, bluer, noisier."""
    out = img.astype(np.float32) / 255.0
    out = np.power(out, rng.uniform(1.6, 2.4)) * rng.uniform(0.5, 0.8)
    out = out * np.array([1.15, 1.0, 0.85]) * 255.0
    out += rng.normal(0, rng.uniform(4, 10), out.shape)
    return np.asarray(np.clip(out, 0, 255), np.uint8)


DEGRADATIONS: dict[str, Degradation] = {"tonemap": tone_map, "blur": blur, "jpeg": jpeg, "dusk": dusk}


def degrade_photo(rng: np.random.Generator, img: Image) -> Image:
    """One or two random degradations, for training."""
    names = list(DEGRADATIONS)
    picks = rng.choice(len(names), size=int(rng.integers(1, 3)), replace=False)
    for i in picks:
        img = DEGRADATIONS[names[int(i)]](rng, img)
    return img
