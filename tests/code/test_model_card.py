"""The model card (metadata.json): the one schema, built by training, read without TensorFlow,
changed on disk through one writer."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from _tinyset import make_tinyset

from helpers.model_card import ModelCard, ModelDirError, read_card, update_card, write_card

CLASSES = [{"name": "Chihuahua", "wnid": "n02085620"}, {"name": "Mudi", "wnid": None}]
# docs/formats.md: the keys every metadata.json carries.
DOCUMENTED = {"name", "version", "created", "task", "classes", "image_size", "output",
              "preprocessing", "backbone", "weights", "params", "data_manifest_sha256", "metrics",
              "training_seconds", "provenance"}  # fmt: skip


def test_a_trained_models_card_has_the_documented_keys_and_the_splits_hash(tmp_path: Path):
    from helpers.training import model_card, read_split

    split_dir = make_tinyset(tmp_path)
    _, classes = read_split(split_dir)
    card = model_card(name="simple_cnn", classes=classes, image_size=64, split_dir=split_dir,
                      params={"epochs": np.int64(1)}, metrics={"val_accuracy": np.float32(0.5)},
                      training_seconds=1.5)  # fmt: skip
    data = json.loads(json.dumps(card.to_dict()))  # NumPy scalars became JSON numbers
    assert set(data) == DOCUMENTED
    assert (
        data["data_manifest_sha256"]
        == hashlib.sha256((split_dir / "split.csv").read_bytes()).hexdigest()
    )
    assert data["metrics"] == {"val_accuracy": 0.5} and data["params"] == {"epochs": 1}
    assert data["task"] == "dog-breed" and data["output"] == "logits"
    assert "bilinear" in data["preprocessing"]
    assert [c["name"] for c in data["classes"]] == [c["name"] for c in classes]


def test_a_card_round_trips_and_writes_optional_keys_only_when_set(tmp_path):
    card = ModelCard(name="m", classes=CLASSES, image_size=8, temperature=1.5)
    write_card(tmp_path, card)
    assert read_card(tmp_path) == card
    written = json.loads((tmp_path / "metadata.json").read_text())
    assert written["temperature"] == 1.5
    assert not {"test_time_flip", "dog_classes", "not_a_dog_threshold"} & set(written)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output": "softmax"}, "'output'"),
        ({"image_size": "8"}, "image_size"),
        ({"image_size": 0}, "image_size"),
        ({"classes": []}, "non-empty"),
        ({"classes": [{"wnid": "n1"}]}, "'name' string"),
        ({"test_time_flip": "yes"}, "test_time_flip"),
        ({"dog_classes": [0, 5]}, "out of range"),
        ({"temperature": -1.0}, "temperature"),
        ({"colour": "red"}, "unknown keys"),
    ],
)
def test_a_malformed_card_is_refused_saying_why(change, message):
    data = {"name": "m", "classes": CLASSES, "image_size": 8, "output": "logits", **change}
    with pytest.raises(ModelDirError, match=message):
        ModelCard.from_dict(data)


def test_missing_required_keys_and_files_are_clear_errors(tmp_path):
    with pytest.raises(ModelDirError, match="required keys"):
        ModelCard.from_dict({"name": "x"})
    with pytest.raises(ModelDirError, match="no metadata.json"):
        read_card(tmp_path)
    (tmp_path / "metadata.json").write_text("[1, 2]")
    with pytest.raises(ModelDirError, match="JSON object"):
        read_card(tmp_path)
    (tmp_path / "metadata.json").write_text('{"name": "m", "classes": "Pug", "image_size": 8, '
                                            '"output": "logits"}')  # fmt: skip
    with pytest.raises(ModelDirError, match="classes"):
        read_card(tmp_path)


def test_update_card_changes_the_given_fields_only_and_keeps_the_umask_mode(tmp_path):
    card = ModelCard(name="m", classes=CLASSES, image_size=8, metrics={"holdout_accuracy": 0.4})
    write_card(tmp_path, card)
    old = os.umask(0o022)
    try:
        updated = update_card(tmp_path, temperature=0.8)
    finally:
        os.umask(old)
    assert updated == card.replace(temperature=0.8) == read_card(tmp_path)
    assert stat.S_IMODE((tmp_path / "metadata.json").stat().st_mode) == 0o644
    with pytest.raises(ModelDirError, match="temperature"):
        update_card(tmp_path, temperature=0.0)
    assert read_card(tmp_path).temperature == 0.8  # a refused change writes nothing
