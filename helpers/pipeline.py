"""Run the notebooks in order with papermill for one parameter set.

python -m helpers.pipeline params/demo.yaml [--only 01_scrape,02_split] [--update-notebooks]

Each notebook's own `parameters` cell holds the demo's values, so the demo injects nothing and a
learner who edits that cell gets what they edited; bigger sets (bench, full) inject overrides.
A set's `solutions` mapping names the worked-solution notebooks in solutions/, run after the
lessons whose outputs they read.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import papermill
import yaml

from helpers.hashing import file_sha256
from helpers.kernel import DISPLAY_NAME, KERNEL_NAME
from helpers.paths import PROJECT_ROOT, project_path, shown_path, split_dir

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
SOLUTIONS_DIR = PROJECT_ROOT / "solutions"
# What runs on every machine of a multi-worker run (TF_CONFIG); collecting and splitting happen
# once before, evaluating once after, each on one machine.
TRAINING_NOTEBOOKS = ("03_baseline", "04_xception_scratch", "05_xception_transfer")
# TensorFlow's C++ start-up lines (timestamped; printed before absl logging is set up, so
# TF_CPP_MIN_LOG_LEVEL cannot silence them) reach a notebook only when the kernel forwards its
# process's stderr, which papermill's kernels do and nbval's do not: they are not kept.
TF_NATIVE_LOG = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] .*"
    r"|To enable the following instructions: .*)\n?",
    re.MULTILINE,
)


def load_params(path: str | Path) -> dict:
    """Return a parameter set: {name, kernel, common: {...}, notebooks: {stem: {...}},
    solutions: {stem: {...}}} (no solutions: an empty mapping)."""
    params = yaml.safe_load(project_path(path).read_text())
    if not isinstance(params, dict) or "notebooks" not in params:
        raise ValueError(f"{path}: a parameter set needs a 'notebooks' mapping")
    params.setdefault("name", Path(path).stem)
    params.setdefault("kernel", KERNEL_NAME)
    params["common"] = params.get("common") or {}
    params["solutions"] = params.get("solutions") or {}
    return params


def notebook_parameters(
    stem: str, params: dict, notebooks_dir: Path = NOTEBOOKS_DIR, section: str = "notebooks"
) -> dict:
    """Return the values to inject into one notebook: common keys it declares, then its own.

    `section` is the mapping of the parameter set that lists it: "notebooks" or "solutions".
    """
    path = notebooks_dir / f"{stem}.ipynb"
    declared = papermill.inspect_notebook(str(path))
    common = {k: v for k, v in params["common"].items() if k in declared}
    own = params[section][stem] or {}
    unknown = sorted(set(own) - set(declared))
    if unknown:
        known = sorted(declared)
        raise ValueError(f"{stem} has no parameters named {unknown}; it declares {known}")
    return {**common, **own}


def current_parameters(
    stem: str, namespace: dict[str, Any], notebooks_dir: Path = NOTEBOOKS_DIR
) -> dict[str, Any]:
    """Return a notebook's parameters with their values in `namespace` (its globals()): the names
    come from its `parameters` cell, so what a model card records is what the run was given."""
    declared = papermill.inspect_notebook(str(notebooks_dir / f"{stem}.ipynb"))
    return {name: namespace[name] for name in declared}


def run(
    params_path: str,
    only: list[str] | None,
    update: bool,
    run_dir: str | None,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    solutions_dir: Path = SOLUTIONS_DIR,
) -> Path:
    """Execute the parameter set's notebooks, then its solutions, in order; return the folder of
    executed copies.

    Each notebook's cell outputs are also written, as they come, to `<run dir>/<stem>.log`, so a
    headless run that takes hours can be followed with `tail -f`.
    """
    params = load_params(params_path)
    folders = {"notebooks": notebooks_dir, "solutions": solutions_dir}
    folder_of = {
        stem: (section, folder)
        for section, folder in folders.items()
        for stem in params[section]
        if not only or stem in only
    }
    stems = list(folder_of)
    injected = {
        stem: notebook_parameters(stem, params, folder_of[stem][1], folder_of[stem][0])
        for stem in stems
    }
    # The training stage's rule for reading TF_CONFIG; imported here, as it loads TensorFlow.
    from helpers.training.hardware import SPLIT_ENV, worker_count

    workers = worker_count()
    if workers > 1:
        check_multi_worker(stems, workers)
    if update and any(injected.values()):
        overridden = sorted(stem for stem, values in injected.items() if values)
        raise ValueError(
            f"--update-notebooks commits what the notebooks' own parameters cells produce, but "
            f"{params_path} overrides parameters of {overridden}; run it without --update-notebooks"
        )
    if update and only:
        refuse_mixed_numerics()
    out_dir = project_path(run_dir or f"runs/{params['name']}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for number, stem in enumerate(stems, 1):
        values, folder = injected[stem], folder_of[stem][1]
        shown = json.dumps(values) if values else "its own parameters"
        print(
            f"[{number}/{len(stems)}] {stem} with {shown} (kernel {params['kernel']})", flush=True
        )
        started = time.monotonic()
        output = out_dir / f"{stem}.ipynb"
        log_path = out_dir / f"{stem}.log"
        print(f"    cell outputs as they come: tail -f {shown_path(log_path)}", flush=True)
        if workers > 1:  # the kernel inherits it; setup_hardware compares it across workers
            os.environ[SPLIT_ENV] = split_sha256(folder / f"{stem}.ipynb", values)
        with open(log_path, "w", encoding="utf-8") as log:
            papermill.execute_notebook(
                str(folder / f"{stem}.ipynb"),
                str(output),
                parameters=values,
                kernel_name=params["kernel"],
                cwd=str(folder),
                progress_bar=True,
                stdout_file=log,
                stderr_file=log,
            )
        print(f"    done in {time.monotonic() - started:.0f} s -> {shown_path(output)}", flush=True)
        if update:
            write_clean_copy(output, folder / f"{stem}.ipynb")
    return out_dir


def check_multi_worker(stems: list[str], workers: int) -> None:
    """Refuse, under a TF_CONFIG of several workers, the notebooks that must run only once."""
    once = [stem for stem in stems if stem not in TRAINING_NOTEBOOKS]
    if once:
        raise ValueError(
            f"TF_CONFIG names {workers} workers, and only the training notebooks "
            f"{list(TRAINING_NOTEBOOKS)} run on every one of them, not {once}: run 01_scrape "
            "and 02_split once beforehand, on one machine without TF_CONFIG, into a data_dir "
            "every machine mounts at the same path, then the training notebooks everywhere "
            "with --only (and 06_evaluate once afterwards)"
        )


def split_sha256(notebook: Path, values: dict) -> str:
    """sha256 of the split manifest the notebook will read: at its injected `data_dir`, else at
    its parameters cell's own."""
    data_dir = values.get("data_dir")
    if data_dir is None:
        declared = papermill.inspect_notebook(str(notebook))
        data_dir = ast.literal_eval(declared["data_dir"]["default"])
    manifest = split_dir(data_dir) / "split.csv"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{shown_path(manifest)} is missing: run 01_scrape and 02_split once, without "
            "TF_CONFIG, before training on several workers"
        )
    return file_sha256(manifest)


def write_clean_copy(executed: Path, target: Path) -> None:
    """Copy an executed notebook over the committed one, dropping run timings from metadata.

    The copy names the doggo kernel, so Jupyter and nbval start it with the settings that
    made its outputs.
    """
    notebook = json.loads(executed.read_text())
    notebook["metadata"].pop("papermill", None)
    notebook["metadata"]["kernelspec"] = {
        "display_name": DISPLAY_NAME,
        "language": "python",
        "name": KERNEL_NAME,
    }
    for cell in notebook["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if "outputs" in cell:
            cell["outputs"] = without_native_logs(cell["outputs"])
    target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def without_native_logs(outputs: list[dict]) -> list[dict]:
    """Return cell outputs with TensorFlow's C++ log lines removed from stderr streams."""
    kept = []
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = "".join(output["text"])
            cleaned = TF_NATIVE_LOG.sub("", text)
            if cleaned != text:
                if not cleaned.strip():
                    continue
                output = {**output, "text": cleaned.splitlines(keepends=True)}
        kept.append(output)
    return kept


def refuse_mixed_numerics() -> None:
    """Refuse to commit some notebooks' outputs from a machine that computes differently from
    the one that made the others: nbval could then compare no machine's run exactly."""
    from helpers.kernel import numerics_differ

    reason = numerics_differ()
    if reason:
        raise SystemExit(
            f"--update-notebooks with --only: {reason}. Regenerate every notebook here "
            "(make notebooks, which records this machine), or update these on that machine."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", help="a parameter set, e.g. params/demo.yaml")
    parser.add_argument("--only", help="comma-separated notebook names to run, in order")
    parser.add_argument("--run-dir", help="where executed notebooks go (default runs/<name>)")
    parser.add_argument(
        "--update-notebooks",
        action="store_true",
        help="also write the executed notebooks over notebooks/*.ipynb and solutions/*.ipynb "
        "(to commit demo outputs)",
    )
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else None
    out_dir = run(args.params, only, args.update_notebooks, args.run_dir)
    print(f"All notebooks ran; executed copies in {shown_path(out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
