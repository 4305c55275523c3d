"""Shared fixtures of the app tests: the embedded default model, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

DOG_BREED_DIR = "n02099601-golden_retriever"  # a breed the ImageNet model knows well


@pytest.fixture(scope="session")
def service():
    """The app's model service on the embedded default model (built once, cached in models/)."""
    from app.inference import ModelService
    from helpers.default_model import default_model_dir

    loaded = ModelService.load(default_model_dir())
    loaded.warm()
    return loaded


@pytest.fixture(scope="session")
def dog_photo(stanford_dogs: Path) -> Path:
    """A real dog photo from the shared data set (never copied into the project)."""
    folder = stanford_dogs / DOG_BREED_DIR
    photos = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if not photos:
        pytest.skip(f"no photos in the shared data set's {folder}")
    return photos[0]
