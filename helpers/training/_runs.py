"""A run directory's bookkeeping shared by `fit` and the distributed loop: which folder a
worker writes to, and the best logged epoch (for checkpointing and patience) after a resume."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def tf_config() -> dict:
    return json.loads(os.environ.get("TF_CONFIG") or "{}")


def cluster_size(config: dict) -> int:
    cluster = config.get("cluster", {})
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


def worker_dir(run_dir: Path) -> Path:
    """The chief writes to run_dir; other workers of a multi-worker run to their own subfolder
    so they never overwrite the chief's checkpoints and logs."""
    task = tf_config().get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    chief = kind == "chief" or (kind == "worker" and index == 0 and not has_chief())
    return run_dir if chief else run_dir / "workers" / f"{kind}_{index}"


def has_chief() -> bool:
    return bool(tf_config().get("cluster", {}).get("chief"))


def logged_values(log_path: Path, monitor: str) -> list[float]:
    """The values of `monitor` in an existing CSV log, one per logged epoch."""
    if not log_path.exists():
        return []
    with log_path.open(newline="") as f:
        return [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor)]


def higher_is_better(monitor: str) -> bool:
    """Keras's "auto" mode for doggo's metrics: accuracy and top-5 up, losses down."""
    return "acc" in monitor or "top" in monitor


def improves(value: float, best: float | None, monitor: str) -> bool:
    """Whether `value` of `monitor` beats the best so far (None: nothing yet)."""
    if best is None:
        return True
    return value > best if higher_is_better(monitor) else value < best


def best_and_wait(values: Sequence[float], monitor: str) -> tuple[float | None, int]:
    """The best of logged `monitor` values and the epochs logged since it (for patience)."""
    if not values:
        return None, 0
    pick = np.argmax if higher_is_better(monitor) else np.argmin
    index = int(pick(values))
    return float(values[index]), len(values) - 1 - index


def best_logged(log_path: Path, monitor: str) -> float | None:
    """The best value of `monitor` in an existing CSV log, to resume checkpointing."""
    return best_and_wait(logged_values(log_path, monitor), monitor)[0]
