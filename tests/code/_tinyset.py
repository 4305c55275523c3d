"""A tiny real-JPEG data set with split.csv/split.json as docs/formats.md describes, for tests."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from tests._photoset import write_split_files

# Deliberately not in alphabetical order: split.json's order (sorted by name) must decide labels.
BREEDS = (("Pug", "n02110958"), ("Beagle", "n02088364"), ("Chihuahua", "n02085620"))
EXTRA_BREED = ("Whippet", "n02091134")  # a fourth breed, for `breeds=4`
COUNTS = {"train": 4, "val": 2, "holdout": 1}


def breed_color(index: int) -> tuple[int, int, int]:
    """A distinct base colour per class (index in sorted order) so a tiny model can learn it."""
    return [(200, 60, 60), (60, 200, 60), (60, 60, 200), (200, 200, 60)][index % 4]


def make_tinyset(
    root: Path,
    counts: dict[str, int] | None = None,
    size: tuple[int, int] = (48, 36),
    breeds: int = 3,
) -> Path:
    """Write raw/<slug>/<sha256>.jpg images and split/split.{csv,json} under `root`.

    Images are `size` (width, height), not square, so squashing is exercised. Returns the split
    folder.
    """
    counts = counts or COUNTS
    rng = np.random.default_rng(0)
    raw_dir, split_dir = root / "raw", root / "split"
    split_dir.mkdir(parents=True, exist_ok=True)
    chosen = (*BREEDS, EXTRA_BREED)[:breeds]
    classes = sorted(({"name": n, "wnid": w} for n, w in chosen), key=lambda c: c["name"])
    rows = []
    for index, cls in enumerate(classes):
        slug = cls["name"].lower().replace(" ", "_")
        (raw_dir / slug).mkdir(parents=True, exist_ok=True)
        for split, n in counts.items():
            for _ in range(n):
                noise = rng.integers(-40, 40, size=(size[1], size[0], 3))
                pixels = np.clip(np.array(breed_color(index)) + noise, 0, 255).astype(np.uint8)
                buf = io.BytesIO()
                Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
                data = buf.getvalue()
                sha = hashlib.sha256(data).hexdigest()
                (raw_dir / slug / f"{sha}.jpg").write_bytes(data)
                rows.append(
                    [f"{slug}/{sha}.jpg", cls["name"], cls["wnid"], split, sha, "0" * 16, sha[:8]]
                )
    write_split_files(split_dir, raw_dir, classes, rows)
    return split_dir
