"""Tests for helpers.training.distributed: the custom loop, its resume, and two workers on
127.0.0.1."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from _tinyset import make_tinyset

from helpers import training as train
from helpers.models import builders as models
from helpers.training.distributed import fit_distributed

ROOT = Path(__file__).resolve().parents[2]


def _colour_data(n: int = 32, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Reddish images are class 0, bluish class 1: learnable in a couple of epochs."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype("int32")
    base = np.where(y[:, None] == 0, [200.0, 60.0, 60.0], [60.0, 60.0, 200.0])
    x = base[:, None, None, :] + rng.uniform(-40, 40, (n, size, size, 3))
    return x.astype("float32"), y


def _log(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "log.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_custom_loop_learns_colours_and_writes_fits_artifacts(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    x, y = _colour_data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(32, seed=0).batch(8)
    x_val, y_val = _colour_data(10, seed=1)
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(4)  # 4+4+2: uneven batches
    model = models.simple_cnn(2, 16)
    history = fit_distributed(model, ds, val, run_dir=tmp_path, epochs=4, learning_rate=1e-3)
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] == 1.0 and history["accuracy"][-1] >= 0.9
    rows = _log(tmp_path)
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "top5", "val_accuracy", "val_loss",
                             "val_top5"]  # fmt: skip
    assert all(float(r["top5"]) == 1.0 for r in rows)  # 2 classes: both are in the "top 5"
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    best = keras.saving.load_model(tmp_path / "best.keras")
    expected = min(float(r["val_loss"]) for r in rows)
    logits = best.predict(x_val, verbose=0)
    loss = keras.losses.sparse_categorical_crossentropy(y_val, logits, from_logits=True)
    assert float(np.mean(loss)) == pytest.approx(expected, rel=1e-4)
    assert not (tmp_path / "backup").exists()
    assert _tensorboard_scalars(tmp_path / "tb" / "validation")["epoch_loss"] == pytest.approx(
        [float(r["val_loss"]) for r in rows], rel=1e-5
    )
    assert set(_tensorboard_scalars(tmp_path / "tb" / "train")) == {
        "epoch_loss", "epoch_accuracy", "epoch_top5"
    }  # fmt: skip


def _tensorboard_scalars(folder: Path) -> dict[str, list[float]]:
    """Scalars by tag, in step order, read back from TensorBoard event files."""
    values: dict[str, list[tuple[int, float]]] = {}
    for file in sorted(folder.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(file)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor))
                values.setdefault(value.tag, []).append((event.step, number))
    return {tag: [v for _, v in sorted(pairs)] for tag, pairs in values.items()}


def _transfer_model() -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="bb_conv")(keras.layers.Rescaling(1 / 255)(inputs))
    backbone = keras.Model(inputs, x, name="tiny_features")
    model = models.transfer_classifier(backbone, num_classes=2, dropout=0.0)
    train.set_backbone_trainable(model, True)
    return train.compile_classifier(model, 0.01, backbone_lr_multiplier=0.1)


def test_one_step_matches_keras_and_honours_layerwise_learning_rates(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    ours, reference = _transfer_model(), _transfer_model()
    reference.set_weights(ours.get_weights())
    x, y = _colour_data(8)
    y[:2] = 1  # unbalanced, so the class weights matter
    weights = {0: 2.0, 1: 0.5}
    before = [keras.ops.convert_to_numpy(v) for v in ours.trainable_variables]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    history = fit_distributed(ours, ds, None, run_dir=tmp_path, epochs=1, class_weight=weights)
    logs = reference.train_on_batch(x, y, class_weight=weights, return_dict=True)

    for a, b in zip(ours.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert history["loss"][0] == pytest.approx(logs["loss"], rel=1e-5)
    assert history["accuracy"][0] == pytest.approx(logs["accuracy"], rel=1e-5)
    # Adam's first step moves each weight by ~lr: 0.001 for the backbone, 0.01 for the head.
    steps = {
        v.path: np.median(np.abs(keras.ops.convert_to_numpy(v) - b))
        for v, b in zip(ours.trainable_variables, before, strict=True)
    }
    conv = steps[ours.get_layer("backbone").get_layer("bb_conv").kernel.path]
    head = steps[ours.get_layer("head").get_layer("head_logits").kernel.path]
    assert head == pytest.approx(0.01, rel=0.05) and conv == pytest.approx(0.001, rel=0.05)


class StopAfter(keras.callbacks.Callback):
    """Records epochs and raises at the end of one, as if the job had been killed."""

    def __init__(self, fail_at: int | None):
        super().__init__()
        self.fail_at, self.epochs = fail_at, []

    def on_train_begin(self, logs=None):
        self.start_weights = self.model.get_weights()

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.end_weights = self.model.get_weights()
        if epoch == self.fail_at:
            raise KeyboardInterrupt("killed")


def test_an_interrupted_run_resumes_at_the_next_epoch(tmp_path: Path) -> None:
    x, y = _colour_data(16)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)

    def run(probe: StopAfter) -> dict[str, list[float]]:
        keras.utils.set_random_seed(0)
        model = train.compile_classifier(models.simple_cnn(2, 16), 1e-3)
        return fit_distributed(model, ds, ds, run_dir=tmp_path, epochs=3, callbacks=[probe])

    first, second = StopAfter(fail_at=0), StopAfter(fail_at=None)
    with pytest.raises(KeyboardInterrupt):
        run(first)
    assert (tmp_path / "backup").is_dir() and (tmp_path / "best.keras").is_file()
    history = run(second)
    assert second.epochs == [1, 2] and len(history["loss"]) == 2
    assert [int(r["epoch"]) for r in _log(tmp_path)] == [0, 1, 2]
    assert all(  # the fresh model started from the interrupted run's weights
        np.array_equal(a, b) for a, b in zip(first.end_weights, second.start_weights, strict=True)
    )
    assert not (tmp_path / "backup").exists()
    third = StopAfter(fail_at=None)
    again = run(third)  # finished: trains nothing, its history comes from the log
    assert third.epochs == [] and len(again["loss"]) == 3


@pytest.mark.parametrize("interrupt_at", [None, 1])
def test_patience_carries_over_a_resume(tmp_path: Path, interrupt_at) -> None:
    """At learning rate 0 val_loss never improves after epoch 0: patience 2 stops after epoch
    2, whether or not the run was killed and resumed in between."""
    x, y = _colour_data(16)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)

    def run(probe: StopAfter) -> dict[str, list[float]]:
        keras.utils.set_random_seed(0)
        model = train.compile_classifier(models.simple_cnn(2, 16), 0.0)
        return fit_distributed(model, ds, ds, run_dir=tmp_path, epochs=10, patience=2,
                               callbacks=[probe])  # fmt: skip

    if interrupt_at is not None:
        with pytest.raises(KeyboardInterrupt):
            run(StopAfter(fail_at=interrupt_at))
    resumed = StopAfter(fail_at=None)
    run(resumed)
    assert [int(r["epoch"]) for r in _log(tmp_path)] == [0, 1, 2]
    assert resumed.epochs == list(range(0 if interrupt_at is None else interrupt_at + 1, 3))


# ------------------------------------------------------------------------------ two workers

# Each worker trains through helpers.training.fit, which must pick the custom loop for MWMS, on
# make_dataset's file-backed pipeline; it reports a checksum of its final weights.
WORKER = textwrap.dedent(
    """
    import hashlib, json, sys
    import keras
    import numpy as np
    import tensorflow as tf
    from helpers import training as train
    from helpers.models import builders as models
    from helpers.training import data
    hw = train.setup_hardware()  # first: MWMS must exist before any other TF op
    split_dir, run_dir = sys.argv[1:3]
    train.seed_everything(0)
    table, classes = data.read_split(split_dir)
    train_ds = data.make_dataset(split_dir, "train", 16, 4, table=table, seed=0)
    val_ds = data.make_dataset(split_dir, "val", 16, 4, table=table)
    weights = data.class_weights(data.split_labels(table, "train"), len(classes))
    with hw.strategy.scope():
        model = models.simple_cnn(len(classes), 16)
        model = train.compile_classifier(model, 1e-3, backbone_lr_multiplier=None)
    history = train.fit(model, train_ds, val_ds, run_dir=run_dir, epochs=2, class_weight=weights,
                        tensorboard=False, verbose=0)
    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    print("RESULT", json.dumps({
        "mwms": isinstance(hw.strategy, tf.distribute.MultiWorkerMirroredStrategy),
        "replicas": hw.replicas,
        "loss": history.history["loss"], "sha256": digest,
        "steps": int(model.optimizer.iterations.numpy()),
        "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
    }), flush=True)
    """
)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(tf_config: dict) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
        TF_CONFIG=json.dumps(tf_config),
    )
    return env


def _run_workers(commands: list[list[str]], timeout: int = 240) -> list[tuple[int, str, str]]:
    """Run one command per worker of a cluster on 127.0.0.1; return (returncode, stdout,
    stderr) of each."""
    workers = [f"127.0.0.1:{port}" for port in _free_ports(len(commands))]
    procs = [
        subprocess.Popen(
            command,
            env=_env({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}),
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i, command in enumerate(commands)
    ]
    try:  # a worker waiting for a dead peer would hang forever
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]


def _worker_results(runs: list[tuple[int, str, str]]) -> list[dict]:
    results = []
    for returncode, stdout, stderr in runs:
        assert returncode == 0, stderr[-3000:]
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, stdout[-2000:] + stderr[-2000:]
        results.append(json.loads(lines[-1].removeprefix("RESULT ")))
    return results


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_with_two_local_workers(tmp_path: Path) -> None:
    split_dir = make_tinyset(tmp_path / "tiny")
    run_dir = tmp_path / "run"
    command = [sys.executable, "-c", WORKER, str(split_dir), str(run_dir)]
    results = _worker_results(_run_workers([command, command]))
    for result in results:
        assert result["mwms"] and result["replicas"] == 2
        assert len(result["loss"]) == 2 and np.isfinite(result["loss"]).all()
        # batch 4 is per replica: 12 training photos make 2 steps of 4 + 4 (and 2 + 2) per
        # epoch, not 3 steps of 2 + 2, at twice the learning rate.
        assert result["steps"] == 4 and result["learning_rate"] == pytest.approx(2e-3)
    # One model trained in lockstep: the same weights and the same global metrics everywhere.
    assert results[0]["sha256"] == results[1]["sha256"]
    assert results[0]["loss"] == results[1]["loss"]
    # The chief owns run_dir; the other worker wrote only into its own subfolder.
    assert [int(r["epoch"]) for r in _log(run_dir)] == [0, 1]
    assert (run_dir / "best.keras").is_file() and not (run_dir / "backup").exists()
    worker_dir = run_dir / "workers" / "worker_1"
    assert (worker_dir / "log.csv").is_file() and (worker_dir / "best.keras").is_file()
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "best.keras", "final.weights.h5", "log.csv", "run.json", "workers"
    ]  # fmt: skip


@pytest.mark.slow
def test_a_worker_that_reads_other_data_fails_fast_on_every_worker(tmp_path: Path) -> None:
    """As many classes, other photos (a worker that scraped its own copy): no error would
    show, the workers would train one model on inconsistent data. Both must stop before
    training, saying why."""
    ours = make_tinyset(tmp_path / "ours")
    theirs = make_tinyset(tmp_path / "theirs", counts={"train": 5, "val": 2, "holdout": 1})
    run_dir = tmp_path / "run"
    runs = _run_workers(
        [[sys.executable, "-c", WORKER, str(split), str(run_dir)] for split in (ours, theirs)]
    )
    for returncode, _, stderr in runs:
        assert returncode != 0
        assert "WorkersDisagree: the workers disagree on" in stderr, stderr[-3000:]
        assert "train data" in stderr and "same split" in stderr
    assert not (run_dir / "log.csv").exists()  # nothing was trained


# The documented multi-machine flow: 01_scrape and 02_split ran once (here: make_tinyset);
# every worker runs the pipeline's training notebooks with the same TF_CONFIG cluster.
TRAINING_NOTEBOOK = textwrap.dedent(
    """
    import json
    from helpers import training as train
    from helpers.models import builders as models
    from helpers.paths import split_dir
    from helpers.training import data
    hw = train.setup_hardware()
    splits = split_dir(data_dir)
    table, classes = data.read_split(splits)
    train_ds = data.make_dataset(splits, "train", 16, 4, table=table, seed=0)
    val_ds = data.make_dataset(splits, "val", 16, 4, table=table)
    with hw.strategy.scope():
        model = train.compile_classifier(models.simple_cnn(len(classes), 16), 1e-3)
    history = train.fit(model, train_ds, val_ds, run_dir=run_dir, epochs=1, tensorboard=False,
                        verbose=0)
    print("RESULT", json.dumps({"replicas": hw.replicas, "loss": history.history["loss"]}))
    """
)
PIPELINE = (
    "import sys; from pathlib import Path; from helpers.pipeline import run; "
    "run(sys.argv[1], None, False, sys.argv[2], Path(sys.argv[3]))"
)


def _pipeline_commands(tmp_path: Path, data_dirs: list[Path]) -> list[list[str]]:
    import nbformat

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir(parents=True)
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}  # fmt: skip
    book.cells = [
        nbformat.v4.new_code_cell(
            'data_dir = "data/demo"\nrun_dir = "runs/x"', metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(TRAINING_NOTEBOOK),
    ]
    nbformat.write(book, notebooks / "03_baseline.ipynb")
    commands = []
    for index, data_dir in enumerate(data_dirs):
        params = tmp_path / f"worker{index}.yaml"
        params.write_text(
            f"name: w{index}\nkernel: python3\ncommon:\n  data_dir: {data_dir}\n"
            f"notebooks:\n  03_baseline:\n    run_dir: {tmp_path / 'run'}\n"
        )
        out = tmp_path / f"out{index}"
        commands.append([sys.executable, "-c", PIPELINE, str(params), str(out), str(notebooks)])
    return commands


@pytest.mark.slow
def test_the_documented_multi_machine_flow_trains_and_catches_another_class_list(tmp_path):
    shared = make_tinyset(tmp_path / "shared").parent
    runs = _run_workers(_pipeline_commands(tmp_path / "same", [shared, shared]), timeout=300)
    for returncode, _, stderr in runs:
        assert returncode == 0, stderr[-3000:]
    for index in range(2):
        log = (tmp_path / "same" / f"out{index}" / "03_baseline.log").read_text()
        assert '"replicas": 2' in log
    # A machine with its own data set, of 4 breeds: every worker stops at setup_hardware,
    # before a model of another shape could fail on its first variable.
    local = make_tinyset(tmp_path / "local", breeds=4).parent
    runs = _run_workers(_pipeline_commands(tmp_path / "other", [shared, local]), timeout=300)
    for returncode, _, stderr in runs:
        assert returncode != 0
        assert "the workers disagree on split manifest" in stderr, stderr[-3000:]


class _WeightsByEpoch(keras.callbacks.Callback):
    """Sets the model's weights at each epoch's start: good ones at `good_epoch`, bad ones else
    (with a zero learning rate, the epoch's validation scores are then known in advance)."""

    def __init__(self, good_epoch: int):
        super().__init__()
        self.good_epoch = good_epoch

    def on_epoch_begin(self, epoch, logs=None):
        sign = 1.0 if epoch == self.good_epoch else -1.0
        self.model.set_weights([sign * np.eye(2, dtype="float32"), np.zeros(2, "float32")])


@pytest.mark.parametrize("monitor", ["val_accuracy", "val_loss"])
def test_the_best_epoch_is_the_best_for_the_monitor_higher_or_lower(tmp_path, monitor) -> None:
    x = np.array([[1, 0], [0, 1]] * 4, "float32")
    y = np.argmax(x, axis=1).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    history = fit_distributed(
        model,
        ds,
        ds,
        run_dir=tmp_path,
        epochs=3,
        learning_rate=0.0,
        monitor=monitor,
        patience=5,
        callbacks=[_WeightsByEpoch(1)],
    )
    assert history["val_accuracy"] == [0.0, 1.0, 0.0]
    best = keras.saving.load_model(tmp_path / "best.keras")
    assert np.array_equal(np.argmax(best.predict(x, verbose=0), axis=1), y)  # epoch 1's weights
