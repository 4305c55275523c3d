"""Shared fixtures for the code tests: real local HTTP servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from imageserver import ImageServer
from searchserver import SearchServer


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    """A fresh HTTP server on 127.0.0.1 with no routes; tests add what they serve."""
    with ImageServer() as server:
        yield server


@pytest.fixture
def search_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchServer]:
    """A stand-in for the image search engine on 127.0.0.1, answering nothing until told to."""
    with SearchServer(Path(tmp_path_factory.mktemp("search-tls"))) as server:
        yield server
