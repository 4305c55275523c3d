"""Copy the bench run's small results into results/bench/, where the notebooks plot them as a
reference beside the demo's: training logs, holdout metrics and 06's per-breed report; no models
and no photos.

    .venv/bin/python -m helpers.pipeline params/bench.yaml   # about an hour on 2 cores
    .venv/bin/python scripts/bench_results.py                # then commit results/bench/
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys

from helpers.formats import PER_BREED_CSV
from helpers.paths import (
    BENCH_MODELS_CSV,
    BENCH_RESULTS,
    bench_log_file,
    bench_per_breed_file,
    project_path,
)

FIELDS = ("name", "classes", "image_size", "holdout_accuracy", "holdout_top5", "training_seconds")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default="models/bench")
    args = parser.parse_args()
    BENCH_RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for metadata_file in sorted(project_path(args.models_dir).glob("*/metadata.json")):
        model_dir = metadata_file.parent
        metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
        # Transfer models log each stage in its own folder; the others log in training/.
        for log in sorted((model_dir / "training").glob("**/log.csv")):
            stage = log.parent.relative_to(model_dir / "training").as_posix()
            suffix = "" if stage == "." else "_" + stage.replace("/", "_")
            shutil.copyfile(log, bench_log_file(metadata["name"] + suffix))
        report = model_dir / PER_BREED_CSV  # written by 06 for the best model
        if report.is_file():
            shutil.copyfile(report, bench_per_breed_file(metadata["name"]))
        metrics = metadata.get("metrics") or {}
        rows.append({"name": metadata["name"], "classes": len(metadata["classes"]),
                     "image_size": metadata["image_size"],
                     "holdout_accuracy": metrics.get("holdout_accuracy"),
                     "holdout_top5": metrics.get("holdout_top5"),
                     "training_seconds": round(metadata.get("training_seconds") or 0)})  # fmt: skip
    with open(BENCH_RESULTS / BENCH_MODELS_CSV, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} models -> {BENCH_RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
