"""Collect dog photos from a source into `<out_dir>/<breed_slug>/<sha256>.jpg` plus a manifest.

See docs/formats.md for the layout. The sources (`helpers.collect.sources`) only propose candidate
URLs; every candidate goes through the same download and validation path.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from tqdm import tqdm

from helpers.atomic import leftover_temporaries, write_atomic
from helpers.breeds import breed_slug
from helpers.collect.download import Candidate, FetchPolicy, ImageRules, Outcome, evaluate
from helpers.collect.sources import Source
from helpers.formats import SCRAPE_MANIFEST
from helpers.hashing import mirror_aware_distance, mirror_aware_phashes

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = SCRAPE_MANIFEST
COLUMNS = (
    "breed", "wnid", "source", "url", "sha256", "phash", "phash_mirror", "width", "height",
    "status", "reason", "path",
)  # fmt: skip
# Manifests written before the mirror hash existed; read by filling it in from the kept files.
_COLUMNS_V1 = tuple(c for c in COLUMNS if c != "phash_mirror")


@dataclass
class CollectReport:
    """What a collection run did: per-breed status counts (whole manifest) and this run's work."""

    out_dir: Path
    counts: dict[str, dict[str, int]]
    fetched: int
    resumed: int
    seconds: float

    def total(self, status: str) -> int:
        """Return how many candidates of the run's breeds have `status`."""
        return sum(c.get(status, 0) for c in self.counts.values())

    def __str__(self) -> str:
        return (
            f"{self.total('kept')} kept, {self.total('rejected')} rejected, "
            f"{self.total('failed')} failed over {len(self.counts)} breeds; fetched "
            f"{self.fetched}, skipped {self.resumed} already done, in {self.seconds:.1f}s"
        )


def collect_images(
    source: Source,
    breeds: Iterable[str],
    out_dir: str | os.PathLike,
    per_breed: int,
    *,
    rules: ImageRules | None = None,
    policy: FetchPolicy | None = None,
    workers: int = 8,
    oversample: float = 3.0,
    progress: bool = True,
) -> CollectReport:
    """Download and validate up to `per_breed` images per breed into `out_dir`, resuming a run.

    The source is asked for `per_breed * oversample` candidates to allow for rejects. A breed is
    finished when it has `per_breed` kept images or every candidate is settled (the source had no
    more: a fixed list, or a search recorded as exhausted in `out_dir`); re-running with the same
    parameters then changes nothing, and a larger `per_breed` resumes it.
    """
    rules, policy = rules or ImageRules(), policy or FetchPolicy()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = _checked_breeds(breeds)
    state = _RunState(out, _load_rows(out))
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        job = _Job(source, per_breed, rules, policy, pool, workers)
        for number, breed in enumerate(names, 1):
            limit = math.ceil(per_breed * oversample)
            todo = state.todo(source.candidates(breed, limit, record_in=out))
            desc = f"[{number}/{len(names)}] {breed}"
            # The bar clears itself and a summary line stays: a plain log of how each breed
            # went, the same on every run (a finished bar's rate and padding are not).
            with tqdm(total=per_breed, desc=desc, file=sys.stderr, disable=not progress,
                      leave=False) as bar:  # fmt: skip
                _collect_breed(job, state, breed, todo, bar)
            if progress:
                done = state.status_counts(breed)
                print(f"{desc}: {done['kept']} kept, {done['rejected']} rejected, "
                      f"{done['failed']} failed", file=sys.stderr, flush=True)  # fmt: skip
    _remove_orphans(out, state.rows, names)
    _write_manifest(out, state.rows.values())  # also upgrades an older manifest's columns
    counts = {b: state.status_counts(b) for b in names}
    return CollectReport(out, counts, state.fetched, state.resumed, time.monotonic() - start)


def _checked_breeds(breeds: Iterable[str]) -> list[str]:
    names = sorted(set(breeds))
    slugs = [breed_slug(b) for b in names]
    if len(set(slugs)) != len(slugs):
        raise ValueError("two breeds share a folder name (slug); rename one")
    return names


class _RunState:
    """Manifest rows keyed by (breed, url), plus what this run fetched and skipped."""

    def __init__(self, out: Path, rows: list[dict[str, str]]):
        self.out, self.fetched, self.resumed = out, 0, 0
        # A kept row whose image was deleted is forgotten, so its URL is fetched again.
        present = [r for r in rows if r["status"] != "kept" or (out / r["path"]).is_file()]
        self.rows = {(r["breed"], r["url"]): r for r in present}

    def todo(self, candidates: list[Candidate]) -> list[Candidate]:
        """Return the candidates not settled by an earlier run, first occurrence of each URL."""
        fresh, seen = [], set()
        for cand in candidates:
            row = self.rows.get((cand.breed, cand.url))
            if cand.url in seen:
                continue
            seen.add(cand.url)
            if row and row["status"] != "failed":
                self.resumed += 1
            else:
                fresh.append(cand)
        return fresh

    def kept(self, breed: str) -> list[dict[str, str]]:
        """Return the kept rows of `breed`."""
        return [r for (b, _), r in self.rows.items() if b == breed and r["status"] == "kept"]

    def status_counts(self, breed: str) -> dict[str, int]:
        counts = {"kept": 0, "rejected": 0, "failed": 0}
        for (b, _), row in self.rows.items():
            if b == breed:
                counts[row["status"]] = counts.get(row["status"], 0) + 1
        return counts


@dataclass(frozen=True)
class _Job:
    """The fixed settings of one collection run."""

    source: Source
    per_breed: int
    rules: ImageRules
    policy: FetchPolicy
    pool: ThreadPoolExecutor
    workers: int


def _collect_breed(job: _Job, state: _RunState, breed: str, todo: list, bar: tqdm) -> None:
    """Fetch candidates in order, in batches, until `per_breed` images are kept."""
    kept = state.kept(breed)
    shas = {r["sha256"] for r in kept}
    hashes = [(r["phash"], r["phash_mirror"]) for r in kept]
    bar.update(min(len(kept), job.per_breed))
    position = 0
    while len(shas) < job.per_breed and position < len(todo):
        # The batch size depends only on counts, never on timing, so results are reproducible.
        batch = todo[position : position + max(job.per_breed - len(shas), job.workers)]
        position += len(batch)
        outcomes = job.pool.map(
            lambda c: evaluate(c, job.source.schemes, job.rules, job.policy), batch
        )
        for outcome in outcomes:  # applied in candidate order: the earlier near duplicate wins
            if len(shas) >= job.per_breed:
                break  # fetched beyond the target: left unrecorded so the result is the same
            state.fetched += 1
            row = _settle(outcome, shas, hashes, job.rules, state.out)
            state.rows[(row["breed"], row["url"])] = row
            bar.update(row["status"] == "kept")
        _write_manifest(state.out, state.rows.values())


def _settle(outcome: Outcome, shas: set, hashes: list, rules: ImageRules, out: Path) -> dict:
    """Reject exact and near duplicates (mirror images too) of the breed's kept images, store the
    rest."""
    if outcome.status == "kept":
        mine = (outcome.phash, outcome.phash_mirror)
        if outcome.sha256 in shas:
            outcome.status, outcome.reason = "rejected", "duplicate"
        elif any(
            mirror_aware_distance(*mine, *other) <= rules.near_duplicate_distance
            for other in hashes
        ):
            outcome.status, outcome.reason = "rejected", "near_duplicate"
        else:
            shas.add(outcome.sha256)
            hashes.append(mine)
    row = _row(outcome)
    if row["path"] and not (out / row["path"]).is_file():
        assert outcome.jpeg is not None  # a row has a path only for a kept photo, which has one
        (out / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out / row["path"], outcome.jpeg, sync=False)
    return row


def _row(o: Outcome) -> dict[str, str]:
    c = o.candidate
    path = f"{breed_slug(c.breed)}/{o.sha256}.jpg" if o.status == "kept" else ""
    values = (c.breed, c.wnid or "", c.source, c.url, o.sha256, o.phash, o.phash_mirror, o.width,
              o.height)  # fmt: skip
    row = dict(zip(COLUMNS, ("" if v is None else str(v) for v in values), strict=False))
    return {**row, "status": o.status, "reason": o.reason, "path": path}


def _write_manifest(out: Path, rows: Iterable[dict[str, str]]) -> None:
    """Rewrite the whole manifest atomically, rows sorted so thread timing cannot reorder it."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: (r["breed"], r["url"])))
    write_atomic(out / MANIFEST, buffer.getvalue())


def _load_rows(out: Path) -> list[dict[str, str]]:
    path = out / MANIFEST
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = tuple(reader.fieldnames or ())
        if columns not in (COLUMNS, _COLUMNS_V1):
            raise ValueError(f"{path} has columns {reader.fieldnames}, expected {list(COLUMNS)}")
        rows = list(reader)
    return rows if columns == COLUMNS else [_with_mirror_hash(out, r) for r in rows]


def _with_mirror_hash(out: Path, row: dict[str, str]) -> dict[str, str]:
    """Return an older manifest's row with `phash_mirror` computed from its kept file."""
    kept = row["status"] == "kept" and (out / row["path"]).is_file()
    mirror = mirror_aware_phashes(Image.open(out / row["path"]))[1] if kept else ""
    return {column: row.get(column, mirror) for column in COLUMNS}


def _remove_orphans(out: Path, rows: dict, breeds: Sequence[str]) -> None:
    """Delete temp files and images no manifest row refers to (left by a killed run)."""
    referenced = {out / r["path"] for r in rows.values() if r["path"]}
    for tmp in leftover_temporaries(out):
        tmp.unlink(missing_ok=True)
    for breed in breeds:
        folder = out / breed_slug(breed)
        temporaries = set(leftover_temporaries(folder))
        for path in folder.glob("*") if folder.is_dir() else ():
            orphan = path.suffix == ".jpg" and len(path.stem) == 64 and path not in referenced
            if orphan or path in temporaries:
                path.unlink()


def read_manifest(out_dir: str | os.PathLike) -> pd.DataFrame:
    """Return the manifest as a DataFrame (empty strings for missing values, sizes as Int64)."""
    import pandas as pd  # only the notebooks need pandas

    path = Path(out_dir)
    if not (path / MANIFEST).is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {path}: run 01_scrape first")
    frame = pd.DataFrame(_load_rows(path), columns=list(COLUMNS), dtype=str)
    for column in ("width", "height"):
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    return frame


def counts_by_breed_and_reason(out_dir: str | os.PathLike) -> pd.DataFrame:
    """Return one row per breed: the `kept` count, then one column per rejection/failure reason."""
    frame = read_manifest(out_dir)
    outcome = frame["reason"].where(frame["status"] != "kept", "kept")
    table = frame.assign(outcome=outcome).pivot_table(
        index="breed", columns="outcome", values="url", aggfunc="count", fill_value=0
    )
    columns = ["kept"] + sorted(c for c in table.columns if c != "kept")
    return table.reindex(columns=columns, fill_value=0).rename_axis(columns=None)


def sample_paths(out_dir: str | os.PathLike, n: int, seed: int = 0) -> list[Path]:
    """Return `n` kept image paths chosen reproducibly by `seed` (all of them if fewer)."""
    frame = read_manifest(out_dir)
    paths = sorted(frame.loc[frame["status"] == "kept", "path"])
    chosen = random.Random(seed).sample(paths, min(n, len(paths)))
    return [Path(out_dir) / p for p in chosen]
