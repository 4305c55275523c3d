"""Save and load the saved-model directory of docs/formats.md: `model.keras` + `metadata.json`."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import keras

from helpers.atomic import publishing_dir, write_atomic

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
REQUIRED_KEYS = ("name", "classes", "image_size", "output")
# Keys every metadata.json carries; missing ones are filled with these defaults on save.
DEFAULTS: dict[str, Any] = {
    "version": "1",
    "task": "dog-breed",
    "preprocessing": "",
    "backbone": None,
    "weights": None,
    "params": {},
    "data_manifest_sha256": None,
    "metrics": {},
    "training_seconds": None,
    "provenance": "",
}


class ModelDirError(ValueError):
    """A saved-model directory or its metadata is missing or malformed."""


def validate_metadata(metadata: dict[str, Any], num_outputs: int | None = None) -> dict[str, Any]:
    """Return a copy of `metadata` with defaults filled in, or raise ModelDirError saying why."""
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ModelDirError(f"metadata lacks required keys {missing}")
    meta = {**DEFAULTS, "created": datetime.date.today().isoformat(), **metadata}
    classes = meta["classes"]
    if not isinstance(classes, list) or not classes:
        raise ModelDirError("metadata 'classes' must be a non-empty list")
    for i, item in enumerate(classes):
        if not (isinstance(item, dict) and isinstance(item.get("name"), str)):
            raise ModelDirError(f"class {i} must be a dict with a 'name' string, got {item!r}")
    meta["classes"] = [{"name": c["name"], "wnid": c.get("wnid")} for c in classes]
    if meta["output"] not in ("logits", "probabilities"):
        raise ModelDirError(f"'output' must be 'logits' or 'probabilities', not {meta['output']!r}")
    if not isinstance(meta["image_size"], int) or meta["image_size"] <= 0:
        raise ModelDirError(f"'image_size' must be a positive int, not {meta['image_size']!r}")
    if num_outputs is not None and num_outputs != len(classes):
        raise ModelDirError(f"the model has {num_outputs} outputs but {len(classes)} classes")
    if not isinstance(meta.get("test_time_flip", False), bool):
        raise ModelDirError(
            f"'test_time_flip' must be true or false, not {meta['test_time_flip']!r}"
        )
    for index in meta.get("dog_classes") or []:
        if not 0 <= index < len(classes):
            raise ModelDirError(f"dog class index {index} is out of range")
    return meta


def _json_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def save_model_dir(path: str | Path, model: keras.Model, metadata: dict[str, Any]) -> Path:
    """Write `model` and its metadata to directory `path` atomically; return the directory.

    Both files are written into a temporary sibling directory first, so a reader never sees a
    half-written model: a new directory appears whole, an existing one has its files replaced,
    the model before the metadata. Modes follow the umask, as plain `mkdir` and `open` give.
    """
    path = Path(path)
    meta = validate_metadata(dict(metadata), num_outputs=int(model.outputs[0].shape[-1]))
    with publishing_dir(path, order=(MODEL_FILE, METADATA_FILE)) as tmp:
        model.save(tmp / MODEL_FILE)
        write_atomic(tmp / METADATA_FILE, _json_text(meta))
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Read and validate `<path>/metadata.json` without loading the model."""
    file = Path(path) / METADATA_FILE
    try:
        metadata = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelDirError(f"{path} is not a saved model directory: no {METADATA_FILE}") from None
    except json.JSONDecodeError as err:
        raise ModelDirError(f"{file} is not valid JSON: {err}") from err
    if not isinstance(metadata, dict):
        raise ModelDirError(f"{file} must hold a JSON object")
    return validate_metadata(metadata)


def load_model_dir(path: str | Path) -> tuple[keras.Model, dict[str, Any]]:
    """Load a saved model directory; return (model, metadata), checking they agree."""
    path = Path(path)
    metadata = read_metadata(path)
    if not (path / MODEL_FILE).is_file():
        raise ModelDirError(f"{path} has metadata but no {MODEL_FILE}")
    model = keras.saving.load_model(path / MODEL_FILE, compile=False)
    validate_metadata(metadata, num_outputs=int(model.outputs[0].shape[-1]))
    return model, metadata
