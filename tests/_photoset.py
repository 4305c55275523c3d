"""A tiny split of real photos (docs/formats.md's split.csv and split.json), for tests that need
real JPEGs: the first photos of the first breeds of the shared Stanford Dogs folder, copied; and
the split files' writer, which tests/code/_tinyset.py's synthetic set uses too.

Imported as `tests._photoset` (the project root is on sys.path through its conftest.py) by the
tests of more than one folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from helpers.breeds import parse_breed_folder

COUNTS = {"train": 4, "val": 2, "holdout": 1}


def make_photoset(
    root: Path, stanford_dogs: Path, breeds: int = 3, counts: dict[str, int] | None = None
) -> Path:
    """Copy the first photos of the first `breeds` breed folders of `stanford_dogs` to
    `root`/raw/<slug>/ and write `root`/split/split.{csv,json}; return the split folder.

    Each breed gives `counts[split]` photos to each split, in file-name order, so the same call
    makes the same split.
    """
    counts = counts or COUNTS
    raw_dir, split_dir = root / "raw", root / "split"
    split_dir.mkdir(parents=True, exist_ok=True)
    folders = sorted(p for p in stanford_dogs.iterdir() if p.is_dir())[:breeds]
    classes, rows = [], []
    for folder in folders:
        name, wnid = parse_breed_folder(folder.name)
        classes.append({"name": name, "wnid": wnid})
        slug = name.lower().replace(" ", "_")
        (raw_dir / slug).mkdir(parents=True, exist_ok=True)
        photos = iter(sorted(folder.glob("*.jpg")))
        for split, n in counts.items():
            for photo in (next(photos) for _ in range(n)):
                sha = hashlib.sha256(photo.read_bytes()).hexdigest()
                shutil.copyfile(photo, raw_dir / slug / f"{sha}.jpg")
                rows.append([f"{slug}/{sha}.jpg", name, wnid or "", split, sha, "0" * 16, sha[:8]])
    classes.sort(key=lambda c: c["name"])
    write_split_files(split_dir, raw_dir, classes, rows)
    return split_dir


def write_split_files(split_dir: Path, raw_dir: Path, classes: list[dict], rows: list) -> None:
    """Write split.csv (`rows`: path, breed, wnid, split, sha256, phash, group) and split.json
    (`classes` in output order, photos under `raw_dir`) to `split_dir`."""
    header = "path,breed,wnid,split,sha256,phash,group\n"
    (split_dir / "split.csv").write_text(header + "".join(",".join(r) + "\n" for r in rows))
    info = {
        "raw_dir": raw_dir.as_posix(),
        "classes": classes,
        "excluded": {},
        "fractions": [0.6, 0.3, 0.1],
        "params": {},
        "manifest_sha256": "0" * 64,
    }
    (split_dir / "split.json").write_text(json.dumps(info, indent=2))
