"""Calibration: ECE, temperature scaling on synthetic logits with a known temperature, metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import softmax

from helpers.evaluation.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    probs_to_logits,
    reliability_diagram,
    save_temperature,
)
from helpers.model_card import read_card


def _calibrated_set(n: int = 20000, k: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits z and labels drawn from softmax(z): softmax(z) is calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, (n, k))
    probs = softmax(z, axis=1)
    y = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z, y


def test_calibrated_probabilities_have_ece_near_zero():
    z, y = _calibrated_set()
    assert expected_calibration_error(y, softmax(z, axis=1)) < 0.015


def test_ece_matches_a_hand_computed_case():
    # 10 predictions at 0.8 confidence, 5 right: one bin, |0.5 - 0.8| = 0.3
    probs = np.tile([0.8, 0.2], (10, 1))
    y = np.array([0] * 5 + [1] * 5)
    assert expected_calibration_error(y, probs) == pytest.approx(0.3)


@pytest.mark.parametrize("true_t", [2.5, 0.5])
def test_fit_temperature_undoes_a_known_temperature(true_t):
    z, y = _calibrated_set()
    distorted = z * true_t  # over-confident for 2.5, under-confident for 0.5
    t = fit_temperature(distorted, y)
    assert t == pytest.approx(true_t, rel=0.1)
    before = expected_calibration_error(y, softmax(distorted, axis=1))
    after = expected_calibration_error(y, apply_temperature(distorted, t))
    assert after < before / 3 and after < 0.02


def test_fit_temperature_from_probabilities_via_log():
    z, y = _calibrated_set(seed=1)
    probs = softmax(z * 2.5, axis=1)
    assert fit_temperature(probs_to_logits(probs), y) == pytest.approx(2.5, rel=0.1)


def test_apply_temperature_one_is_softmax():
    z, _ = _calibrated_set(n=50)
    np.testing.assert_allclose(apply_temperature(z, 1.0), softmax(z, axis=1))


def test_reliability_diagram_before_and_after():
    z, y = _calibrated_set(n=2000)
    single = reliability_diagram(y, softmax(z, axis=1), 10)
    both = reliability_diagram(y, softmax(2 * z, axis=1), 10, probs_after=softmax(z, axis=1))
    assert len(single.axes) == 1 and len(both.axes) == 2


def test_save_temperature_changes_only_that_key(tmp_path):
    metadata = {
        "name": "m",
        "output": "logits",
        "classes": [{"name": "Pug", "wnid": None}],
        "image_size": 8,
        "created": "2026-01-02",
        "metrics": {"holdout": {"top1": 0.5}},
    }
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    before = read_card(tmp_path)
    save_temperature(tmp_path, 1.7)
    assert read_card(tmp_path) == before.replace(temperature=1.7)
    written = json.loads((tmp_path / "metadata.json").read_text())
    assert {k: written[k] for k in metadata} == metadata and written["temperature"] == 1.7
    assert [p.name for p in tmp_path.iterdir()] == ["metadata.json"]  # no temporary left
    with pytest.raises(ValueError):
        save_temperature(tmp_path, 0.0)
    with pytest.warns(UserWarning, match="not logits"):
        (tmp_path / "metadata.json").write_text(json.dumps({**metadata, "output": "probabilities"}))
        save_temperature(tmp_path, 2.0)
