"""Procedural street scenes with garbage, for the demo's footage and for domain randomisation.

No third-party photo goes into the repository, so the demo camera films a street this module
draws: facade, pavement, road, parked cars, passers-by, bins, and garbage piles built from bags,
boxes, bottles and paper. The same renderer, with other seeds, adds varied synthetic images to
training so the shipped model also finds the garbage it draws (docs: models/README.md).

Classes follow the dataset: 0 garbage, 1 garbage_bin, 2 overflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

GARBAGE, BIN, OVERFLOW = 0, 1, 2
BAG_COLOURS = [
    (245, 245, 245), (30, 30, 30), (200, 120, 40), (40, 40, 190), (40, 200, 230), (60, 160, 60),
    (180, 170, 230), (90, 90, 90), (220, 220, 180), (150, 60, 140),
]
BIN_COLOURS = [(40, 120, 40), (150, 90, 30), (70, 70, 70), (30, 60, 160), (40, 140, 160), (160, 160, 160)]

Box = tuple[int, int, int, int]


@dataclass
class Scene:
    """A static street: background plus the objects that can appear on it."""

    background: np.ndarray
    bins: list[Box] = field(default_factory=list)
    horizon: int = 0


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: int = 25) -> tuple[int, int, int]:
    c = np.clip(np.array(colour) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _triple(values: np.ndarray) -> tuple[int, int, int]:
    return (int(values[0]), int(values[1]), int(values[2]))


def _noise_texture(rng: np.random.Generator, h: int, w: int, base: int, spread: int) -> np.ndarray:
    small = rng.normal(base, spread, (max(h // 8, 1), max(w // 8, 1))).astype(np.float32)
    tex = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    tex += rng.normal(0, spread / 3, (h, w)).astype(np.float32)
    return np.clip(tex, 0, 255).astype(np.uint8)


def _facade(rng: np.random.Generator, img: np.ndarray, horizon: int) -> None:
    w = img.shape[1]
    x = 0
    while x < w:
        bw = int(rng.integers(w // 6, w // 2))
        colour = _jitter(rng, _triple(rng.integers(90, 220, 3)), 10)
        top = int(rng.integers(0, max(horizon // 3, 1)))
        cv2.rectangle(img, (x, top), (x + bw, horizon), colour, -1)
        win = _jitter(rng, (70, 60, 50) if rng.random() < 0.6 else (180, 200, 210), 20)
        ww, wh = int(rng.integers(12, 40)), int(rng.integers(15, 45))
        for wy in range(top + 15, horizon - wh - 10, wh + int(rng.integers(15, 40))):
            for wx in range(x + 10, x + bw - ww - 5, ww + int(rng.integers(12, 40))):
                cv2.rectangle(img, (wx, wy), (wx + ww, wy + wh), win, -1)
        if rng.random() < 0.5:  # a shop sign: bright, text-like marks (strong negatives)
            sy = horizon - int(rng.integers(40, 90))
            cv2.rectangle(img, (x + 5, sy), (x + bw - 5, sy + 30), _jitter(rng, (30, 30, 180), 60), -1)
            for k in range(int(rng.integers(2, 6))):
                cx = x + 15 + k * 28
                cv2.putText(img, "ABCDEFGH"[k], (cx, sy + 24), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                            (240, 240, 240), 2)
        x += bw


def make_scene(seed: int | np.random.Generator, size: tuple[int, int] = (1280, 720)) -> Scene:
    """A random street background with 0-3 tidy bins standing on the pavement."""
    rng = _rng(seed)
    w, h = size
    horizon = int(h * rng.uniform(0.3, 0.5))
    img = np.zeros((h, w, 3), np.uint8)
    sky = np.array(_jitter(rng, (200, 190, 170), 40), np.uint8)
    img[:horizon] = sky
    _facade(rng, img, horizon)
    pavement_end = horizon + int((h - horizon) * rng.uniform(0.35, 0.6))
    pav = _noise_texture(rng, pavement_end - horizon, w, int(rng.integers(120, 190)), 10)
    tint = np.array(_jitter(rng, (0, 0, 0), 12), np.int16)
    img[horizon:pavement_end] = np.clip(pav[..., None].astype(np.int16) + tint, 0, 255).astype(np.uint8)
    step = int(rng.integers(30, 70))
    for y in range(horizon, pavement_end, step // 2):  # paving joints
        cv2.line(img, (0, y), (w, y), (100, 100, 100), 1)
    for x in range(0, w, step):
        cv2.line(img, (x, horizon), (x, pavement_end), (105, 105, 105), 1)
    road = _noise_texture(rng, h - pavement_end, w, int(rng.integers(50, 100)), 8)
    img[pavement_end:] = np.repeat(road[..., None], 3, axis=2)
    cv2.rectangle(img, (0, pavement_end - 6), (w, pavement_end + 2), (170, 170, 170), -1)  # kerb
    if rng.random() < 0.7:
        for x in range(0, w, 160):
            cv2.rectangle(img, (x, h - 40), (x + 80, h - 30), (230, 230, 230), -1)
    scene = Scene(background=img, horizon=horizon)
    for _ in range(int(rng.integers(0, 4))):
        scene.bins.append(_bin_box(rng, scene, size))
    return scene


def _scale_at(y: int, horizon: int, h: int) -> float:
    """Objects nearer the bottom of the frame are nearer the camera, so bigger."""
    return 0.35 + 1.1 * (y - horizon) / max(h - horizon, 1)


def _bin_box(rng: np.random.Generator, scene: Scene, size: tuple[int, int]) -> Box:
    w, h = size
    y2 = int(rng.uniform(scene.horizon + 0.15 * (h - scene.horizon), h * 0.92))
    s = _scale_at(y2, scene.horizon, h) * h / 720
    bw, bh = int(rng.uniform(50, 80) * s), int(rng.uniform(75, 110) * s)
    x1 = int(rng.uniform(0, w - bw))
    return (x1, y2 - bh, x1 + bw, y2)


def draw_bin(rng: np.random.Generator, img: np.ndarray, box: Box, lid_open: bool = False) -> None:
    x1, y1, x2, y2 = box
    colour = _jitter(rng, BIN_COLOURS[int(rng.integers(len(BIN_COLOURS)))], 15)
    dark = tuple(int(c * 0.6) for c in colour)
    lid_h = max(4, (y2 - y1) // 8)
    body = np.array([[x1 + 3, y1 + lid_h], [x2 - 3, y1 + lid_h], [x2 - 6, y2], [x1 + 6, y2]], np.int32)
    cv2.fillPoly(img, [body], colour)
    cv2.line(img, (x1 + (x2 - x1) // 2, y1 + lid_h), (x1 + (x2 - x1) // 2, y2), dark, 1)
    if lid_open:
        cv2.line(img, (x1, y1 + lid_h), (x1 - lid_h, y1 - lid_h), dark, max(2, lid_h // 2))
    else:
        cv2.rectangle(img, (x1, y1), (x2, y1 + lid_h), dark, -1)
    r = max(2, (x2 - x1) // 10)
    cv2.circle(img, (x1 + r + 4, y2), r, (20, 20, 20), -1)
    cv2.circle(img, (x2 - r - 4, y2), r, (20, 20, 20), -1)


def _blob(rng: np.random.Generator, cx: float, cy: float, r: float, n: int = 12) -> np.ndarray:
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.65, 1.15, n)
    pts = np.stack([cx + rad * np.cos(ang), cy + 0.8 * rad * np.sin(ang)], axis=1)
    return pts.astype(np.int32)


def _bag(rng: np.random.Generator, img: np.ndarray, cx: float, cy: float, r: float) -> Box:
    colour = _jitter(rng, BAG_COLOURS[int(rng.integers(len(BAG_COLOURS)))], 20)
    pts = _blob(rng, cx, cy, r)
    cv2.fillPoly(img, [pts], colour)
    shade = tuple(int(c * 0.55) for c in colour)
    lower = pts[pts[:, 1] > cy]
    if len(lower) >= 3:
        cv2.fillPoly(img, [cv2.convexHull(lower)], shade)
    for _ in range(int(rng.integers(1, 4))):  # creases and highlights of crumpled plastic
        p = pts[int(rng.integers(len(pts)))]
        hi = tuple(min(255, int(c * 1.3) + 30) for c in colour)
        cv2.line(img, (int(cx), int(cy)), (int(p[0]), int(p[1])), hi, max(1, int(r / 10)))
    knot = (int(cx + rng.uniform(-0.2, 0.2) * r), int(cy - 0.8 * r))
    cv2.circle(img, knot, max(2, int(r / 5)), colour, -1)
    x, y, w, h = cv2.boundingRect(np.vstack([pts, [knot]]))
    return (x, y, x + w, y + h)


def _box_item(rng: np.random.Generator, img: np.ndarray, cx: float, cy: float, r: float) -> Box:
    w, h = r * rng.uniform(1.2, 2.0), r * rng.uniform(0.8, 1.4)
    rect = ((cx, cy), (w, h), float(rng.uniform(-30, 30)))
    pts = cv2.boxPoints(rect).astype(np.int32)
    colour = _jitter(rng, (60, 120, 170), 25)  # cardboard
    cv2.fillPoly(img, [pts], colour)
    cv2.polylines(img, [pts], True, tuple(int(c * 0.6) for c in colour), max(1, int(r / 12)))
    cv2.line(img, tuple(pts[0]), tuple(pts[2]), tuple(int(c * 0.8) for c in colour), 1)
    x, y, bw, bh = cv2.boundingRect(pts)
    return (x, y, x + bw, y + bh)


def _litter(rng: np.random.Generator, img: np.ndarray, cx: float, cy: float, r: float) -> Box:
    xs, ys = [], []
    for _ in range(int(rng.integers(3, 9))):
        px, py = cx + rng.normal(0, r), cy + rng.normal(0, r * 0.4)
        s = max(2.0, r * rng.uniform(0.15, 0.4))
        if rng.random() < 0.5:  # a bottle
            colour = _jitter(rng, (120, 170, 90) if rng.random() < 0.5 else (200, 210, 215), 30)
            cv2.ellipse(img, (int(px), int(py)), (int(s * 1.6), int(s * 0.5)), float(rng.uniform(0, 180)),
                        0, 360, colour, -1)
        else:  # paper, wrappers
            colour = _jitter(rng, BAG_COLOURS[int(rng.integers(len(BAG_COLOURS)))], 30)
            quad = _blob(rng, px, py, s, n=4)
            cv2.fillPoly(img, [quad], colour)
        xs += [px - 1.6 * s, px + 1.6 * s]
        ys += [py - s, py + s]
    return (int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys)))


def draw_pile(rng: np.random.Generator, img: np.ndarray, cx: float, cy: float, r: float) -> Box:
    """A heap of bags, boxes and litter around (cx, cy), radius r; returns its bounding box."""
    boxes: list[Box] = []
    stain = _blob(rng, cx, cy + 0.3 * r, 1.3 * r, 16)
    cv2.fillPoly(img, [stain], _jitter(rng, (45, 55, 65), 12))
    x, y, w, h = cv2.boundingRect(stain)
    boxes.append((x, y, x + w, y + h))
    for _ in range(int(rng.integers(2, 9))):
        ix, iy = cx + rng.normal(0, 0.55 * r), cy + rng.normal(0, 0.25 * r)
        ir = r * rng.uniform(0.3, 0.6)
        kind = rng.random()
        if kind < 0.6:
            boxes.append(_bag(rng, img, ix, iy, ir))
        elif kind < 0.85:
            boxes.append(_box_item(rng, img, ix, iy, ir))
        else:
            boxes.append(_litter(rng, img, ix, iy, ir))
    xs1, ys1, xs2, ys2 = zip(*boxes, strict=True)
    return (min(xs1), min(ys1), max(xs2), max(ys2))


def _distractors(rng: np.random.Generator, img: np.ndarray, horizon: int) -> None:
    """Cars, people and trees: the things a garbage detector must not fire on."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(0, 3))):  # parked cars
        y2 = int(rng.uniform(horizon + 0.5 * (h - horizon), h))
        s = _scale_at(y2, horizon, h) * h / 720
        cw, ch = int(260 * s), int(100 * s)
        x1 = int(rng.uniform(-cw / 3, w - cw / 2))
        colour = _jitter(rng, _triple(rng.integers(20, 230, 3)), 0)
        cv2.rectangle(img, (x1, y2 - ch), (x1 + cw, y2 - ch // 5), colour, -1)
        cv2.rectangle(img, (x1 + cw // 5, y2 - ch - ch // 2), (x1 + 4 * cw // 5, y2 - ch), colour, -1)
        cv2.rectangle(img, (x1 + cw // 4, y2 - ch - ch // 3), (x1 + 3 * cw // 4, y2 - ch), (60, 50, 40), -1)
        for wx in (x1 + cw // 5, x1 + 4 * cw // 5):
            cv2.circle(img, (wx, y2 - ch // 5), max(3, ch // 4), (15, 15, 15), -1)
    for _ in range(int(rng.integers(0, 4))):  # people
        y2 = int(rng.uniform(horizon + 10, h))
        s = _scale_at(y2, horizon, h) * h / 720
        x = int(rng.uniform(0, w))
        body = _jitter(rng, _triple(rng.integers(20, 230, 3)), 0)
        cv2.rectangle(img, (x - int(14 * s), y2 - int(110 * s)), (x + int(14 * s), y2 - int(50 * s)),
                      body, -1)
        cv2.rectangle(img, (x - int(12 * s), y2 - int(50 * s)), (x + int(12 * s), y2), (50, 40, 40), -1)
        cv2.circle(img, (x, y2 - int(122 * s)), max(2, int(12 * s)), (120, 150, 190), -1)
    if rng.random() < 0.5:  # a tree trunk and crown
        x = int(rng.uniform(0, w))
        cv2.rectangle(img, (x, horizon - 40), (x + 14, horizon + 60), (40, 60, 80), -1)
        cv2.circle(img, (x + 7, horizon - 80), int(rng.uniform(40, 90)), _jitter(rng, (50, 120, 60), 25), -1)


def degrade(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Camera and processing variety: exposure, colour cast, dusk, blur, noise, JPEG."""
    out: npt.NDArray[np.floating[Any]] = img.astype(np.float32)
    out = out * rng.uniform(0.6, 1.25) + rng.uniform(-25, 25)
    out *= rng.uniform(0.85, 1.15, 3)
    if rng.random() < 0.2:  # dusk
        out = out * 0.45 + np.array([25, 5, 0])
    out += rng.normal(0, rng.uniform(1, 8), out.shape)
    res = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        k = int(rng.choice([3, 5]))
        res = np.asarray(cv2.GaussianBlur(res, (k, k), 0), np.uint8)
    q = int(rng.integers(25, 90))
    ok, buf = cv2.imencode(".jpg", res, [cv2.IMWRITE_JPEG_QUALITY, q])
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    return res if decoded is None else np.asarray(decoded, np.uint8)


@dataclass(frozen=True)
class Labelled:
    image: np.ndarray
    boxes: list[tuple[int, Box]]  # (class id, x1 y1 x2 y2 in pixels)


def render_training_image(seed: int, size: tuple[int, int] = (960, 540)) -> Labelled:
    """One random labelled scene: bins, overflowing bins, garbage piles and distractors."""
    rng = np.random.default_rng(seed)
    scene = make_scene(rng, size)
    img = scene.background.copy()
    w, h = size
    labels: list[tuple[int, Box]] = []
    _distractors(rng, img, scene.horizon)
    for b in scene.bins:
        if rng.random() < 0.35:
            draw_bin(rng, img, b, lid_open=True)
            bx1, by1, bx2, by2 = b
            r = 0.6 * (bx2 - bx1)
            px1, py1, px2, py2 = draw_pile(rng, img, bx1 + (bx2 - bx1) * rng.uniform(0, 1), by2 - 0.1 * r, r)
            top = _bag(rng, img, (bx1 + bx2) / 2, by1 + 0.1 * (by2 - by1), 0.45 * (bx2 - bx1))
            labels.append((OVERFLOW, (min(bx1, px1, top[0]), min(by1, py1, top[1]),
                                      max(bx2, px2, top[2]), max(by2, py2, top[3]))))
        else:
            draw_bin(rng, img, b)
            labels.append((BIN, b))
    for _ in range(int(rng.integers(0 if labels else 1, 4))):
        cy = rng.uniform(scene.horizon + 0.1 * (h - scene.horizon), h * 0.95)
        r = rng.uniform(25, 70) * _scale_at(int(cy), scene.horizon, h) * h / 720
        cx = rng.uniform(r, w - r)
        labels.append((GARBAGE, draw_pile(rng, img, cx, cy, r)))
    clipped = []
    for cls, (x1, y1, x2, y2) in labels:
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w - 1, x2), min(h - 1, y2)
        if x2 - x1 >= 4 and y2 - y1 >= 4:
            clipped.append((cls, (x1, y1, x2, y2)))
    return Labelled(degrade(rng, img), clipped)


def to_yolo_lines(item: Labelled) -> list[str]:
    h, w = item.image.shape[:2]
    lines = []
    for cls, (x1, y1, x2, y2) in item.boxes:
        cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        lines.append(f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
    return lines
