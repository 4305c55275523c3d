"""The embedded default model, the Predictor and the `python -m helpers.serving` CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from helpers.models.imagenet import NOT_IN_STANFORD_DOGS
from helpers.serving.default_model import default_model_dir
from helpers.serving.predict import Predictor, best_model_dir, main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return default_model_dir(models_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def predictor(model_dir) -> Predictor:
    return Predictor(model_dir)


def _dog_photos(dataset: Path, per_breed: int = 1) -> list[Path]:
    folders = sorted(p for p in dataset.iterdir() if p.is_dir())
    return [f for d in folders for f in sorted(d.glob("*.jpg"))[:per_breed]]


def test_default_model_dir_is_cached_and_loads_with_plain_keras(model_dir):
    before = (model_dir / "model.keras").stat().st_mtime_ns
    assert default_model_dir(models_dir=model_dir.parent) == model_dir
    assert (model_dir / "model.keras").stat().st_mtime_ns == before  # not rebuilt
    model = keras.saving.load_model(model_dir / "model.keras")  # no custom objects needed
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert model.output.shape[-1] == len(meta["classes"]) == 122
    assert meta["classes"][0] == {"name": "Chihuahua", "wnid": "n02085620"}
    assert meta["classes"][-1]["wnid"] is None and meta["dog_classes"] == list(range(121))


def test_dog_photos_get_their_breed_and_count_as_dogs(stanford_dogs, predictor):
    photos = _dog_photos(stanford_dogs)
    results = predictor.predict_images(photos, top_k=5)
    stanford = [r for r, p in zip(results, photos, strict=True)
                if p.parent.name[:9] not in NOT_IN_STANFORD_DOGS]  # fmt: skip
    top1 = np.mean([r.top_k[0]["wnid"] == Path(r.path).parent.name[:9] for r in stanford])
    dog_rate = np.mean([r.is_dog for r in results])
    print(f"default model on {len(photos)} dog photos: top-1 {top1:.3f}, is-a-dog {dog_rate:.3f}")
    assert top1 >= 0.78
    assert dog_rate >= 0.97
    probabilities = [c["probability"] for c in results[0].top_k]
    assert probabilities == sorted(probabilities, reverse=True)
    assert results[0].dog_probability <= 1.0 + 1e-5


def test_non_dog_pictures_are_flagged(predictor):
    skimage = pytest.importorskip("skimage")
    folder = Path(skimage.__file__).parent / "data"  # pictures inside the wheel only
    files = sorted(p for p in folder.iterdir() if p.suffix in {".png", ".jpg", ".gif", ".tif"})
    results = [r for r in predictor.predict_images(files) if r.error is None]
    rate = np.mean([not r.is_dog for r in results])
    print(f"not-a-dog rate on {len(results)} scikit-image pictures: {rate:.3f}")
    assert len(results) >= 20
    assert rate >= 0.9
    cat = next(r for r in results if r.path.endswith("chelsea.png"))
    assert not cat.is_dog


def test_bytes_pil_and_paths_agree_and_bad_input_is_a_result(stanford_dogs, predictor):
    photo = _dog_photos(stanford_dogs)[5]
    data = photo.read_bytes()
    from_path, from_bytes, from_pil, bad = predictor.predict_images(
        [photo, data, Image.open(io.BytesIO(data)), b"not an image"]
    )
    for other in (from_bytes, from_pil):
        assert [c["wnid"] for c in other.top_k] == [c["wnid"] for c in from_path.top_k]
        assert other.dog_probability == pytest.approx(from_path.dog_probability, abs=1e-5)
    assert bad.error is not None and "not_an_image" in bad.error and bad.top_k == []


def test_predictor_is_thread_safe(stanford_dogs, predictor):
    photos = _dog_photos(stanford_dogs)[:6]
    expected = [r.top_k[0]["wnid"] for r in predictor.predict_images(photos)]
    outcomes: list[list[str]] = []

    def work(i: int) -> None:
        chunk = photos[i:] + photos[:i]
        got = [r.top_k[0]["wnid"] for r in predictor.predict_images(chunk)]
        outcomes.append(got[-i:] + got[:-i] if i else got)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [expected] * 4


def test_cli_json_lines_sorted_with_per_file_errors(stanford_dogs, model_dir, tmp_path, capsys):
    photos = _dog_photos(stanford_dogs)[:3]
    folder = tmp_path / "in"
    folder.mkdir()
    for i, photo in enumerate(reversed(photos)):
        (folder / f"{i}.jpg").write_bytes(photo.read_bytes())
    (folder / "3.jpg").write_bytes(photos[0].read_bytes()[:300])  # truncated JPEG
    (folder / "notes.txt").write_text("not an image, and not an image suffix")
    missing = tmp_path / "missing.jpg"
    code = main(["--model", str(model_dir), "--top-k", "2", "--json", str(folder), str(missing)])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert [Path(x["path"]).name for x in lines] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg",
                                                      "missing.jpg"]  # fmt: skip
    for line in lines[:3]:
        assert line["error"] is None and len(line["top_k"]) == 2 and line["is_dog"] is True
        assert {"name", "wnid", "probability"} <= set(line["top_k"][0])
    assert lines[2]["top_k"][0]["wnid"] == photos[0].parent.name[:9]
    assert "corrupt" in lines[3]["error"] and lines[4]["error"]


def test_cli_text_output(stanford_dogs, model_dir, capsys):
    photo = _dog_photos(stanford_dogs)[0]
    assert main(["--model", str(model_dir), str(photo)]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(str(photo)) and "Chihuahua" in out and "[dog" in out


def _fake_model_dir(root: Path, name: str, metrics: dict) -> Path:
    path = root / name
    path.mkdir(parents=True)
    meta = {"name": name, "classes": [{"name": "A"}], "image_size": 8, "output": "logits",
            "metrics": metrics}  # fmt: skip
    (path / "metadata.json").write_text(json.dumps(meta))
    (path / "model.keras").write_bytes(b"")
    return path


def test_best_model_dir_picks_highest_holdout_or_val_accuracy(tmp_path):
    assert best_model_dir(tmp_path) is None
    _fake_model_dir(tmp_path, "imagenet-default", {})
    assert best_model_dir(tmp_path) is None  # the embedded default has no such metric
    _fake_model_dir(tmp_path, "a", {"val_accuracy": 0.7})
    best = _fake_model_dir(tmp_path, "b", {"holdout": {"accuracy": 0.8}})
    _fake_model_dir(tmp_path, "c", {"holdout_accuracy": 0.75})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metadata.json").write_text("{")
    assert best_model_dir(tmp_path) == best
    os.remove(best / "model.keras")  # half-written: metadata but no model
    assert best_model_dir(tmp_path).name == "c"


def test_best_model_dir_finds_models_in_nested_folders(tmp_path):
    _fake_model_dir(tmp_path / "full", "xception", {"holdout_accuracy": 0.6})
    best = _fake_model_dir(tmp_path / "bench", "efficientnet", {"holdout_accuracy": 0.9})
    assert best_model_dir(tmp_path) == best


def test_the_cli_starts_as_python_dash_m_helpers_serving_without_warnings():
    out = subprocess.run([sys.executable, "-m", "helpers.serving", "--help"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.startswith("usage: python -m helpers.serving") and out.stderr == ""
