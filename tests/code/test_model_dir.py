"""Saved model directories: round trip, validation, atomic overwrite, the same model again."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile

import h5py
import keras
import numpy as np
import pytest

from helpers.evaluation.calibration import save_temperature
from helpers.formats import METADATA_FILE, MODEL_FILE
from helpers.model_card import ModelDirError, read_card
from helpers.serving.model_dir import load_model_dir, same_keras_archive, save_model_dir


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


# ------------------------------------------------------------ saving the same model again

OLD_NS = 1_000_000_000_000_000_000  # 2001: any rewrite gives a file a newer time than this


def _shared_policy_model(seed: int) -> keras.Model:
    """Two layers share one dtype policy object, so config.json numbers it by its id()."""
    keras.backend.clear_session()  # layer names restart, as in a fresh kernel
    keras.utils.set_random_seed(seed)
    policy = keras.DTypePolicy("float32")
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, dtype=policy)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, dtype=policy)(x))


def _aged(folder) -> dict[str, tuple[int, bytes]]:
    """Set every file's times far back; return each file's (mtime_ns, bytes)."""
    for p in folder.iterdir():
        os.utime(p, ns=(OLD_NS, OLD_NS))
    return _snapshot(folder)


def _snapshot(folder) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def _shared_ids(path) -> set[int]:
    with zipfile.ZipFile(path) as archive:
        return set(re.findall(r'"shared_object_id": (\d+)', archive.read("config.json").decode()))


def test_saving_the_same_model_again_changes_no_file(tmp_path, capsys):
    first = _shared_policy_model(0)
    path = save_model_dir(tmp_path / "m", first, _metadata(training_seconds=12.5))
    before = _aged(path)
    second = _shared_policy_model(0)  # the same model, rebuilt: other objects, other id()s
    saved = save_model_dir(path, second, _metadata(created="2999-01-01", training_seconds=0.1))
    assert saved == path and _snapshot(path) == before
    assert "already holds this model and card: left unchanged" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary left
    # The check did see two configs that differ in bytes: shared objects numbered by address.
    save_model_dir(tmp_path / "other", second, _metadata())
    assert _shared_ids(path / MODEL_FILE) != _shared_ids(tmp_path / "other" / MODEL_FILE)
    assert read_card(path).training_seconds == 12.5


def test_a_model_with_other_weights_is_rewritten(tmp_path, capsys):
    x = np.full((1, 8, 8, 3), 200.0, "float32")
    path = save_model_dir(tmp_path / "m", _shared_policy_model(0), _metadata())
    before = _aged(path)
    other = _shared_policy_model(0)
    weights = other.get_weights()
    weights[0] = np.nextafter(weights[0], np.inf)  # one ulp: another model all the same
    other.set_weights(weights)
    save_model_dir(path, other, _metadata())
    after = _snapshot(path)
    assert after[MODEL_FILE][1] != before[MODEL_FILE][1]
    assert all(after[name][0] > OLD_NS for name in (MODEL_FILE, METADATA_FILE))
    loaded, _ = load_model_dir(path)
    np.testing.assert_array_equal(loaded.get_weights()[0], weights[0])
    np.testing.assert_allclose(loaded(x).numpy(), other(x).numpy(), rtol=1e-6)
    assert "already holds" not in capsys.readouterr().out


def test_the_same_model_with_a_new_card_keeps_its_file_its_date_and_training_time(tmp_path):
    path = save_model_dir(
        tmp_path / "m",
        _shared_policy_model(0),
        _metadata(created="2020-02-02", training_seconds=9.0),
    )
    before = _aged(path)
    save_model_dir(path, _shared_policy_model(0), _metadata(metrics={"val_accuracy": 0.75}))
    after = _snapshot(path)
    assert after[MODEL_FILE] == before[MODEL_FILE]
    assert after[METADATA_FILE][0] > OLD_NS
    card = read_card(path)
    assert card.metrics == {"val_accuracy": 0.75}
    assert (card.created, card.training_seconds) == ("2020-02-02", 9.0)


def test_a_temperature_fitted_since_stays_while_nothing_else_changes(tmp_path):
    path = save_model_dir(tmp_path / "m", _shared_policy_model(0), _metadata())
    save_temperature(path, 1.5)
    before = _aged(path)
    save_temperature(path, 1.5)  # the same temperature again: nothing written
    assert _snapshot(path) == before
    save_model_dir(path, _shared_policy_model(0), _metadata())  # the training notebook again
    assert _snapshot(path) == before and read_card(path).temperature == 1.5
    # Another card (here other metrics) drops it: it was fitted to what the old card described.
    save_model_dir(path, _shared_policy_model(0), _metadata(metrics={"val_accuracy": 0.5}))
    assert read_card(path).temperature is None


def _rewritten(source, target, *, nudge: bool = False) -> None:
    """Copy a .keras archive with new zip timestamps and its weights file rebuilt by h5py (other
    bytes, same groups, datasets and attributes); with `nudge`, one weight moved by one ulp."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename.endswith(".h5"):
                data = _rebuilt_h5(data, nudge)
            new.writestr(zipfile.ZipInfo(info.filename, date_time=(2030, 1, 1, 0, 0, 0)), data)


def _rebuilt_h5(data: bytes, nudge: bool) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(io.BytesIO(data), "r") as old, h5py.File(buffer, "w", track_order=True) as new:
        new.attrs.update(old.attrs)
        names: list[str] = []
        old.visit(names.append)
        for name in reversed(names):  # another creation order: other bytes
            item = old[name]
            if isinstance(item, h5py.Dataset):
                value = item[()]
                if nudge and value.dtype.kind == "f" and value.size:
                    value = value.copy()
                    value.flat[0] = np.nextafter(value.flat[0], np.inf)
                    nudge = False
                new.create_dataset(name, data=value, track_times=True)
            else:
                new.require_group(name)
            new[name].attrs.update(item.attrs)
    return buffer.getvalue()


def test_archives_compare_by_content_not_by_bytes_or_times(tmp_path):
    path = save_model_dir(tmp_path / "m", _shared_policy_model(0), _metadata())
    original = path / MODEL_FILE
    _rewritten(original, tmp_path / "same.keras")
    _rewritten(original, tmp_path / "nudged.keras", nudge=True)
    with zipfile.ZipFile(original) as a, zipfile.ZipFile(tmp_path / "same.keras") as b:
        assert a.read("model.weights.h5") != b.read("model.weights.h5")  # the bytes differ
    assert same_keras_archive(original, tmp_path / "same.keras")
    assert not same_keras_archive(original, tmp_path / "nudged.keras")
    assert not same_keras_archive(original, tmp_path / "missing.keras")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    assert not same_keras_archive(original, tmp_path / "broken.keras")
