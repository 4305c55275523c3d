"""Shared fixtures of the app tests: the embedded default model, loaded once per session, and
gunicorn serving it on a free 127.0.0.1 port (for the browser and the slow-client tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120  # seconds for gunicorn's worker to load and warm the model on a busy machine

DOG_BREED_DIR = "n02099601-golden_retriever"  # a breed the ImageNet model knows well


@pytest.fixture(scope="session")
def service():
    """The app's model service on the embedded default model (built once, cached in models/)."""
    from app.inference import ModelService
    from helpers.serving.default_model import default_model_dir

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


def _default_model_dir() -> Path:
    from helpers.serving.default_model import default_model_dir

    return default_model_dir()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(
        f"gunicorn did not answer /healthz in {START_TIMEOUT} s:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[str]:
    """gunicorn serving the app with the embedded model on a free 127.0.0.1 port."""
    port = _free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "DOGGO_MODEL_DIR": str(_default_model_dir()),
        "DOGGO_MAX_UPLOAD_MB": "10",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()  # gunicorn's graceful shutdown: the arbiter stops its workers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
