"""Shared fixtures for the code tests: a real local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from imageserver import ImageServer


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    """A fresh HTTP server on 127.0.0.1 with no routes; tests add what they serve."""
    with ImageServer() as server:
        yield server
