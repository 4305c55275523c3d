"""Fixtures for every test folder: the shared Stanford Dogs data set, outside the project.

At the project root rather than in tests/: a tests/conftest.py would put tests/ on sys.path
(pytest's default prepend import mode), where tests/app would shadow the app package.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import helpers

# ../shared/datasets next to the checkout; never copied into the project.
STANFORD_DOGS = (
    Path(helpers.__file__).resolve().parents[1].parent / "shared" / "datasets" / "stanford-dogs-120"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "shared_data: reads ../shared/datasets (set on every test that uses the stanford_dogs "
        "fixture); skipped when it is absent",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that read the shared data set, so `-m "not shared_data"` leaves them out."""
    for item in items:
        if "stanford_dogs" in getattr(item, "fixturenames", ()):
            item.add_marker("shared_data")


@pytest.fixture(scope="session")
def stanford_dogs() -> Path:
    """The shared Stanford Dogs folder (120 `<wnid>-<breed>` sub-folders); skips if absent."""
    if not STANFORD_DOGS.is_dir():
        pytest.skip(f"shared Stanford Dogs data set not present at {STANFORD_DOGS}")
    return STANFORD_DOGS
