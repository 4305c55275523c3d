"""Evaluation helpers against scikit-learn references, planted confusions and a tiny real model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _tinyset import make_tinyset
from PIL import Image
from scipy.special import softmax
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
    f1_score,
    top_k_accuracy_score,
)

from helpers import evaluation as ev
from helpers.model_card import ModelCard


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _random_predictions(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities that are right more often than chance."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += 1.5
    return y, softmax(logits, axis=1)


# ---- metrics -----------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 5])
def test_top_k_accuracy_matches_sklearn(k):
    y, probs = _random_predictions(500, 12)
    expected = top_k_accuracy_score(y, probs, k=k, labels=np.arange(12))
    assert ev.top_k_accuracy(y, probs, k) == pytest.approx(expected)


def test_top1_with_ties_agrees_with_argmax():
    y = np.array([0, 1, 2, 1])
    constant = np.full((4, 3), 1 / 3)  # a collapsed model must not get credit for ties
    assert ev.top_k_accuracy(y, constant, 1) == np.mean(constant.argmax(axis=1) == y)


def test_macro_f1_matches_sklearn_with_missing_classes():
    y, probs = _random_predictions(300, 15, seed=1)
    y_pred = probs.argmax(axis=1)
    y_pred[y_pred == 3] = 4  # class 3 never predicted: F1 0 for it
    assert ev.macro_f1(y, y_pred) == pytest.approx(f1_score(y, y_pred, average="macro"))


def test_bootstrap_ci_contains_estimate_narrows_and_is_seeded():
    def accuracy(y, p):
        return float(np.mean(p.argmax(axis=1) == y))

    y, probs = _random_predictions(2000, 10, seed=2)
    small = ev.bootstrap_ci(accuracy, y[:100], probs[:100], n_boot=300)
    large = ev.bootstrap_ci(accuracy, y, probs, n_boot=300)
    assert large[0] <= accuracy(y, probs) <= large[1]
    assert small[0] <= accuracy(y[:100], probs[:100]) <= small[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 2  # ~ 1/sqrt(n): 4.5x narrower
    assert ev.bootstrap_ci(accuracy, y, probs, n_boot=300) == large
    assert ev.bootstrap_ci(accuracy, y, probs, n_boot=300, seed=1) != large


def test_summary_row_agrees_with_sklearn():
    y, probs = _random_predictions(400, 8, seed=3)
    row = ev.summary_row("m", y, probs, n_boot=200)
    assert row["top1"] == pytest.approx(top_k_accuracy_score(y, probs, k=1))
    assert row["top5"] == pytest.approx(top_k_accuracy_score(y, probs, k=5))
    assert row["macro_f1"] == pytest.approx(f1_score(y, probs.argmax(axis=1), average="macro"))
    for name in ("top1", "top5", "macro_f1"):
        assert row[f"{name}_low"] <= row[name] <= row[f"{name}_high"]


def test_per_breed_report_matches_classification_report():
    y, probs = _random_predictions(200, 5, seed=4)
    y_pred = probs.argmax(axis=1)
    y_pred[y_pred == 2] = 1  # breed C never predicted: precision 0 without a warning
    names = list("ABCDE")
    report = ev.per_breed_report(y, y_pred, names)
    expected = classification_report(
        y, y_pred, target_names=names, output_dict=True, zero_division=0
    )
    for name in names:
        assert report.loc[name, "precision"] == pytest.approx(expected[name]["precision"])
        assert report.loc[name, "recall"] == pytest.approx(expected[name]["recall"])
        assert report.loc[name, "f1"] == pytest.approx(expected[name]["f1-score"])
        assert report.loc[name, "support"] == expected[name]["support"]


# ---- confusion ---------------------------------------------------------------------------------


def test_confusion_matrix_normalized_matches_sklearn_and_keeps_empty_rows_zero():
    y, probs = _random_predictions(300, 6, seed=5)
    y[y == 4] = 0  # class 4 has no support
    y_pred = probs.argmax(axis=1)
    cm = ev.confusion_matrix_normalized(y, y_pred, 6)
    expected = confusion_matrix(y, y_pred, labels=np.arange(6), normalize="true")
    np.testing.assert_allclose(cm, np.nan_to_num(expected))
    assert np.all(cm[4] == 0)
    np.testing.assert_allclose(np.delete(cm, 4, axis=0).sum(axis=1), 1.0)


def _planted(n_classes: int = 12, pair: tuple[int, int] = (2, 9), seed: int = 6):
    """Mostly right predictions plus heavy confusion between the two classes of `pair`."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), 40)
    y_pred = y.copy()
    noise = rng.random(len(y)) < 0.1
    y_pred[noise] = rng.integers(0, n_classes, noise.sum())
    a, b = pair
    y_pred[np.flatnonzero(y == a)[:15]] = b
    y_pred[np.flatnonzero(y == b)[:12]] = a
    return y, y_pred


def test_similarity_order_puts_confused_pair_together():
    for pair in [(2, 9), (0, 11), (5, 6)]:
        y, y_pred = _planted(pair=pair)
        order = list(ev.similarity_order(ev.confusion_matrix_normalized(y, y_pred, 12)))
        assert sorted(order) == list(range(12))
        assert abs(order.index(pair[0]) - order.index(pair[1])) == 1


def test_most_confused_pairs_finds_planted_mistake():
    names = [f"breed {i}" for i in range(10)]
    names[3], names[5] = "English Cocker Spaniel", "Cocker Spaniel"
    y = np.repeat(np.arange(10), 42)
    y_pred = y.copy()
    y_pred[np.flatnonzero(y == 3)[:27]] = 5  # the original's 27 of 42
    y_pred[np.flatnonzero(y == 7)[:4]] = 1
    pairs = ev.most_confused_pairs(y, y_pred, names, top=5)
    assert list(pairs.columns) == ["true", "predicted", "count", "share"]
    first = pairs.iloc[0]
    assert (first["true"], first["predicted"], first["count"]) == (names[3], names[5], 27)
    assert first["share"] == pytest.approx(27 / 42)
    assert len(pairs) == 2 and pairs.iloc[1]["count"] == 4


@pytest.mark.parametrize("n", [8, 40])
def test_plot_confusion_annotates_only_small_matrices(n):
    y, probs = _random_predictions(10 * n, n, seed=7)
    cm = ev.confusion_matrix_normalized(y, probs.argmax(axis=1), n)
    names = [f"b{i}" for i in range(n)]
    fig = ev.plot_confusion(cm, names, ev.similarity_order(cm))
    ax = fig.axes[0]
    assert len(ax.get_xticklabels()) == n
    assert (len(ax.texts) == n * n) if n <= 30 else not ax.texts


# ---- classes -----------------------------------------------------------------------------------


def test_class_mapping_by_wnid_then_name_and_renormalises():
    model = [
        {"name": "not a dog", "wnid": None},
        {"name": "toy poodle", "wnid": "n02113624"},
        {"name": "Mudi", "wnid": None},
        {"name": "Beagle", "wnid": "n02088364"},
    ]
    split = [
        {"name": "Beagle", "wnid": "n02088364"},
        {"name": "mudi", "wnid": None},
        {"name": "Toy Poodle", "wnid": "n02113624"},
    ]
    columns = ev.class_mapping(model, split)
    assert list(columns) == [3, 2, 1]
    probs = np.array([[0.4, 0.3, 0.2, 0.1], [0.0, 0.0, 0.0, 1.0]])
    restricted = ev.restrict_probabilities(probs, columns)
    np.testing.assert_allclose(restricted, [[1 / 6, 2 / 6, 3 / 6], [1.0, 0.0, 0.0]])


def test_class_mapping_reports_missing_classes():
    model = [{"name": "Beagle", "wnid": "n02088364"}]
    with pytest.raises(ValueError, match="Mudi"):
        ev.class_mapping(model, [{"name": "Beagle", "wnid": None}, {"name": "Mudi", "wnid": None}])
    # the same name under another wnid is another synset, not a match
    with pytest.raises(ValueError, match="beagle"):
        ev.class_mapping(model, [{"name": "beagle", "wnid": "n99999999"}])


# ---- galleries ---------------------------------------------------------------------------------


def test_gallery_orders_are_deterministic_with_ties_by_index():
    y = np.array([0, 0, 1, 1, 0, 1])
    probs = np.array([[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.45, 0.55], [0.1, 0.9], [0.4, 0.6]])
    assert list(ev.confident_mistakes(y, probs, 5)) == [0, 4, 2]  # 0.9, 0.9 (tie), 0.8
    assert list(ev.confident_mistakes(y, probs, 1)) == [0]
    assert list(ev.uncertain_correct(y, probs, 5)) == [3, 5, 1]  # 0.55, 0.6, 0.9


# ---- comparison --------------------------------------------------------------------------------


def test_comparison_table_joins_the_original_figures_by_role_and_leaves_others_empty():
    rows = []
    for name, role, seed in [("mine", "transfer", 1), ("EfficientNet", "imagenet", 2)]:
        y, probs = _random_predictions(100, 6, seed=seed)
        rows.append(ev.summary_row(name, y, probs, n_boot=50, role=role))
    table = ev.comparison_table(rows)
    assert list(table.index) == ["mine", "EfficientNet"]
    assert table.loc["mine", "original_top1"] == 0.827  # the original's Xception ImageNet
    assert pd.isna(table.loc["EfficientNet", "original_top1"])
    assert table.loc["EfficientNet", "top1"] == rows[1]["top1"]
    ax = ev.comparison_bar_chart(table, n_classes=6).axes[0]
    # Two bars for this run, one for the original: a missing figure is not drawn as a zero.
    assert len(ax.patches) == 3
    assert "no original" in [t.get_text() for t in ax.texts]


def test_per_breed_chart_puts_each_breed_beside_the_reference_only_where_it_has_it():
    report = pd.DataFrame({"f1": [0.9, 0.5, 0.7]}, index=["Pug", "Beagle", "Malamute"])
    bench = pd.DataFrame({"f1": [0.95, 0.8]}, index=["Pug", "Malamute"])  # no Beagle
    ax = ev.per_breed_chart(report, bench, "bench").axes[0]
    mine, theirs = ax.containers
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Beagle", "Malamute", "Pug"]
    assert [bar.get_width() for bar in mine] == [0.5, 0.7, 0.9]  # weakest breed at the bottom
    assert [bar.get_width() for bar in theirs] == [0.8, 0.95]
    assert [round(bar.get_y() + bar.get_height() / 2) for bar in theirs] == [1, 2]


def test_each_saved_model_gets_its_role_and_a_readable_label():
    cases = {
        "simple_cnn": ("simple_cnn", "simple CNN"),
        "xception_scratch": ("xception_scratch", "Xception from scratch"),
        "efficientnet_lite0_transfer": ("transfer", "ImageNet transfer (lite0)"),
        "imagenet-efficientnet-lite2": ("imagenet", "ImageNet classifier (lite0)"),
    }
    for name, (role, label) in cases.items():
        card = ModelCard(name=name, classes=[{"name": "Pug", "wnid": None}], image_size=8,
                         backbone="lite0")  # fmt: skip
        assert (ev.model_role(card), ev.model_label(card)) == (role, label)


def test_mcnemar_counts_the_disagreements_and_tests_them_as_coin_tosses():
    a = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], bool)
    b = np.array([0, 0, 0, 0, 0, 0, 0, 1, 0, 0], bool)
    a_only, b_only, p_value = ev.mcnemar(a, b)
    assert (a_only, b_only) == (7, 0)
    assert p_value == pytest.approx(2 * 0.5**7)  # two-sided exact binomial, 7 of 7
    assert ev.mcnemar(a, a)[2] == 1.0


def test_paired_comparison_interval_is_narrower_than_the_unpaired_one_for_similar_models():
    rng = np.random.default_rng(0)
    hits_b = rng.random(400) < 0.6
    hits_a = hits_b.copy()
    hits_a[np.flatnonzero(~hits_b)[:20]] = True  # a fixes 20 photos and breaks none
    result = ev.paired_comparison(hits_a, hits_b, n_boot=400, seed=1)
    assert result["difference"] == pytest.approx(20 / 400)
    assert (result["a_only"], result["b_only"]) == (20, 0)
    assert 0 < result["low"] <= result["difference"] <= result["high"]
    unpaired_width = 2 * 1.96 * np.sqrt(2 * 0.6 * 0.4 / 400)  # two independent proportions
    assert result["high"] - result["low"] < unpaired_width / 2
    assert result["p_value"] < 1e-5


# ---- robustness and the real-model path --------------------------------------------------------


def test_corruptions_keep_sane_images_and_change_pixels():
    rng = np.random.default_rng(8)
    image = Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).convert("RGBA")
    expected = {
        "gaussian blur",
        "JPEG quality 20",
        "centre crop 60%",
        "rotation 20°",
        "brightness x0.5",
        "brightness x1.5",
    }
    found = ev.corruptions()
    assert set(found) == expected
    reference = np.asarray(image.convert("RGB"), np.float64)
    for name, corrupt in found.items():
        out = corrupt(image)
        assert out.mode == "RGB", name
        if name == "centre crop 60%":
            assert out.size == (72, 54)
            continue
        assert out.size == image.size, name
        assert np.abs(np.asarray(out, np.float64) - reference).mean() > 2, name
    brighter = np.asarray(found["brightness x1.5"](image), np.float64).mean()
    darker = np.asarray(found["brightness x0.5"](image), np.float64).mean()
    assert darker < reference.mean() < brighter


MODEL_CLASSES = [
    {"name": "Pug", "wnid": "n02110958"},
    {"name": "not a dog", "wnid": None},
    {"name": "Beagle", "wnid": "n02088364"},
    {"name": "chihuahua", "wnid": None},  # matched by name, case-insensitively
]
SPLIT_COLUMNS = [2, 3, 0]  # Beagle, Chihuahua, Pug (split.json order) in MODEL_CLASSES


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    import keras

    from helpers.serving.model_dir import save_model_dir

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    metadata = {"name": "tiny", "classes": MODEL_CLASSES, "image_size": 8, "output": "logits"}
    return save_model_dir(tmp_path_factory.mktemp("models") / "tiny", model, metadata)


@pytest.fixture(scope="module")
def counting_predictor(tiny_model_dir):
    from helpers.serving.predict import Predictor

    class CountingPredictor(Predictor):
        """The real predictor, counting the images it is asked to predict."""

        calls = 0

        def probabilities(self, batch):
            self.calls += len(batch)
            return super().probabilities(batch)

    return CountingPredictor(tiny_model_dir)


def test_predict_split_maps_classes_and_caches(tmp_path, counting_predictor):
    from helpers.serving.predict import images_to_array

    split_dir = make_tinyset(tmp_path, {"train": 1, "val": 1, "holdout": 3})
    cache_dir = tmp_path / "cache"
    predictor = counting_predictor
    start = predictor.calls
    y, probs, paths = ev.predict_split(predictor, split_dir, "holdout", cache_dir)
    assert predictor.calls - start == 9 and list(y) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(p.is_file() for p in paths)
    assert [p.parent.name for p in paths] == ["beagle"] * 3 + ["chihuahua"] * 3 + ["pug"] * 3
    raw = predictor.model(images_to_array(paths, 8)).numpy()
    np.testing.assert_allclose(probs, softmax(raw[:, SPLIT_COLUMNS], axis=1), atol=1e-5)

    (cache_file,) = cache_dir.iterdir()
    mtime = cache_file.stat().st_mtime_ns
    again = ev.predict_split(predictor, split_dir, "holdout", cache_dir)
    assert predictor.calls - start == 9 and cache_file.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again[1], probs)
    assert again[2] == paths
    # a model directory instead of a predictor: the cache answers without loading the model
    from_dir = ev.predict_split(predictor.model_dir, split_dir, "holdout", cache_dir)
    np.testing.assert_array_equal(from_dir[1], probs)

    csv = split_dir / "split.csv"
    lines = csv.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not (line.startswith("pug/") and ",holdout," in line)]
    csv.write_text("".join(kept))
    y2, probs2, _ = ev.predict_split(predictor, split_dir, "holdout", cache_dir)
    assert predictor.calls - start == 9 + 6 and list(y2) == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(probs2, probs[:6], atol=1e-6)
    assert [p.name for p in cache_dir.iterdir()] == [cache_file.name]  # replaced, not piled up


def test_predict_split_reads_photos_from_a_bucket_url_as_the_training_reader_does(
    tmp_path, counting_predictor
):
    """split.json's raw_dir may be a URL (gs://...); ram:// is TensorFlow's in-memory bucket."""
    import json

    import tensorflow as tf

    from helpers.training.data import read_split

    split_dir = make_tinyset(tmp_path, {"train": 0, "val": 0, "holdout": 2})
    local = tmp_path / "raw"
    bucket = f"ram://doggo-{tmp_path.name}/raw"
    for photo in sorted(local.rglob("*.jpg")):
        target = f"{bucket}/{photo.relative_to(local).as_posix()}"
        tf.io.gfile.makedirs(target.rsplit("/", 1)[0])
        tf.io.gfile.copy(str(photo), target)
    info = json.loads((split_dir / "split.json").read_text())
    (split_dir / "split.json").write_text(json.dumps({**info, "raw_dir": bucket}))
    local.rename(tmp_path / "gone")  # only the bucket has the photos now

    y, probs, paths = ev.predict_split(counting_predictor, split_dir, cache_dir=tmp_path / "c")
    table, _ = read_split(split_dir)
    holdout = table[table["split"] == "holdout"]
    assert [str(p) for p in paths] == list(holdout["file"])
    assert all(str(p).startswith("ram://") for p in paths)
    assert list(y) == list(holdout["label"]) and probs.shape == (6, 3)
    again = ev.predict_split(counting_predictor, split_dir, cache_dir=tmp_path / "c")
    assert [str(p) for p in again[2]] == [str(p) for p in paths]  # the cache keeps the URLs


def test_robustness_table_on_real_model(tmp_path, counting_predictor):
    split_dir = make_tinyset(tmp_path, {"train": 0, "val": 0, "holdout": 2})
    y, probs, paths = ev.predict_split(counting_predictor, split_dir, cache_dir=tmp_path / "c")
    table = ev.robustness_table(
        counting_predictor, paths, y, ev.corruptions(), np.array(SPLIT_COLUMNS)
    )
    assert list(table["corruption"]) == ["none", *ev.corruptions()]
    assert table["top1"].iloc[0] == pytest.approx(np.mean(probs.argmax(axis=1) == y))
    assert table["change"].iloc[0] == 0 and table["top1"].between(0, 1).all()
    fig = ev.gallery(paths, y, probs, ev.confident_mistakes(y, probs, 4), ["B", "C", "P"])
    assert fig.axes
