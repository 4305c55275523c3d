"""Every notebook (lessons and solutions) opens in Colab and Kaggle from badges in its first
markdown cell, pointing at exactly that notebook in the repository recorded in pyproject.toml."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import tomllib

PROJECT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(PROJECT.glob("notebooks/*.ipynb")) + sorted(PROJECT.glob("solutions/*.ipynb"))
REPOSITORY = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["urls"][
    "Repository"
]
OWNER_REPO = urlsplit(REPOSITORY).path.strip("/")
BADGE = re.compile(r"\[!\[(Open in Colab|Open in Kaggle)\]\(([^)\s]+)\)\]\(([^)\s]+)\)")


def _badges(notebook: Path) -> dict[str, tuple[str, str]]:
    cells = json.loads(notebook.read_text())["cells"]
    first = next(cell for cell in cells if cell["cell_type"] == "markdown")
    return {label: (image, url) for label, image, url in BADGE.findall("".join(first["source"]))}


def _repo_file(blob_url: str) -> Path:
    """Return the project file that a github.com/<owner>/<repo>/blob/main/<path> URL names."""
    assert blob_url.startswith(f"https://github.com/{OWNER_REPO}/blob/main/"), blob_url
    return PROJECT / blob_url.split("/blob/main/", 1)[1]


def test_the_repository_is_a_github_url_and_every_lesson_is_checked():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPOSITORY)
    assert len([nb for nb in NOTEBOOKS if nb.parent.name == "notebooks"]) == 6


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda nb: nb.relative_to(PROJECT).as_posix())
def test_badges_open_exactly_this_notebook(notebook):
    badges = _badges(notebook)
    assert set(badges) == {"Open in Colab", "Open in Kaggle"}
    colab = urlsplit(badges["Open in Colab"][1])
    assert (colab.scheme, colab.netloc) == ("https", "colab.research.google.com")
    assert colab.path.startswith("/github/")
    colab_file = _repo_file("https://github.com/" + colab.path.removeprefix("/github/"))
    kaggle = urlsplit(badges["Open in Kaggle"][1])
    assert (kaggle.scheme, kaggle.netloc, kaggle.path) == (
        "https",
        "kaggle.com",
        "/kernels/welcome",
    )
    kaggle_file = _repo_file(parse_qs(kaggle.query)["src"][0])
    assert colab_file == kaggle_file == notebook
    assert notebook.is_file()
    for image, _ in badges.values():
        assert image.startswith("https://") and image.endswith(".svg")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda nb: nb.relative_to(PROJECT).as_posix())
def test_every_repository_url_in_a_notebook_is_the_recorded_one(notebook):
    twin = notebook.with_suffix(".py")
    text = twin.read_text() if twin.exists() else notebook.read_text()  # the twin may be newer
    for owner_repo in re.findall(r"github\.com/([\w.-]+/[\w.-]+)", text):
        assert owner_repo == OWNER_REPO
