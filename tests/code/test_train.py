"""Tests for helpers.training: layer-wise Adam, fit and resume, transfer recipe, hardware."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
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
from helpers.training import data

ROOT = Path(__file__).resolve().parents[2]


def tiny_backbone(size: int = 16) -> keras.Model:
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(4, 3, name="bb_conv1")(x)
    x = keras.layers.BatchNormalization(name="bb_bn1")(x)
    x = keras.layers.Conv2D(4, 3, name="bb_conv2")(x)
    x = keras.layers.BatchNormalization(name="bb_bn2")(x)
    return keras.Model(inputs, x, name="tiny_features")


def _arrays(n: int = 8, size: int = 16, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    return x, (np.arange(n) % classes).astype("int32")


# ------------------------------------------------------------------------------ LayerwiseAdam


def _named_variable(layer: str, value: np.ndarray) -> keras.Variable:
    with keras.name_scope(layer):
        return keras.Variable(value, name="kernel")


def test_layerwise_adam_moves_backbone_variables_10x_less_for_the_same_gradient() -> None:
    start = np.linspace(-1, 1, 6).astype("float32")
    slow, fast = _named_variable("bb_conv1", start), _named_variable("head_logits", start)
    assert slow.path == "bb_conv1/kernel"
    opt = train.LayerwiseAdam(0.01, lr_multipliers={"bb_conv1": 0.1})
    grads = (np.abs(np.random.default_rng(0).normal(size=(3, 6))) + 0.1).astype("float32")
    for g in grads:
        opt.apply([g, g], [slow, fast])
    slow_delta, fast_delta = np.asarray(slow) - start, np.asarray(fast) - start
    assert np.abs(fast_delta).min() > 1e-3
    np.testing.assert_allclose(slow_delta, 0.1 * fast_delta, rtol=1e-4)

    # Why not scale gradients instead: plain Adam undoes the scaling (the original's pitfall).
    a, b = _named_variable("a", start), _named_variable("b", start)
    plain = keras.optimizers.Adam(0.01)
    for g in grads:
        plain.apply([0.1 * g, g], [a, b])
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-6)


def test_layerwise_adam_matches_path_components_not_string_prefixes() -> None:
    opt = train.LayerwiseAdam(lr_multipliers={"conv": 0.1, "conv/kernel": 0.5})
    assert opt.multiplier_for("conv/bias") == 0.1
    assert opt.multiplier_for("conv/kernel") == 0.5
    assert opt.multiplier_for("conv_1/kernel") == 1.0


def _transfer_model() -> keras.Model:
    model = models.transfer_classifier(tiny_backbone(), num_classes=3)
    train.set_backbone_trainable(model, True)
    return train.compile_classifier(model, 0.01, backbone_lr_multiplier=0.1)


def test_one_fine_tuning_step_and_keras_file_round_trip(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    model = _transfer_model()
    x, y = _arrays()
    conv = model.get_layer("backbone").get_layer("bb_conv2").kernel
    logits = model.get_layer("head").get_layer("head_logits").kernel
    before = [np.asarray(conv), np.asarray(logits)]
    model.train_on_batch(x, y)
    # Adam's first step moves every weight by ~lr * sign(gradient): 0.001 vs 0.01 here.
    conv_step = np.median(np.abs(np.asarray(conv) - before[0]))
    head_step = np.median(np.abs(np.asarray(logits) - before[1]))
    assert head_step == pytest.approx(0.01, rel=0.05)
    assert conv_step == pytest.approx(0.1 * head_step, rel=0.05)

    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, train.LayerwiseAdam)
    assert loaded.optimizer.lr_multipliers == model.optimizer.lr_multipliers
    assert loaded.optimizer.multiplier_for(conv.path) == 0.1
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    loaded.train_on_batch(x, y)  # the restored optimizer state keeps working


# --------------------------------------------------------------------------- transfer recipe


def test_fine_tuning_keeps_batchnorm_statistics_and_frozen_layers() -> None:
    model = models.transfer_classifier(tiny_backbone(), num_classes=3)
    train.set_backbone_trainable(model, True, from_layer="bb_conv2")
    train.compile_classifier(model, 0.01, backbone_lr_multiplier=0.1)
    backbone = model.get_layer("backbone")
    watched = {
        "bn": [*backbone.get_layer("bb_bn1").weights, *backbone.get_layer("bb_bn2").weights],
        "conv1": backbone.get_layer("bb_conv1").weights,
        "conv2": backbone.get_layer("bb_conv2").weights,
    }
    before = {k: [np.asarray(v) for v in vs] for k, vs in watched.items()}
    x, y = _arrays()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    changed = {
        k: any(not np.array_equal(np.asarray(v), b) for v, b in zip(vs, before[k], strict=True))
        for k, vs in watched.items()
    }
    assert changed == {"bn": False, "conv1": False, "conv2": True}
    train.set_backbone_trainable(model, False)
    assert not backbone.trainable_weights


def test_backbone_features_are_pooled_and_keep_label_order() -> None:
    backbone = tiny_backbone()
    x, y = _arrays(n=7)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    features, labels = train.backbone_features(backbone, ds)
    expected = keras.ops.convert_to_numpy(backbone(x, training=False)).mean(axis=(1, 2))
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(labels, y)
    head = models.head_only_model(features.shape[1:], num_classes=3)
    train.compile_classifier(head, 0.01)
    head.fit(features, labels, epochs=1, verbose=0)


def test_seed_everything_makes_initialization_repeatable() -> None:
    def weights(seed: int) -> list[np.ndarray]:
        train.seed_everything(seed, deterministic=False)
        return models.simple_cnn(3, 16).get_weights()

    a, b, c = weights(1), weights(1), weights(2)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


# -------------------------------------------------------------------------- fit and resuming


class StopAfter(keras.callbacks.Callback):
    """Records epochs and raises at the end of one, as if the job had been killed."""

    def __init__(self, fail_at: int | None):
        super().__init__()
        self.fail_at, self.epochs, self.start_weights = fail_at, [], None

    def on_train_begin(self, logs=None):
        self.start_weights = [np.asarray(w) for w in self.model.weights]

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.end_weights = [np.asarray(w) for w in self.model.weights]
        if epoch == self.fail_at:
            raise KeyboardInterrupt("killed")


def _logged_epochs(run_dir: Path) -> list[int]:
    with (run_dir / "log.csv").open(newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_fit_resumes_an_interrupted_run_where_it_stopped(tmp_path: Path) -> None:
    split_dir = make_tinyset(tmp_path / "tiny")
    table, classes = data.read_split(split_dir)
    train_ds = data.make_dataset(split_dir, "train", 16, 4, table=table, seed=0)
    val_ds = data.make_dataset(split_dir, "val", 16, 4, table=table)
    run_dir = tmp_path / "run"

    def run(probe: StopAfter, epochs: int = 3) -> keras.callbacks.History:
        keras.utils.set_random_seed(0)
        model = train.compile_classifier(models.simple_cnn(len(classes), 16), 1e-3)
        weights = data.class_weights(data.split_labels(table, "train"), len(classes))
        return train.fit(
            model,
            train_ds,
            val_ds,
            run_dir=run_dir,
            epochs=epochs,
            class_weight=weights,
            patience=10,
            callbacks=[probe],
            verbose=0,
        )

    first, second = StopAfter(fail_at=0), StopAfter(fail_at=None)
    with pytest.raises(KeyboardInterrupt):
        run(first)
    assert (run_dir / "backup").is_dir() and _logged_epochs(run_dir) == [0]

    run(second)
    assert second.epochs == [1, 2]
    assert _logged_epochs(run_dir) == [0, 1, 2]
    assert all(  # the fresh model started from the interrupted run's weights
        np.array_equal(a, b) for a, b in zip(first.end_weights, second.start_weights, strict=True)
    )
    assert (run_dir / "best.keras").is_file()
    assert (run_dir / "tb").is_dir() == (importlib.util.find_spec("tensorboard") is not None)
    assert not (run_dir / "backup").exists()  # a finished run leaves nothing to resume

    history = run(
        StopAfter(fail_at=None), epochs=1
    ).history  # a new, not resumed, run starts a new log
    assert _logged_epochs(run_dir) == [0]
    assert set(history) >= {"loss", "val_loss", "accuracy", "top5"}


@pytest.mark.parametrize("interrupt_at", [None, 1])
def test_early_stopping_patience_carries_over_a_resume(tmp_path: Path, interrupt_at) -> None:
    """With a learning rate of 0 val_loss never improves after epoch 0, so patience 2 stops
    training after epoch 2, whether or not the run was killed and resumed in between."""
    split_dir = make_tinyset(tmp_path / "tiny")
    table, classes = data.read_split(split_dir)
    train_ds = data.make_dataset(split_dir, "train", 16, 4, table=table, seed=0)
    val_ds = data.make_dataset(split_dir, "val", 16, 4, table=table)
    run_dir = tmp_path / "run"

    def run(probe: StopAfter) -> None:
        keras.utils.set_random_seed(0)
        model = train.compile_classifier(models.simple_cnn(len(classes), 16), 0.0)
        train.fit(model, train_ds, val_ds, run_dir=run_dir, epochs=10, patience=2,
                  callbacks=[probe], verbose=0)  # fmt: skip

    if interrupt_at is not None:
        with pytest.raises(KeyboardInterrupt):
            run(StopAfter(fail_at=interrupt_at))
    resumed = StopAfter(fail_at=None)
    run(resumed)
    assert _logged_epochs(run_dir) == [0, 1, 2]
    first = 0 if interrupt_at is None else interrupt_at + 1
    assert resumed.epochs == list(range(first, 3))


# ------------------------------------------------------------------------------ distribution

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    if os.environ.get("SPLIT_CPU"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        halves = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, halves)
    from helpers import training as train
    from helpers.models import builders as models
    hw = train.setup_hardware()
    multi = isinstance(hw.strategy, tf.distribute.MultiWorkerMirroredStrategy)
    kind = "MultiWorkerMirroredStrategy" if multi else type(hw.strategy).__name__
    print("STRATEGY", kind, hw.replicas, flush=True)
    train.seed_everything(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 16, 16, 3)).astype("float32")
    y = (np.arange(16) % 3).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with hw.strategy.scope():
        model = train.compile_classifier(models.simple_cnn(3, 16), 1e-3)
    history = train.fit(model, ds, ds, run_dir=sys.argv[1], epochs=1, tensorboard=False, verbose=0)
    print("RESULT", json.dumps({
        "strategy": kind, "replicas": hw.replicas,
        "mixed_precision": hw.mixed_precision, "jit": hw.jit_compile,
        "epochs": len(history.history["loss"]), "loss": history.history["loss"][0],
        "weights": float(sum(np.abs(w).sum() for w in model.get_weights())),
        "steps": int(model.optimizer.iterations.numpy()),
        "learning_rate": float(model.optimizer.learning_rate.numpy()),
    }))
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", **extra)
    return env


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-2000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpus(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path / "run")],
        env=_env(SPLIT_CPU="1"),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = _result(proc.stdout)
    assert result["strategy"] == "MirroredStrategy" and result["replicas"] == 2
    assert not result["mixed_precision"] and not result["jit"]  # CPU: both off
    assert result["epochs"] == 1 and np.isfinite(result["loss"])
    assert (tmp_path / "run" / "best.keras").is_file()
    # batch(8) is per replica: the 16 photos make one step of 8 per replica, not two of 4 each,
    # at twice the learning rate (linear scaling), and the user is told so.
    assert result["steps"] == 1
    assert result["learning_rate"] == pytest.approx(2e-3)
    assert "batch_size is per replica: each step trains on 2 batches" in proc.stdout
    assert "learning rate 0.001 x 2 = 0.002 (linear scaling rule)" in proc.stdout


def test_replica_scaling_joins_per_replica_batches_and_scales_the_learning_rate() -> None:
    from helpers.training.hardware import ReplicaScaling

    ds = tf.data.Dataset.range(10).map(lambda i: (i, -i)).batch(3)  # 3, 3, 3, 1
    two = ReplicaScaling(2)
    joined = [(x.numpy().tolist(), y.numpy().tolist()) for x, y in two.global_batches(ds)]
    assert joined == [
        ([0, 1, 2, 3, 4, 5], [0, -1, -2, -3, -4, -5]),
        ([6, 7, 8, 9], [-6, -7, -8, -9]),
    ]
    assert two.global_batch(32) == 64 and two.learning_rate(1e-3) == pytest.approx(2e-3)
    warm = two.learning_rate(1e-3, warmup_steps=10)
    assert [float(warm(step)) for step in (0, 5, 10, 100)] == pytest.approx(
        [1e-3, 1.5e-3, 2e-3, 2e-3]
    )
    one = ReplicaScaling(1)  # one replica (the CPU demo): the very same rate and dataset
    assert one.learning_rate(1e-3, warmup_steps=10) == 1e-3 and one.global_batches(ds) is ds


# MultiWorkerMirroredStrategy: helpers.training.fit hands it to helpers.training.distributed's
# custom loop (Keras 3.15's fit fails there, keras-team/keras#20585). Two workers on 127.0.0.1
# train through it in
# test_distributed.py::test_multi_worker_mirrored_strategy_with_two_local_workers.


def test_xla_is_off_by_default_under_several_replicas_and_always_off_without_a_gpu():
    from helpers.training.hardware import use_xla

    assert use_xla(gpus=1, replicas=1) is True
    assert use_xla(gpus=4, replicas=4) is False  # unverified combination: not by default
    assert use_xla(gpus=4, replicas=4, requested=True) is True
    assert use_xla(gpus=0, replicas=1, requested=True) is False
    assert use_xla(gpus=1, replicas=1, requested=False) is False


# ------------------------------------------------------------------------------ re-running fit


def _tree_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _tiny_fit(split_dir: Path, run_dir: Path, probe: StopAfter, epochs: int = 2):
    """fit of a fresh seeded simple CNN on the tiny set, as a notebook re-run does it."""
    # Seeded first, as the notebooks do: tf.data's seeded shuffle combines its seed with the
    # global one, so datasets made before it differ from those made after an earlier run's.
    keras.utils.set_random_seed(0)
    table, classes = data.read_split(split_dir)
    train_ds = data.make_dataset(split_dir, "train", 16, 4, table=table, seed=0)
    val_ds = data.make_dataset(split_dir, "val", 16, 4, table=table)
    model = train.compile_classifier(models.simple_cnn(len(classes), 16), 1e-3)
    weights = data.class_weights(data.split_labels(table, "train"), len(classes))
    history = train.fit(model, train_ds, val_ds, run_dir=run_dir, epochs=epochs,
                        class_weight=weights, callbacks=[probe], verbose=0)  # fmt: skip
    return model, history


def test_rerunning_a_finished_fit_changes_nothing_and_trains_nothing(tmp_path: Path) -> None:
    split_dir = make_tinyset(tmp_path / "tiny")
    run_dir = tmp_path / "run"
    first_model, first = _tiny_fit(split_dir, run_dir, StopAfter(None))
    before = _tree_digests(run_dir)
    probe = StopAfter(None)
    second_model, second = _tiny_fit(split_dir, run_dir, probe)
    assert probe.epochs == [] and probe.start_weights is None  # no training at all
    assert _tree_digests(run_dir) == before
    assert second.history == first.history and second.epoch == first.epoch
    assert second.training_seconds == first.training_seconds
    assert all(  # the model is left as the first fit left it, its optimizer's state too
        np.array_equal(a, b)
        for a, b in zip(first_model.get_weights(), second_model.get_weights(), strict=True)
    )
    first_state = [np.asarray(v) for v in first_model.optimizer.variables]
    second_state = [np.asarray(v) for v in second_model.optimizer.variables]
    assert len(second_state) == len(first_state) > 2  # iterations, learning rate and the moments
    assert all(np.array_equal(a, b) for a, b in zip(first_state, second_state, strict=True))


def test_a_changed_class_set_starts_a_new_run_instead_of_failing_to_resume(
    tmp_path: Path, capsys
) -> None:
    """An interrupted run with 3 classes, re-run after the split gained a fourth breed."""
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _tiny_fit(make_tinyset(tmp_path / "three"), run_dir, StopAfter(fail_at=0))
    assert (run_dir / "backup").is_dir()
    four = tmp_path / "four" / "split"
    make_tinyset(tmp_path / "four", breeds=4)
    probe = StopAfter(None)
    model, history = _tiny_fit(four, run_dir, probe)
    assert model.output_shape[-1] == 4 and probe.epochs == [0, 1]
    assert _logged_epochs(run_dir) == [0, 1]
    out = capsys.readouterr().out
    assert "other classes (3 -> 4)" in out and "run.replaced-1" in out
    aside = tmp_path / "run.replaced-1"
    assert _logged_epochs(aside) == [0] and (aside / "backup").is_dir()  # nothing lost
    assert not (run_dir / "backup").exists()


def _bn_classifier() -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3)(keras.layers.Rescaling(1 / 255)(inputs))
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_precise_batch_norm_survives_a_resume_and_a_finished_rerun(tmp_path: Path) -> None:
    """Its backup holds the recomputed statistics; a resumed epoch must train on from Keras's
    averages, as the uninterrupted run did, and a skipped re-run still has them to compare."""
    x, y = _arrays(n=12)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)  # unshuffled: epochs alike

    def run(run_dir: Path, probe: StopAfter) -> train.PreciseBatchNorm:
        keras.utils.set_random_seed(0)
        model = train.compile_classifier(_bn_classifier(), 1e-2)
        precise = train.PreciseBatchNorm(ds, 2)
        train.fit(model, ds, ds, run_dir=run_dir, epochs=3, callbacks=[precise, probe], verbose=0)
        return precise

    straight = run(tmp_path / "straight", StopAfter(None))
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", StopAfter(fail_at=0))
    resumed = run(tmp_path / "resumed", StopAfter(None))
    probe = StopAfter(None)
    rerun = run(tmp_path / "resumed", probe)
    assert probe.epochs == []  # finished: nothing trained
    for other in (resumed, rerun):
        assert len(other.keras_statistics) == 3
        for ours, theirs in zip(other.keras_statistics, straight.keras_statistics, strict=True):
            for a, b in zip(ours, theirs, strict=True):
                np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-7)
                np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-7)
