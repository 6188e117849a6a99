"""Dense per-frame curves -> a few Bezier keys an animator can edit, within a stated tolerance.

Keys get explicit, aligned handles one third of the way to each neighbour, with monotone
(Fritsch-Carlson) slopes; such a Bezier segment is exactly a cubic Hermite segment, so the
curve Blender evaluates is the one whose error was measured here, and it never overshoots
the samples (a weight stays in [0, 1]). Every peak and valley is a key, so a closure that
reaches 1.0 still reaches 1.0. No bpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_TOLERANCE = 0.01  # in shape-key weight units (1% of a full pose)
MAX_FRAME = 1048574  # Blender's MAXFRAME: no key or strip may lie beyond +-MAX_FRAME


def parse_frame(text: str) -> int:
    """A start frame from the command line or a manifest; ValueError with the reason."""
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ValueError(f"start frame {text!r} is not a whole number") from None
    if not -MAX_FRAME <= value <= MAX_FRAME:
        raise ValueError(f"start frame {value} is outside Blender's frame range ({-MAX_FRAME} to {MAX_FRAME})")
    return value


@dataclass(frozen=True)
class BezierKeys:
    x: np.ndarray  # key positions (frames)
    y: np.ndarray  # key values
    left: np.ndarray  # [n, 2] left handles
    right: np.ndarray  # [n, 2] right handles

    def __len__(self) -> int:
        return len(self.x)

    def evaluate(self, at: np.ndarray) -> np.ndarray:
        slopes = (self.right[:, 1] - self.y) / np.maximum(self.right[:, 0] - self.x, 1e-12)
        return hermite(self.x, self.y, slopes, at)


def monotone_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    n = len(x)
    m = np.zeros(n)
    if n < 3:
        return m  # a single segment eases in and out
    h = np.diff(x)
    d = np.diff(y) / h
    same = (d[:-1] * d[1:]) > 0
    w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / d[:-1] + w2 / d[1:])
    m[1:-1] = np.where(same, harmonic, 0.0)  # flat at every peak, valley and plateau edge
    return m


def hermite(x: np.ndarray, y: np.ndarray, m: np.ndarray, at: np.ndarray) -> np.ndarray:
    seg = np.clip(np.searchsorted(x, at, side="right") - 1, 0, len(x) - 2)
    h = x[seg + 1] - x[seg]
    t = (at - x[seg]) / h
    t2, t3 = t * t, t * t * t
    return ((2 * t3 - 3 * t2 + 1) * y[seg] + (t3 - 2 * t2 + t) * h * m[seg]
            + (-2 * t3 + 3 * t2) * y[seg + 1] + (t3 - t2) * h * m[seg + 1])


def _extrema(values: np.ndarray) -> np.ndarray:
    """Indices where the curve turns or a plateau starts or ends."""
    d = np.sign(np.diff(values))
    change = np.flatnonzero(d[1:] != d[:-1]) + 1
    return change


def reduce_curve(values: np.ndarray, tolerance: float = DEFAULT_TOLERANCE, start: float = 0.0,
                 step: float = 1.0) -> BezierKeys:
    """Keys for samples values[i] at start + i*step, with |curve - samples| <= tolerance."""
    values = np.asarray(values, np.float64)
    n = len(values)
    xs = start + np.arange(n) * step
    if n == 0:
        raise ValueError("no samples")
    if n == 1 or np.ptp(values) <= tolerance:
        idx = np.array([0, n - 1]) if n > 1 and not np.allclose(values[0], values[-1]) else np.array([0])
        idx = np.unique(idx)
    else:
        idx = np.unique(np.concatenate([[0, n - 1], _extrema(values)]))
        while True:
            fitted = hermite(xs[idx], values[idx], monotone_slopes(xs[idx], values[idx]), xs)
            err = np.abs(fitted - values)
            if err.max() <= tolerance:
                break
            # add the worst sample of every segment that is out of tolerance
            seg = np.clip(np.searchsorted(idx, np.arange(n), side="right") - 1, 0, len(idx) - 1)
            bad = err > tolerance
            order = np.lexsort((-err, seg))
            first_of_seg = np.ones(n, bool)
            first_of_seg[1:] = seg[order][1:] != seg[order][:-1]
            worst = order[first_of_seg & bad[order]]
            idx = np.unique(np.concatenate([idx, worst]))
    kx, ky = xs[idx], values[idx]
    return hermite_keys(kx, ky, monotone_slopes(kx, ky), step)


def hold_keys(value: float, start: float, end: float | None = None) -> BezierKeys:
    """A value held: one flat key at start (what reduce_curve makes of a constant curve), or a flat key at
    each end when the hold must show where it ends."""
    frames = np.array([start] if end is None else [start, end], np.float64)
    return hermite_keys(frames, np.full(len(frames), value), np.zeros(len(frames)))


def hermite_keys(kx: np.ndarray, ky: np.ndarray, m: np.ndarray, step: float = 1.0) -> BezierKeys:
    """Bezier keys whose segments are the cubic Hermite curve through (kx, ky) with slopes m:
    handles one third of the way to each neighbour."""
    kx, ky, m = (np.asarray(a, np.float64) for a in (kx, ky, m))
    h_prev = np.concatenate([[kx[1] - kx[0] if len(kx) > 1 else step], np.diff(kx)]) / 3.0
    h_next = np.concatenate([np.diff(kx), [kx[-1] - kx[-2] if len(kx) > 1 else step]]) / 3.0
    left = np.stack([kx - h_prev, ky - m * h_prev], axis=1)
    right = np.stack([kx + h_next, ky + m * h_next], axis=1)
    return BezierKeys(kx, ky, left, right)
