"""The split keeps near-duplicates together, is stable as photos are added, and is stratified."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers.split import (
    SPLITS,
    cross_split_pairs,
    make_split,
    near_duplicate_groups,
    split_counts,
    split_for_key,
    write_split,
)


def _hex(bits: int) -> str:
    return f"{bits:016x}"


def _photos(breeds: dict[str, int], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for breed, n in breeds.items():
        for _ in range(n):
            sha = "".join(rng.choice(list("0123456789abcdef"), 64))
            phash = _hex(int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2)))
            rows.append({"breed": breed, "wnid": "", "sha256": sha, "phash": phash,
                         "path": f"{breed.lower()}/{sha}.jpg"})  # fmt: skip
    return pd.DataFrame(rows)


def test_groups_link_chains_of_near_duplicates_and_nothing_else():
    base = 0x0F0F_0F0F_0F0F_0F0F
    hashes = [base, base ^ 0b111, base ^ 0b111 ^ (0b111 << 8), ~base & (2**64 - 1)]
    labels = near_duplicate_groups([_hex(h) for h in hashes], threshold=3)
    # 0-1 differ by 3 bits and 1-2 by 3 bits (0-2 by 6): one chain; the complement is far away.
    assert labels[0] == labels[1] == labels[2]
    assert labels[3] != labels[0]


def test_near_duplicates_across_breeds_land_in_one_split_and_no_pair_leaks():
    photos = _photos({"Beagle": 300, "Pug": 300})
    # Make 40 Pug photos near-twins (2 bits apart) of Beagle photos.
    for i in range(40):
        twin = int(photos.loc[i, "phash"], 16) ^ 0b11
        photos.loc[300 + i, "phash"] = _hex(twin)
    split = make_split(photos, near_duplicate_threshold=4, min_per_breed=10)
    table = split.table.set_index("sha256")
    for i in range(40):
        a, b = photos.loc[i, "sha256"], photos.loc[300 + i, "sha256"]
        assert table.loc[a, "split"] == table.loc[b, "split"]
        assert table.loc[a, "group"] == table.loc[b, "group"]
    assert cross_split_pairs(split.table, threshold=4).empty


def test_cross_split_pairs_finds_a_planted_leak():
    photos = _photos({"Beagle": 20})
    photos.loc[1, "phash"] = _hex(int(photos.loc[0, "phash"], 16) ^ 1)
    table = photos.assign(split=["train"] + ["holdout"] * 19)
    leaks = cross_split_pairs(table, threshold=2)
    assert len(leaks) == 1
    assert {leaks.loc[0, "split_a"], leaks.loc[0, "split_b"]} == {"train", "holdout"}


def test_adding_photos_never_moves_existing_ones():
    before = make_split(_photos({"Beagle": 200, "Pug": 150}, seed=1), min_per_breed=10)
    more = pd.concat([_photos({"Beagle": 200, "Pug": 150}, seed=1), _photos({"Pug": 80}, seed=2)])
    after = make_split(more, min_per_breed=10)
    merged = before.table.merge(after.table, on="sha256", suffixes=("_before", "_after"))
    assert len(merged) == len(before.table)
    assert (merged["split_before"] == merged["split_after"]).all()


def test_split_ignores_input_order():
    photos = _photos({"Beagle": 120, "Pug": 120}, seed=3)
    a = make_split(photos, min_per_breed=10).table
    b = make_split(photos.sample(frac=1, random_state=7), min_per_breed=10).table
    pd.testing.assert_frame_equal(a, b)


def test_each_breed_is_split_close_to_70_20_10():
    split = make_split(_photos({"Beagle": 3000, "Pug": 3000}, seed=4), min_per_breed=10)
    shares = split_counts(split.table).div(3000)
    for breed in ("Beagle", "Pug"):
        assert shares.loc[breed, "train"] == pytest.approx(0.7, abs=0.03)
        assert shares.loc[breed, "val"] == pytest.approx(0.2, abs=0.03)
        assert shares.loc[breed, "holdout"] == pytest.approx(0.1, abs=0.03)


def test_breeds_with_too_few_photos_are_excluded_and_reported():
    split = make_split(_photos({"Beagle": 60, "Pug": 12}), min_per_breed=50)
    assert split.excluded == {"Pug": 12}
    assert set(split.table["breed"]) == {"Beagle"}
    assert [c["name"] for c in split.classes] == ["Beagle"]


def test_split_for_key_respects_fraction_edges():
    assert {split_for_key(str(i), (1.0, 0.0, 0.0)) for i in range(50)} == {"train"}
    assert {split_for_key(str(i), (0.0, 0.0, 1.0)) for i in range(50)} == {"holdout"}
    assert {split_for_key(str(i), (0.4, 0.3, 0.3)) for i in range(200)} == set(SPLITS)


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="fractions"):
        make_split(_photos({"Beagle": 60}), fractions=(0.7, 0.2, 0.2))


def test_write_split_writes_manifest_and_class_list(tmp_path):
    split = make_split(_photos({"Beagle": 60, "Pug": 60}), min_per_breed=10)
    csv_path = write_split(split, tmp_path / "split", "data/raw", {"seed": 1}, "abc")
    written = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    assert list(written.columns) == ["path", "breed", "wnid", "split", "sha256", "phash", "group"]
    assert len(written) == 120
    info = json.loads((tmp_path / "split" / "split.json").read_text())
    assert [c["name"] for c in info["classes"]] == ["Beagle", "Pug"]
    assert info["fractions"] == {"train": 0.7, "val": 0.2, "holdout": 0.1}
    assert not list((tmp_path / "split").glob("*.tmp"))
