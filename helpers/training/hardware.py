"""Reproducibility and hardware: seeds, the distribution strategy, mixed precision and XLA."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from helpers.training._runs import cluster_size, tf_config


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
