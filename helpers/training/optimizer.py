"""Layer-wise learning rates: `LayerwiseAdam` and `compile_classifier`, which uses it."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from helpers.models.builders import BACKBONE
from helpers.training.hardware import replica_scaling


@keras.saving.register_keras_serializable(package="doggo")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam whose learning rate is multiplied per variable, matched by `variable.path` prefix.

    Adam's update is invariant to the gradient's scale, so scaling gradients cannot slow the
    pretrained layers down; scaling their learning rate does. `lr_multipliers` maps a path or
    path prefix (whole "/" components, longest match wins) to a factor; others get 1.0.
    """

    def __init__(
        self,
        learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 0.001,
        lr_multipliers: dict[str, float] | None = None,
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.lr_multipliers = {str(k): float(v) for k, v in (lr_multipliers or {}).items()}

    def multiplier_for(self, path: str) -> float:
        """The learning-rate factor for a variable path."""
        best, factor = -1, 1.0
        for prefix, value in self.lr_multipliers.items():
            if (path == prefix or path.startswith(prefix.rstrip("/") + "/")) and len(prefix) > best:
                best, factor = len(prefix), value
        return factor

    def build(self, var_list: Sequence[keras.Variable]) -> None:
        if self.built:
            return
        super().build(var_list)
        # Indexed like the optimizer's slots: update_step gets the backend variable (a
        # tf.Variable, per replica under tf.distribute), whose path is not available there.
        self._variable_factors = tuple(self.multiplier_for(v.path) for v in var_list)

    def update_step(self, gradient, variable, learning_rate) -> None:
        factor = self._variable_factors[self._get_variable_index(variable)]
        if factor != 1.0:
            learning_rate = keras.ops.cast(learning_rate, variable.dtype) * factor
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        config = super().get_config()
        config["lr_multipliers"] = dict(self.lr_multipliers)
        return config


def backbone_lr_multipliers(
    model: keras.Model, multiplier: float = 0.1, backbone: str = BACKBONE
) -> dict[str, float]:
    """`LayerwiseAdam` multipliers giving every variable of the nested backbone `multiplier`."""
    return {v.path: float(multiplier) for v in model.get_layer(backbone).weights}


def compile_classifier(
    model: keras.Model,
    learning_rate: float,
    *,
    backbone_lr_multiplier: float | None = None,
    jit_compile: bool = False,
    warmup_steps: int = 0,
) -> keras.Model:
    """Compile for integer labels and logits with (layer-wise) Adam, accuracy and top-5.

    With `backbone_lr_multiplier` (0.1 in the original) the nested "backbone" learns that much
    slower than the head. Compile inside `strategy.scope()` when using a strategy:
    `learning_rate` is then the rate for one replica's batch, scaled by `ReplicaScaling` to
    the global batch (optionally after `warmup_steps` of linear warmup).
    """
    scaling = replica_scaling()
    if scaling.replicas > 1:
        print(scaling.describe(learning_rate), flush=True)
    multipliers = (
        backbone_lr_multipliers(model, backbone_lr_multiplier)
        if backbone_lr_multiplier is not None
        else None
    )
    num_classes = model.output_shape[-1]
    model.compile(
        optimizer=LayerwiseAdam(
            scaling.learning_rate(learning_rate, warmup_steps), lr_multipliers=multipliers
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes), name="top5"),
        ],
        jit_compile=jit_compile,
    )
    return model
