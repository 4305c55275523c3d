"""Saved model directories: round trip, validation, atomic overwrite."""

from __future__ import annotations

import json
import os
import stat

import keras
import numpy as np
import pytest

from helpers.formats import METADATA_FILE, MODEL_FILE
from helpers.model_card import ModelDirError, read_card
from helpers.serving.model_dir import load_model_dir, save_model_dir


def _model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def _metadata(**extra) -> dict:
    classes = [{"name": "Chihuahua", "wnid": "n02085620"}, {"name": "Mudi", "wnid": None}]
    return {"name": "tiny", "classes": classes, "image_size": 8, "output": "logits", **extra}


def test_round_trip_keeps_predictions_and_metadata(tmp_path):
    model = _model(0)
    x = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    path = save_model_dir(tmp_path / "m", model, _metadata(metrics={"val_accuracy": 0.5}))
    assert sorted(p.name for p in path.iterdir()) == sorted([MODEL_FILE, METADATA_FILE])
    loaded, card = load_model_dir(path)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
    assert card.classes[1] == {"name": "Mudi", "wnid": None}
    assert card.metrics == {"val_accuracy": 0.5}
    # defaults of docs/formats.md are filled in
    assert card.task == "dog-breed" and card.weights is None and card.created
    assert json.loads((path / METADATA_FILE).read_text()) == card.to_dict()


def test_overwrite_replaces_both_files_and_leaves_no_temp(tmp_path):
    x = np.full((1, 8, 8, 3), 200.0, "float32")
    save_model_dir(tmp_path / "m", _model(0), _metadata(name="first"))
    second = _model(1)
    save_model_dir(tmp_path / "m", second, _metadata(name="second"))
    loaded, card = load_model_dir(tmp_path / "m")
    assert card.name == "second"
    np.testing.assert_allclose(loaded(x).numpy(), second(x).numpy(), rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_save_refuses_bad_metadata(tmp_path):
    model = _model(0)
    with pytest.raises(ModelDirError, match="required keys"):
        save_model_dir(tmp_path / "a", model, {"name": "x"})
    with pytest.raises(ModelDirError, match="2 outputs but 1 classes"):
        save_model_dir(tmp_path / "b", model, _metadata(classes=[{"name": "A"}]))
    with pytest.raises(ModelDirError, match="'output'"):
        save_model_dir(tmp_path / "c", model, _metadata(output="softmax"))
    with pytest.raises(ModelDirError, match="out of range"):
        save_model_dir(tmp_path / "d", model, _metadata(dog_classes=[0, 5]))
    assert list(tmp_path.iterdir()) == []


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(ModelDirError, match="no metadata.json"):
        load_model_dir(tmp_path)
    (tmp_path / METADATA_FILE).write_text("{not json")
    with pytest.raises(ModelDirError, match="not valid JSON"):
        read_card(tmp_path)
    (tmp_path / METADATA_FILE).write_text(json.dumps(_metadata()))
    with pytest.raises(ModelDirError, match="no model.keras"):
        load_model_dir(tmp_path)


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_saved_directory_and_files_get_the_umask_modes(tmp_path, mask):
    # tempfile's 0700 directory and 0600 files made a root-built model unreadable to the
    # container's non-root user; a saved model must have the modes mkdir and open give.
    old = os.umask(mask)
    try:
        path = save_model_dir(tmp_path / "m", _model(0), _metadata())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o777 & ~mask
    for name in (MODEL_FILE, METADATA_FILE):
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o666 & ~mask
