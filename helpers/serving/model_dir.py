"""Save and load the saved-model directory of docs/formats.md: `model.keras` + `metadata.json`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    """
    path, card = Path(path), as_card(card)
    card.check_outputs(int(model.outputs[0].shape[-1]))
    with publishing_dir(path, order=(MODEL_FILE, METADATA_FILE)) as tmp:
        model.save(tmp / MODEL_FILE)
        write_card(tmp, card)
    return path


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
