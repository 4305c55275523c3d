"""benchmarks/gpu_check.py, the check for a lent GPU machine, runs end to end here with --smoke."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_check.py"
DATASET = PROJECT_ROOT.parent / "shared" / "datasets" / "stanford-dogs-120"


@pytest.mark.skipif(
    not DATASET.is_dir(), reason="no shared Stanford Dogs photos beside the project"
)
def test_gpu_check_smoke_trains_the_three_models_on_the_fast_pipeline(tmp_path: Path) -> None:
    out, cache = tmp_path / "figures.json", tmp_path / "cache"
    command = [
        sys.executable,
        str(SCRIPT),
        "--smoke",
        "--json",
        str(out),
        "--cache-dir",
        str(cache),
    ]
    run = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(out.read_text())
    models = figures["models"]
    assert list(models) == ["simple CNN", "Xception from scratch", "efficientnet_lite0 fine-tuned"]
    for row in models.values():
        assert row["params"] > 0 and row["model_alone_img_s"] > 0 and row["training_img_s"] > 0
    assert figures["pipeline_img_s"] > 0
    # The photos went through the fast pipeline's shards, at the smoke run's size.
    size = figures["settings"]["size"]
    assert list((cache / f"train-{size}px").glob("shard-*.bin"))
    assert "| Xception from scratch |" in run.stdout
