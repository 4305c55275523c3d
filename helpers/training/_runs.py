"""A run directory's bookkeeping shared by `fit` and the distributed loop: which folder a
worker writes to, the best logged epoch (for checkpointing and patience) after a resume, and
run.json, the one record of what the run is (its fingerprint) and whether it finished."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from helpers.atomic import write_atomic


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


# ---------------------------------------------------------------- what a run is, and its state

# The one record of a run's identity and whether it finished: run.json in the worker's folder.
RUN_FILE = "run.json"
FINAL_WEIGHTS = "final.weights.h5"  # the model as fit left it, loaded when a re-run skips
STATES = ("new", "resume", "finished")


def _digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


_HANDLES = (tf.resource.as_datatype_enum, tf.variant.as_datatype_enum)


def dataset_fingerprint(ds: tf.data.Dataset) -> str:
    """A digest of the constants in a dataset's graph: file names (without their folders, so
    a share mounted elsewhere matches), labels, seeds, sizes. Equal for the same split read the
    same way, in any process; different when a photo, a label or a seed differs."""
    policy = tf.data.experimental.ExternalStatePolicy.IGNORE  # augmentation layers' RNG state
    graph = tf.compat.v1.GraphDef.FromString(
        ds._as_serialized_graph(external_state_policy=policy).numpy()  # noqa: SLF001
    )
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    digests = []
    for node in nodes:
        # Resource handles name per-process objects (a cache, a device), not data.
        if node.op != "Const" or node.attr["dtype"].type in _HANDLES:
            continue
        tensor = tf.compat.v1.make_tensor_proto(0)
        tensor.CopyFrom(node.attr["value"].tensor)
        if tensor.dtype == tf.string.as_datatype_enum:
            names = [value.rsplit(b"/", 1)[-1] for value in tensor.string_val]
            del tensor.string_val[:]
            tensor.string_val.extend(names)
        digests.append(_digest(tensor.SerializeToString(deterministic=True)))
    # Sorted: traced function names and node order may differ between processes; values do not.
    return _digest("".join(sorted(digests)))


def _optimizer_config(optimizer: keras.optimizers.Optimizer | None) -> dict:
    if optimizer is None:
        return {}
    config = dict(optimizer.get_config())
    config.pop("name", None)
    # Paths hold layer names Keras numbers per process; the factors are what matter.
    config["lr_multipliers"] = sorted(getattr(optimizer, "lr_multipliers", {}).values())
    return config


def run_fingerprint(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None,
    settings: dict,
    optimizer: keras.optimizers.Optimizer | None = None,
) -> dict[str, str | int]:
    """What makes two runs the same run: classes, model, starting weights, optimizer, data and
    the loop's settings (epochs, patience, monitor, class weights)."""
    shapes = [(list(v.shape), str(v.dtype), bool(v.trainable)) for v in model.weights]
    weights = b"".join(np.ascontiguousarray(w).tobytes() for w in model.get_weights())
    return {
        "classes": int(model.output_shape[-1]),
        "model": _digest(json.dumps(shapes)),
        "initial weights": _digest(weights),
        "optimizer": _digest(
            json.dumps(_optimizer_config(optimizer or model.optimizer), default=str)
        ),
        "train data": dataset_fingerprint(train_ds),
        "validation data": "none" if val_ds is None else dataset_fingerprint(val_ds),
        "settings": _digest(json.dumps(settings, sort_keys=True, default=str)),
    }


def begin_run(
    run_dir: Path,
    fingerprint: dict,
    resumable: bool,
    callbacks: Sequence[keras.callbacks.Callback],
    agree: Callable[[dict, str], None] | None = None,
) -> str:
    """What both loops do first: find the run's state (`run_state`), have the workers `agree`
    on it, record a run that is not finished (`start_run`) and give the callbacks the folder;
    return the state."""
    state = run_state(run_dir, fingerprint, resumable)
    if agree is not None:
        agree(fingerprint, state)
    start_run(run_dir, fingerprint, state)
    attach_run_dir(callbacks, run_dir)
    return state


def read_record(run_dir: Path) -> dict | None:
    path = run_dir / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def run_state(run_dir: Path, fingerprint: dict, resumable: bool) -> str:
    """ "finished" when run_dir holds this run, finished; "resume" when it holds it interrupted
    with something to resume from (`resumable`); else "new"."""
    record = read_record(run_dir)
    if record is None or record["fingerprint"] != fingerprint:
        return "new"
    if record.get("finished"):
        return "finished" if (run_dir / FINAL_WEIGHTS).is_file() else "new"
    return "resume" if resumable else "new"


def start_run(run_dir: Path, fingerprint: dict, state: str) -> None:
    """Record an unfinished run in run_dir; a new run first sets aside what another run left
    there (other classes, data or settings), saying so, so nothing is lost or half-resumed."""
    if state == "new":
        record = read_record(run_dir)
        leftovers = [p for p in run_dir.iterdir() if p.name != "workers"]
        if leftovers:
            aside = _set_aside(run_dir, leftovers)
            print(
                f"{run_dir} held {_difference(record, fingerprint)}: moved it to {aside.name} "
                "beside it and starting a new run",
                flush=True,
            )
    if state != "finished":
        write_atomic(run_dir / RUN_FILE, json.dumps({"fingerprint": fingerprint}, indent=1))


def finish_run(run_dir: Path, model: keras.Model, training_seconds: float) -> None:
    """Record that the run finished: its final weights first, then run.json says so."""
    model.save_weights(run_dir / FINAL_WEIGHTS)
    record = read_record(run_dir) or {}
    record.update(finished=True, training_seconds=float(training_seconds))
    write_atomic(run_dir / RUN_FILE, json.dumps(record, indent=1))


def attach_run_dir(callbacks: Sequence[keras.callbacks.Callback], run_dir: Path) -> None:
    """Give the run's folder to callbacks whose state must outlive the process (a resume, a
    skipped re-run): those with a `use_run_dir` method, such as PreciseBatchNorm."""
    for callback in callbacks:
        if hasattr(callback, "use_run_dir"):
            callback.use_run_dir(run_dir)


def finished_history(run_dir: Path, model: keras.Model) -> keras.callbacks.History:
    """Load a finished run's final weights into `model`; return its History from log.csv.

    The optimizer is built first so its state (`finish_run` saved it with the weights) comes
    back too: the model is then as fit left it, and saving it writes what the first run wrote.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        with model.distribute_strategy.scope():
            optimizer.build(model.trainable_variables)
    model.load_weights(run_dir / FINAL_WEIGHTS)
    history = keras.callbacks.History()
    history.set_model(model)
    with (run_dir / "log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    history.epoch = [int(row["epoch"]) for row in rows]
    history.history = {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {})}
    history.history.pop("epoch", None)
    history.training_seconds = float((read_record(run_dir) or {})["training_seconds"])
    print(
        f"{run_dir} holds this run, finished ({len(rows)} epochs): loaded its final weights "
        "instead of training again (delete the folder to retrain)",
        flush=True,
    )
    return history


def _difference(record: dict | None, fingerprint: dict) -> str:
    if record is None:
        return "files of a run from before run.json existed"
    old = record["fingerprint"]
    changed = [k for k in fingerprint if old.get(k) != fingerprint[k]]
    if not changed:
        return "this run, unfinished, with no backup to resume from"
    if "classes" in changed:
        counts = f"{old.get('classes')} -> {fingerprint['classes']}"
        changed[changed.index("classes")] = f"classes ({counts})"
    return f"a run with other {', '.join(changed)}"


def _set_aside(run_dir: Path, entries: Sequence[Path]) -> Path:
    index = 1
    while (aside := run_dir.with_name(f"{run_dir.name}.replaced-{index}")).exists():
        index += 1
    aside.mkdir()
    for entry in entries:
        entry.rename(aside / entry.name)
    return aside
