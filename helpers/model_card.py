"""The model card: what travels with a saved model in metadata.json (docs/formats.md).

One dataclass holds the schema; it is built by the notebooks that train (helpers.training
.model_card), read by everything that uses a model, and changed on disk only through
`update_card`. It needs no TensorFlow, so the app and tools read cards without loading Keras.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.atomic import write_atomic
from helpers.formats import METADATA_FILE, MODEL_INPUT

OUTPUTS = ("logits", "probabilities")
REQUIRED = ("name", "classes", "image_size", "output")
# Keys written only when set, so a card without them reads as it did before they existed.
OPTIONAL = ("dog_classes", "not_a_dog_threshold", "temperature", "test_time_flip")


class ModelDirError(ValueError):
    """A saved model directory or its model card (metadata.json) is missing or malformed."""


def _today() -> str:
    return datetime.date.today().isoformat()


@dataclass(frozen=True)
class ModelCard:
    """The metadata of a saved model; `classes` are `{"name", "wnid"}` dicts in output order."""

    name: str
    classes: list[dict[str, str | None]]
    image_size: int
    output: str = "logits"
    version: str = "1"
    created: str = field(default_factory=_today)
    task: str = "dog-breed"
    preprocessing: str = MODEL_INPUT
    backbone: str | None = None
    weights: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    data_manifest_sha256: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    training_seconds: float | None = None
    provenance: str = ""
    dog_classes: list[int] | None = None  # outputs counted as dogs (others: "not a dog")
    not_a_dog_threshold: float | None = None  # dog probability mass under which: not a dog
    temperature: float | None = None  # calibration: logits are divided by it (None: 1)
    test_time_flip: bool | None = None  # outputs averaged over the photo and its mirror image

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Return the card a metadata.json object describes, or raise ModelDirError saying why."""
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise ModelDirError(f"metadata lacks required keys {missing}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelDirError(f"metadata has unknown keys {unknown} (docs/formats.md)")
        classes = data["classes"]
        if not isinstance(classes, list) or not classes:
            raise ModelDirError("metadata 'classes' must be a non-empty list")
        for i, item in enumerate(classes):
            if not (isinstance(item, dict) and isinstance(item.get("name"), str)):
                raise ModelDirError(f"class {i} must be a dict with a 'name' string, got {item!r}")
        fields = {**data, "classes": [{"name": c["name"], "wnid": c.get("wnid")} for c in classes]}
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata.json object: every key of docs/formats.md, optional ones if set."""
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if k not in OPTIONAL or v is not None}

    def replace(self, **changes: Any) -> ModelCard:
        """Return a copy with `changes` applied (and checked)."""
        return dataclasses.replace(self, **changes)

    def check_outputs(self, num_outputs: int) -> None:
        """Raise ModelDirError unless a model with `num_outputs` outputs fits this card."""
        if num_outputs != len(self.classes):
            raise ModelDirError(
                f"the model has {num_outputs} outputs but {len(self.classes)} classes"
            )


def _validate(card: ModelCard) -> None:
    if card.output not in OUTPUTS:
        raise ModelDirError(f"'output' must be 'logits' or 'probabilities', not {card.output!r}")
    if isinstance(card.image_size, bool) or not isinstance(card.image_size, int):
        raise ModelDirError(f"'image_size' must be a positive int, not {card.image_size!r}")
    if card.image_size <= 0:
        raise ModelDirError(f"'image_size' must be a positive int, not {card.image_size!r}")
    if not card.classes:
        raise ModelDirError("metadata 'classes' must be a non-empty list")
    if card.test_time_flip is not None and not isinstance(card.test_time_flip, bool):
        raise ModelDirError(f"'test_time_flip' must be true or false, not {card.test_time_flip!r}")
    for index in card.dog_classes or []:
        if not 0 <= index < len(card.classes):
            raise ModelDirError(f"dog class index {index} is out of range")
    if card.temperature is not None and not card.temperature > 0:
        raise ModelDirError(f"'temperature' must be positive, not {card.temperature!r}")


def card_json(card: ModelCard) -> str:
    """Return the metadata.json text of `card`."""
    return json.dumps(card.to_dict(), indent=2, ensure_ascii=False) + "\n"


def read_card(model_dir: str | os.PathLike) -> ModelCard:
    """Read `<model_dir>/metadata.json`; raise ModelDirError if it is missing or malformed."""
    file = Path(model_dir) / METADATA_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        message = f"{model_dir} is not a saved model directory: no {METADATA_FILE}"
        raise ModelDirError(message) from None
    except json.JSONDecodeError as err:
        raise ModelDirError(f"{file} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ModelDirError(f"{file} must hold a JSON object")
    try:
        return ModelCard.from_dict(data)
    except TypeError as err:  # a value of the wrong kind, e.g. classes as a string
        raise ModelDirError(f"{file}: {err}") from err


def write_card(model_dir: str | os.PathLike, card: ModelCard) -> Path:
    """Write `card` to `<model_dir>/metadata.json` atomically; return the file."""
    return write_atomic(Path(model_dir) / METADATA_FILE, card_json(card))


def update_card(model_dir: str | os.PathLike, **changes: Any) -> ModelCard:
    """Apply `changes` to a saved model's card on disk (atomically) and return the new card;
    a card they leave as it was is not written again (its file keeps its time)."""
    old = read_card(model_dir)
    card = old.replace(**changes)
    if card != old:
        write_card(model_dir, card)
    return card
