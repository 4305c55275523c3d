"""Fixtures of the book tests: the site built by `make book` into a fresh folder, served on
127.0.0.1, and headless Debian chromium (tests/_browser.py) that logs every request it makes."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._browser import chromium

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The course's site, built by `make book` (the notebooks are not executed)."""
    out = tmp_path_factory.mktemp("book") / "html"
    build = subprocess.run(
        ["make", "-s", "book", f"BOOK_DIR={out}"], cwd=PROJECT, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def site_url(site: Path) -> Iterator[str]:
    """The built site served over HTTP on a free 127.0.0.1 port."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian chromium (tests/_browser.py, as in tests/app), logging the network too."""
    with chromium(logs=("browser", "performance")) as driver:
        yield driver
