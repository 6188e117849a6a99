import numpy as np
import pytest

from oris.core.curves import CurveSettings, animate, cues_from_posteriors
from oris.core.keys import reduce_curve


def dense_curves(seconds=20.0, fps=24.0, seed=0):
    logits = np.random.default_rng(seed).normal(size=(int(seconds * 100), 15)) * 3
    s = CurveSettings()
    return animate(cues_from_posteriors(logits, s), seconds, fps, s).frames


@pytest.mark.parametrize("tolerance", [0.002, 0.01, 0.05])
def test_keys_stay_within_tolerance_and_are_sparse(tolerance):
    frames = dense_curves()
    total = 0
    for v in range(frames.shape[1]):
        keys = reduce_curve(frames[:, v], tolerance, start=1.0)
        x = 1.0 + np.arange(len(frames))
        assert np.abs(keys.evaluate(x) - frames[:, v]).max() <= tolerance + 1e-9
        total += len(keys)
    assert total < frames.size / 3


def test_peaks_are_kept_exactly_and_nothing_overshoots():
    frames = dense_curves()
    for v in range(frames.shape[1]):
        keys = reduce_curve(frames[:, v], 0.02)
        fine = np.linspace(0, len(frames) - 1, len(frames) * 8)
        curve = keys.evaluate(fine)
        assert curve.max() <= frames[:, v].max() + 1e-9 and curve.min() >= frames[:, v].min() - 1e-9
        assert keys.y.max() == pytest.approx(frames[:, v].max())


def test_handles_are_aligned_thirds():
    keys = reduce_curve(np.array([0, 0, 1, 1, 0.3, 0.2, 0.9, 0]), 0.001)
    for i in range(1, len(keys) - 1):
        lx, ly = keys.left[i] - [keys.x[i], keys.y[i]]
        rx, ry = keys.right[i] - [keys.x[i], keys.y[i]]
        assert lx < 0 < rx and ly * rx == pytest.approx(ry * lx)
        assert -lx == pytest.approx((keys.x[i] - keys.x[i - 1]) / 3)


def test_flat_curve_needs_one_key():
    assert len(reduce_curve(np.zeros(100))) == 1
