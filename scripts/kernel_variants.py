"""Which kernel settings change the demo's training numbers: 03_baseline for a few epochs in the
doggo kernel, on one core, and with each of its settings undone (or set as another CPU would).

    .venv/bin/python scripts/kernel_variants.py [--epochs 5]   # about 40 s a variant on 2 cores

Prints each variant's last logged epoch and whether it matches the doggo kernel's bit for bit.
A setting whose variant differs is one the kernel must pin; `taskset` (fewer cores, same
threads) must not differ. Needs the data of a demo run (`make demo`, or 01 and 02).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from helpers.kernel import KERNEL_NAME, kernelspec
from helpers.paths import PROJECT_ROOT

ENV = kernelspec()["env"]
# name -> (kernel env, command prefix)
VARIANTS: dict[str, tuple[dict[str, str], list[str]]] = {
    "doggo kernel": (ENV, []),
    "doggo kernel, one core (taskset -c 0)": (ENV, ["taskset", "-c", "0"]),
    "no instruction-set cap (this CPU's own)": (
        {k: v for k, v in ENV.items() if k != "ONEDNN_MAX_CPU_ISA"},
        [],
    ),
    "instruction set capped at SSE4.1": ({**ENV, "ONEDNN_MAX_CPU_ISA": "SSE41"}, []),
    "oneDNN custom ops on": ({**ENV, "TF_ENABLE_ONEDNN_OPTS": "1"}, []),
    "one intra-op thread": ({**ENV, "TF_NUM_INTRAOP_THREADS": "1"}, []),
}


def _install(kernels: Path, name: str, env: dict[str, str]) -> None:
    folder = kernels / "kernels" / name
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps({**kernelspec(), "env": env}))


def _last_epoch(work: Path, index: int, prefix: list[str], epochs: int) -> dict[str, str]:
    models = work / f"models-{index}"
    command = [
        *prefix, sys.executable, "-m", "papermill", "notebooks/03_baseline.ipynb",
        str(work / f"03-{index}.ipynb"), "-k", f"variant{index}", "--cwd", "notebooks",
        "-p", "models_dir", str(models), "-p", "epochs", str(epochs),
    ]  # fmt: skip
    # The notebook's own checks may fail after so few epochs; the log is written before them.
    subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, env=os.environ | {
        "JUPYTER_PATH": str(work)})  # fmt: skip
    with (models / "simple_cnn" / "training" / "log.csv").open(newline="") as f:
        return list(csv.DictReader(f))[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = {}
        for index, (name, (env, prefix)) in enumerate(VARIANTS.items()):
            _install(work, f"variant{index}", env)
            rows[name] = _last_epoch(work, index, prefix, args.epochs)
            print(f"{name}: done", file=sys.stderr, flush=True)
    reference = rows["doggo kernel"]
    print(
        f"| 03_baseline, epoch {args.epochs} | loss | val_loss | val_accuracy | same as "
        f"{KERNEL_NAME}? |\n| --- | ---: | ---: | ---: | --- |"
    )
    for name, row in rows.items():
        same = "yes" if row == reference else "no"
        print(
            f"| {name} | {float(row['loss']):.6f} | {float(row['val_loss']):.6f} | "
            f"{float(row['val_accuracy']):.4f} | {same} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
