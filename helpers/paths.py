"""Where things live: every path in a params file is relative to the project root."""

from __future__ import annotations

import os
from pathlib import Path

from helpers.formats import PER_BREED_CSV

# The checkout the package was installed from (editable install); DOGGO_HOME overrides it for
# installs elsewhere.
PROJECT_ROOT = Path(os.environ.get("DOGGO_HOME", Path(__file__).resolve().parents[1]))
# Trained models (bench, full) and the embedded default live here; demo runs keep theirs in runs/.
MODELS_DIR = PROJECT_ROOT / "models"
# The bench run's small results (logs, metrics), committed so the notebooks can plot them.
BENCH_RESULTS = PROJECT_ROOT / "results" / "bench"
BENCH_MODELS_CSV = "models.csv"  # one row per bench model: holdout metrics, size, training time


def is_url(path: str | os.PathLike) -> bool:
    """Return whether `path` names a tf.io.gfile URL (gs://, ram://, ...) rather than a file."""
    return "://" in str(path)


def project_path(path: str | os.PathLike) -> Path:
    """Return `path` resolved against the project root unless it is already absolute."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()


def shown_path(path: str | os.PathLike) -> str:
    """Return `path` relative to the project root when it is inside it, for stable output."""
    path = Path(path).resolve()
    try:
        return path.relative_to(PROJECT_ROOT.resolve()).as_posix()
    except ValueError:
        try:
            return Path(os.path.relpath(path, PROJECT_ROOT.resolve())).as_posix()
        except ValueError:
            return path.as_posix()


def raw_dir(data_dir: str | os.PathLike) -> Path:
    """Return the folder that 01_scrape fills under a data directory."""
    return project_path(data_dir) / "raw"


def split_dir(data_dir: str | os.PathLike) -> Path:
    """Return the folder that 02_split writes its manifest to under a data directory."""
    return project_path(data_dir) / "split"


def bench_log_file(name: str, folder: str | os.PathLike = BENCH_RESULTS) -> Path:
    """Return where the bench results keep a model's (or a training stage's) Keras CSV log."""
    return Path(folder) / f"{name}_log.csv"


def bench_per_breed_file(name: str, folder: str | os.PathLike = BENCH_RESULTS) -> Path:
    """Return where the bench results keep 06's per-breed holdout report of a model."""
    return Path(folder) / f"{name}_{PER_BREED_CSV}"
