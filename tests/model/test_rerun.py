"""Re-running a training notebook with the same parameters changes no file of its model.

Each run is a fresh Python process, as a re-run notebook's kernel is: it trains a small real
model with BatchNorm on real photos through `fit` (with `PreciseBatchNorm`, as 04) and saves
it with its card through `save_model_dir`, as 03-05 end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.formats import METADATA_FILE, MODEL_FILE
from helpers.model_card import read_card
from tests._photoset import make_photoset

ROOT = Path(__file__).resolve().parents[2]
OLD_NS = 1_000_000_000_000_000_000  # 2001: any rewrite gives a file a newer time than this

NOTEBOOK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import keras
    from helpers.serving import save_model_dir
    from helpers.training import (PreciseBatchNorm, class_weights, compile_classifier, fit,
                                  holdout_metrics, make_dataset, make_datasets, model_card,
                                  seed_everything, split_labels)

    splits, model_dir, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    seed_everything(seed)
    datasets, classes, table = make_datasets(splits, 32, 4, seed=seed)
    bn_photos = make_dataset(splits, "train", 32, 4, shuffle=True, seed=seed, cache=False,
                             table=table)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = compile_classifier(keras.Model(inputs, keras.layers.Dense(len(classes))(x)), 1e-2)
    start = time.perf_counter()
    time.sleep(0.01)  # stands for 05's feature pass, measured again by every run
    feature_seconds = time.perf_counter() - start
    history = fit(model, datasets["train"], datasets["val"], run_dir=model_dir / "training",
                  epochs=2, class_weight=class_weights(split_labels(table, "train"), len(classes)),
                  callbacks=[PreciseBatchNorm(bn_photos, 2)], verbose=0)
    metrics = holdout_metrics(model, datasets["holdout"])
    card = model_card(name="tiny", classes=classes, image_size=32, split_dir=splits,
                      params={"seed": seed}, metrics=metrics,
                      training_seconds=feature_seconds + history.training_seconds)
    save_model_dir(model_dir, model, card)
    """
)


def _run_notebook(splits: Path, model_dir: Path, seed: int) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, str(splits), str(model_dir), str(seed)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _aged(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Set every file's times under `folder` far back; return each file's (mtime_ns, bytes)."""
    for p in folder.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(OLD_NS, OLD_NS))
    return _snapshot(folder)


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_rerunning_a_training_notebook_changes_no_file_and_a_new_model_replaces_it(
    tmp_path, stanford_dogs
):
    splits = make_photoset(tmp_path / "photos", stanford_dogs, counts={"train": 4, "val": 2,
                                                                        "holdout": 2})  # fmt: skip
    model_dir = tmp_path / "models" / "tiny"
    _run_notebook(splits, model_dir, seed=0)
    before = _aged(model_dir)
    assert {MODEL_FILE, METADATA_FILE, "training/run.json", "training/final.weights.h5",
            "training/keras_bn_statistics.npz", "training/log.csv"} <= set(before)  # fmt: skip
    trained_for = read_card(model_dir).training_seconds

    out = _run_notebook(splits, model_dir, seed=0)
    assert "holds this run, finished" in out
    assert f"{model_dir} already holds this model and card: left unchanged" in out
    after = _snapshot(model_dir)
    assert sorted(after) == sorted(before)
    changed = [name for name in before if after[name] != before[name]]
    assert changed == []  # same bytes and same mtime_ns, every file
    assert read_card(model_dir).training_seconds == trained_for
    assert sorted(p.name for p in model_dir.parent.iterdir()) == ["tiny"]  # no temporary left

    out = _run_notebook(splits, model_dir, seed=1)  # other initial weights: another model
    assert "already holds" not in out
    replaced = _snapshot(model_dir)
    for name in (MODEL_FILE, METADATA_FILE):
        assert replaced[name][0] > OLD_NS
    assert replaced[MODEL_FILE][1] != before[MODEL_FILE][1]
    assert read_card(model_dir).params == {"seed": 1}
    assert (model_dir / "training.replaced-1" / "run.json").is_file()  # the old run, set aside
