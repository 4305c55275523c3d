"""Reproducibility and hardware: seeds, the distribution strategy, mixed precision and XLA, and
how a per-replica batch and its learning rate scale with the number of replicas."""

from __future__ import annotations

import dataclasses
import os

import keras
import tensorflow as tf

from helpers.training._runs import STATES, cluster_size, tf_config

# Set by helpers.pipeline to the split manifest's sha256: setup_hardware compares it across the
# workers of a multi-worker run before any model exists (a model of another class count would
# fail on its first variable, with a shape error).
SPLIT_ENV = "DOGGO_SPLIT_SHA256"


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow, and make TF ops deterministic (slower on GPU)."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def strategy_for_hardware() -> tf.distribute.Strategy:
    """MultiWorkerMirrored when TF_CONFIG names several workers, Mirrored over the local GPUs
    when there are several (or over several logical CPUs when there is no GPU), else the
    default strategy. Call it first: a multi-worker strategy must exist before any TF op.
    """
    # Checked before listing devices, which would initialize TF too early for collectives.
    if cluster_size(tf_config()) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    devices = gpus if gpus else cpus
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What `setup_hardware` chose; pass `jit_compile` to `compile_classifier`."""

    strategy: tf.distribute.Strategy
    gpus: int
    mixed_precision: bool
    jit_compile: bool

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


@dataclasses.dataclass(frozen=True)
class ReplicaScaling:
    """The one place that scales training with the number of replicas. `batch_size` is per
    replica, as the original's `multi_gpu_model` had it: every replica trains on a whole batch
    of the dataset (BatchNorm sees as many photos as on one GPU), so a step's global batch is
    `replicas` batches, and the learning rate is multiplied by `replicas` (the linear scaling
    rule, Goyal et al. 2017, "Accurate, Large Minibatch SGD"), reached after `warmup_steps` of
    linear warmup when asked. On one replica nothing changes."""

    replicas: int

    def global_batch(self, per_replica_batch: int) -> int:
        return per_replica_batch * self.replicas

    def learning_rate(
        self, learning_rate: float, warmup_steps: int = 0
    ) -> float | keras.optimizers.schedules.LearningRateSchedule:
        """The learning rate for the global batch: `learning_rate` x replicas, after a linear
        warmup from `learning_rate` over `warmup_steps` steps (0: none)."""
        if self.replicas == 1:
            return learning_rate
        scaled = learning_rate * self.replicas
        if not warmup_steps:
            return scaled
        # alpha=1: no decay, so after the warmup the rate stays at warmup_target.
        return keras.optimizers.schedules.CosineDecay(
            learning_rate, 1, alpha=1.0, warmup_target=scaled, warmup_steps=warmup_steps
        )

    def global_batches(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """Join each `replicas` consecutive batches into one global batch, which the strategy
        splits back into one dataset batch per replica (the last step may be partial)."""
        if self.replicas == 1:
            return dataset
        joined = dataset.ragged_batch(self.replicas)
        return joined.map(
            lambda *parts: tuple(p.values for p in parts), num_parallel_calls=tf.data.AUTOTUNE
        )

    def describe(self, learning_rate: float | None = None) -> str:
        """What the scaling does, in words, for the user to see."""
        text = f"batch_size is per replica: each step trains on {self.replicas} batches"
        if learning_rate is not None:
            text += (
                f", at learning rate {learning_rate:g} x {self.replicas} = "
                f"{learning_rate * self.replicas:g} (linear scaling rule)"
            )
        return text


def replica_scaling(strategy: tf.distribute.Strategy | None = None) -> ReplicaScaling:
    """The scaling for `strategy`, by default the one whose scope is open."""
    return ReplicaScaling((strategy or tf.distribute.get_strategy()).num_replicas_in_sync)


def worker_count() -> int:
    """How many machines TF_CONFIG names (1 without TF_CONFIG)."""
    return max(cluster_size(tf_config()), 1)


def setup_hardware(
    mixed_precision: bool | None = None, jit_compile: bool | None = None
) -> Hardware:
    """Pick the distribution strategy and, on GPUs only, mixed_float16 and XLA.

    Mixed precision defaults to on when every GPU supports it (compute capability 7.0+); XLA as
    `use_xla` decides. Both are always off on CPU, where XLA made EfficientNet-Lite 8-12x slower.
    """
    strategy = strategy_for_hardware()
    gpus = tf.config.list_physical_devices("GPU")
    fast_fp16 = bool(gpus) and all(_compute_capability(g) >= (7, 0) for g in gpus)
    use_mp = fast_fp16 if mixed_precision is None else bool(mixed_precision and gpus)
    use_jit = use_xla(len(gpus), strategy.num_replicas_in_sync, jit_compile)
    keras.mixed_precision.set_global_policy("mixed_float16" if use_mp else "float32")
    if os.environ.get(SPLIT_ENV):
        agree_across_workers(strategy, {"split manifest": os.environ[SPLIT_ENV]}, "new")
    return Hardware(strategy, len(gpus), use_mp, use_jit)


def use_xla(gpus: int, replicas: int, requested: bool | None = None) -> bool:
    """Return whether to compile with XLA: never without a GPU; by default only on one replica.

    XLA under MirroredStrategy failed on 2 logical CPUs ("Trying to access resource
    conv1/kernel/replica_1 ... from device CPU:0") and has not been run on several GPUs, so several
    replicas get it only when asked for (`requested=True`).
    """
    if not gpus:
        return False
    return replicas == 1 if requested is None else bool(requested)


def _compute_capability(gpu: tf.config.PhysicalDevice) -> tuple[int, int]:
    details = tf.config.experimental.get_device_details(gpu)
    return tuple(details.get("compute_capability") or (0, 0))


class WorkersDisagree(RuntimeError):
    """The workers of a multi-worker run are not about to train the same thing."""


def agree_across_workers(
    strategy: tf.distribute.Strategy, fingerprint: dict[str, str | int], state: str
) -> None:
    """Raise `WorkersDisagree` on every worker alike unless all workers hold the same
    fingerprint (classes, model, data, settings) and run state (new, resume, finished).

    Workers that read different splits would otherwise fail later on a shape mismatch, or, with
    as many classes, train in lockstep on inconsistent data without any error.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return  # one worker: nothing to compare
    keys = sorted(fingerprint)
    row = [_as_int(fingerprint[k]) for k in keys] + [STATES.index(state)]
    local = tf.constant([row], tf.int64)
    rows = strategy.gather(strategy.run(lambda: tf.identity(local)), axis=0).numpy()
    differing = [name for column, name in enumerate([*keys, "run state"])
                 if len(set(rows[:, column].tolist())) > 1]  # fmt: skip
    if differing:
        raise WorkersDisagree(
            f"the workers disagree on {', '.join(differing)}: every worker must train on the "
            "same split, read from shared storage, with the same parameters and run folders "
            "(run 01_scrape and 02_split once, before training; see the README's multi-machine "
            "section)"
        )


def _as_int(value: str | int) -> int:
    """A fingerprint entry as an int64 (hex digests by their first 60 bits)."""
    return value if isinstance(value, int) else int(str(value)[:15], 16)
