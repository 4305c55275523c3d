"""Save and load the saved-model directory of docs/formats.md: `model.keras` + `metadata.json`."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from helpers.atomic import publishing_dir
from helpers.formats import METADATA_FILE, MODEL_FILE
from helpers.model_card import ModelCard, ModelDirError, read_card, write_card

if TYPE_CHECKING:
    import keras


def as_card(card: ModelCard | Mapping[str, Any]) -> ModelCard:
    """Return `card` as a ModelCard (a metadata.json-shaped mapping is checked and converted)."""
    return card if isinstance(card, ModelCard) else ModelCard.from_dict(card)


def save_model_dir(path: str | Path, model: keras.Model, card: ModelCard | Mapping) -> Path:
    """Write `model` and its card to directory `path` atomically; return the directory.

    Both files are written into a temporary sibling directory first, so a reader never sees a
    half-written model: a new directory appears whole, an existing one has its files replaced,
    the model before the metadata. Modes follow the umask, as plain `mkdir` and `open` give.
    When `path` already holds the same model (`same_keras_archive`), its model.keras is left
    untouched and its card keeps `created` and `training_seconds` (and a `temperature` fitted
    since, if the card is otherwise the same); a card that is then the same is left untouched
    too, and this says so: re-running a notebook changes no file.
    """
    path, card = Path(path), as_card(card)
    card.check_outputs(int(model.outputs[0].shape[-1]))
    old = _existing_card(path)
    with publishing_dir(path, order=(MODEL_FILE, METADATA_FILE)) as tmp:
        model.save(tmp / MODEL_FILE)
        same = old is not None and same_keras_archive(tmp / MODEL_FILE, path / MODEL_FILE)
        if old is not None and same:
            # publishing_dir publishes only what tmp holds: the existing file stays as it is.
            (tmp / MODEL_FILE).unlink()
            card = card_for_the_same_model(card, old)
        if not same or card != old:
            write_card(tmp, card)
    if same:
        kept = "model and card: left unchanged" if card == old else "model: wrote its new card"
        print(f"{path} already holds this {kept}", flush=True)
    return path


def _existing_card(path: Path) -> ModelCard | None:
    """The card of a saved model already at `path`, or None (nothing there, or unreadable)."""
    if not (path / MODEL_FILE).is_file():
        return None
    try:
        return read_card(path)
    except ModelDirError:
        return None


def card_for_the_same_model(card: ModelCard, old: ModelCard) -> ModelCard:
    """Return `card` for a model unchanged since `old` was written: the day it was made and
    how long it trained are old's (a re-run that loads a finished run re-measures neither), and
    a temperature calibrated since (06) stays when nothing else on the card changed."""
    card = card.replace(
        created=old.created,
        training_seconds=card.training_seconds
        if old.training_seconds is None
        else old.training_seconds,
    )
    if card.temperature is None and card.replace(temperature=old.temperature) == old:
        return old
    return card


# What Keras 3 puts in a .keras zip (keras/src/saving/saving_lib.py): metadata.json (the Keras
# version and `date_saved`, the time of saving), config.json (the architecture; objects used
# twice carry a "shared_object_id" that is their id(), a memory address), the variables in
# model.weights.h5 (or .npz) and assets/. The zip entries' own timestamps are the save time too.
_SAVE_TIME = "date_saved"
_SHARED_ID = "shared_object_id"
_CHUNK = 1 << 20


def same_keras_archive(a: str | Path, b: str | Path) -> bool:
    """Whether two .keras files hold the same saved model: the same members, the same Keras
    version, the same config (shared objects numbered in order of appearance, not by address)
    and byte-identical variables and assets (an .h5 that differs in bytes is compared by its
    groups, datasets and attributes). Save times do not count; a missing file is not the same."""
    if not (Path(a).is_file() and Path(b).is_file()):
        return False
    try:
        with zipfile.ZipFile(a) as first, zipfile.ZipFile(b) as second:
            names = sorted(first.namelist())
            if names != sorted(second.namelist()):
                return False
            return all(_same_member(first, second, name) for name in names)
    except (zipfile.BadZipFile, ValueError, OSError):
        return False  # an unreadable archive is not the model about to be saved


def _same_member(first: zipfile.ZipFile, second: zipfile.ZipFile, name: str) -> bool:
    if name == "metadata.json":
        return _keras_metadata(first.read(name)) == _keras_metadata(second.read(name))
    if name == "config.json":
        return _numbered_config(first.read(name)) == _numbered_config(second.read(name))
    if _same_bytes(first, second, name):
        return True
    return name.endswith(".h5") and _h5_contents(first.read(name)) == _h5_contents(
        second.read(name)
    )


def _keras_metadata(data: bytes) -> dict:
    metadata = json.loads(data)
    metadata.pop(_SAVE_TIME, None)
    return metadata


def _numbered_config(data: bytes) -> Any:
    """The config with each shared object's id() replaced by its order of first appearance."""
    numbers: dict[Any, int] = {}

    def renumber(node: Any) -> Any:
        if isinstance(node, list):
            return [renumber(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: renumber(value) for key, value in node.items()}
        if _SHARED_ID in node:
            out[_SHARED_ID] = numbers.setdefault(node[_SHARED_ID], len(numbers))
        return out

    return renumber(json.loads(data))


def _same_bytes(first: zipfile.ZipFile, second: zipfile.ZipFile, name: str) -> bool:
    if first.getinfo(name).file_size != second.getinfo(name).file_size:
        return False
    with first.open(name) as one, second.open(name) as other:
        while chunk := one.read(_CHUNK):
            if chunk != other.read(len(chunk)):
                return False
    return True


def _h5_contents(data: bytes) -> dict[str, tuple]:
    """Every group and dataset of an HDF5 file: its attributes and, for a dataset, its dtype,
    shape and bytes (bitwise, so NaNs compare equal), keyed by path."""
    import h5py  # Keras's own dependency for .keras files

    def plain(value: Any) -> tuple:
        array = np.asarray(value)
        raw = repr(array.tolist()) if array.dtype.kind == "O" else array.tobytes()
        return array.dtype.str, array.shape, raw

    contents: dict[str, tuple] = {}

    def visit(name: str, item: Any) -> None:
        attributes = tuple(sorted((key, plain(value)) for key, value in item.attrs.items()))
        dataset = plain(item[()]) if isinstance(item, h5py.Dataset) else None
        contents[name] = (attributes, dataset)

    with h5py.File(io.BytesIO(data), "r") as file:
        visit("/", file)
        file.visititems(visit)
    return contents


def load_model_dir(path: str | Path) -> tuple[keras.Model, ModelCard]:
    """Load a saved model directory; return (model, card), checking they agree."""
    import keras  # here, so that reading cards (the app's model list, 06's labels) needs no Keras

    path = Path(path)
    card = read_card(path)
    if not (path / MODEL_FILE).is_file():
        raise ModelDirError(f"{path} has metadata but no {MODEL_FILE}")
    model = keras.saving.load_model(path / MODEL_FILE, compile=False)
    card.check_outputs(int(model.outputs[0].shape[-1]))
    return model, card
