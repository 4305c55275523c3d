"""The split keeps near-duplicates (mirror images too) together, is stratified per breed, and
keeps every earlier photo in its split when photos are added."""

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest

from helpers.split.assign import (
    ASSIGNMENT,
    SPLITS,
    earlier_split,
    hash_point,
    make_split,
    moved_photos,
    near_duplicate_groups,
    nearest_distances,
    split_counts,
    write_split,
)

MASK = 2**64 - 1


def _hex(bits: int) -> str:
    return f"{bits & MASK:016x}"


def _photos(breeds: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Photos with random sha256s and random, far-apart hashes (mirror hash unrelated too)."""
    rng = np.random.default_rng(seed)
    rows = []
    for breed, n in breeds.items():
        for _ in range(n):
            sha = "".join(rng.choice(list("0123456789abcdef"), 64))
            phash, mirror = (_hex(int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2)))
                             for _ in range(2))  # fmt: skip
            rows.append({"breed": breed, "wnid": "", "sha256": sha, "phash": phash,
                         "phash_mirror": mirror, "path": f"{breed.lower()}/{sha}.jpg"})  # fmt: skip
    return pd.DataFrame(rows)


def _within_one_photo(table: pd.DataFrame, fractions=(0.7, 0.2, 0.1)) -> bool:
    counts = split_counts(table)
    target = counts.sum(axis=1).to_numpy()[:, None] * np.asarray(fractions)
    return bool(((counts - target).abs() <= 1).all().all())


def test_groups_link_chains_of_near_duplicates_and_mirror_images_and_nothing_else():
    base = 0x0F0F_0F0F_0F0F_0F0F
    far = [
        0x3C3C_3C3C_3C3C_3C3C,
        0x5555_5555_5555_5555,
        0x00FF_00FF_00FF_00FF,
        0x6996_6996_6996_6996,
    ]
    phashes = [base, base ^ 0b111, base ^ 0b111 ^ (0b111 << 8), ~base, far[0], far[1]]
    mirrors = [far[0], far[2], far[3], ~far[0] ^ 0xF0, far[3] ^ 0xF, ~far[1]]
    labels = near_duplicate_groups([_hex(h) for h in phashes], [_hex(h) for h in mirrors], 3)
    # 0-1 and 1-2 differ by 3 bits (0-2 by 6): one chain. Photo 4 is photo 0's mirror image
    # (its hash is 0's mirror hash); 3 and 5 match nothing, their mirrors included.
    assert labels[0] == labels[1] == labels[2] == labels[4]
    assert len({labels[0], labels[3], labels[5]}) == 3


def test_a_mirrored_copy_under_another_breed_shares_its_originals_split():
    photos = _photos({"Beagle": 100, "Pug": 100})
    for i in range(30):  # Pug photo i is Beagle photo i mirrored: hash and mirror hash swap
        photos.loc[100 + i, ["phash", "phash_mirror"]] = photos.loc[i, ["phash_mirror", "phash"]]
    split = make_split(photos, near_duplicate_threshold=4, min_per_breed=10)
    table = split.table.set_index("sha256")
    for i in range(30):
        a, b = photos.loc[i, "sha256"], photos.loc[100 + i, "sha256"]
        assert table.loc[a, "split"] == table.loc[b, "split"]
        assert table.loc[a, "group"] == table.loc[b, "group"]
    assert split.table["group"].nunique() == 170


@pytest.mark.parametrize("n", [7, 50, 57, 103, 120, 401])
def test_every_breed_is_within_one_photo_of_its_fractions(n):
    split = make_split(_photos({"Beagle": n, "Pug": n + 3}, seed=n), min_per_breed=5)
    assert _within_one_photo(split.table)
    counts = split_counts(split.table)
    assert counts.loc["Beagle", "holdout"] == pytest.approx(0.1 * n, abs=1)


def test_other_fractions_are_honoured_too():
    split = make_split(_photos({"Beagle": 200}), fractions=(0.5, 0.25, 0.25), min_per_breed=5)
    assert split_counts(split.table).loc["Beagle"].tolist() == [100, 50, 50]


def test_adding_photos_keeps_every_earlier_photo_and_the_fractions():
    old = _photos({"Beagle": 97, "Pug": 61}, seed=1)
    before = make_split(old, min_per_breed=10)
    more = pd.concat([old, _photos({"Pug": 80, "Beagle": 5}, seed=2)])
    after = make_split(more, min_per_breed=10, previous=before.table)
    assert len(after.table) == 243 and moved_photos(before.table, after.table).empty
    assert _within_one_photo(after.table)
    # Without the earlier split the new photos reshuffle the order: that is why it is kept.
    fresh = make_split(more, min_per_breed=10)
    assert not moved_photos(before.table, fresh.table).empty


def test_a_new_photo_with_a_smaller_sha256_joining_a_group_moves_nothing():
    old = _photos({"Beagle": 80})
    before = make_split(old, min_per_breed=10)
    joiner = old.iloc[[5]].assign(sha256="0" * 64, path="beagle/new.jpg")  # phash: photo 5's
    after = make_split(pd.concat([old, joiner]), min_per_breed=10, previous=before.table)
    assert moved_photos(before.table, after.table).empty
    rows = after.table.set_index("sha256")
    assert rows.loc["0" * 64, "split"] == rows.loc[old.loc[5, "sha256"], "split"]
    assert rows.loc["0" * 64, "group"] == "0" * 16  # the group's id changes, its split does not


def test_a_new_photo_bridging_two_groups_in_different_splits_moves_only_the_smaller_side():
    old = _photos({"Beagle": 80})
    a = int(old.loc[0, "phash"], 16)
    old.loc[1, "phash"] = _hex(a ^ 0b1)  # photos 0 and 1: one group at threshold 4
    first = make_split(old, near_duplicate_threshold=4, min_per_breed=10)
    splits = first.table.set_index("sha256")["split"]
    lone = next(
        i for i in range(2, 80) if splits[old.loc[i, "sha256"]] != splits[old.loc[0, "sha256"]]
    )
    old.loc[lone, "phash"] = _hex(a ^ 0b111111)  # 6 bits from photo 0: still a group of its own
    before = make_split(old, near_duplicate_threshold=4, min_per_breed=10)
    assert moved_photos(first.table, before.table).empty
    # A new photo 3 bits from photo 0 and 3 bits from photo `lone` joins the two groups.
    bridge = old.iloc[[2]].assign(sha256="f" * 64, path="beagle/bridge.jpg",
                                  phash=_hex(a ^ 0b111), phash_mirror=_hex(~a))  # fmt: skip
    after = make_split(pd.concat([old, bridge]), near_duplicate_threshold=4, min_per_breed=10,
                       previous=before.table)  # fmt: skip
    moved = moved_photos(before.table, after.table)
    assert moved["sha256"].tolist() == [old.loc[lone, "sha256"]]  # the one-photo side moved
    assert moved.loc[0, "split_after"] == splits[old.loc[0, "sha256"]]


def test_split_ignores_input_order():
    photos = _photos({"Beagle": 120, "Pug": 120}, seed=3)
    a = make_split(photos, min_per_breed=10).table
    b = make_split(photos.sample(frac=1, random_state=7), min_per_breed=10).table
    pd.testing.assert_frame_equal(a, b)


def test_the_salt_changes_the_assignment_but_not_the_counts():
    photos = _photos({"Beagle": 120}, seed=5)
    a, b = (make_split(photos, min_per_breed=10, salt=s).table for s in ("doggo", "other"))
    assert not moved_photos(a, b).empty
    pd.testing.assert_frame_equal(split_counts(a), split_counts(b))
    assert hash_point("key", "doggo") != hash_point("key", "other")
    assert 0 <= hash_point("key") < 1


def test_nearest_distances_counts_mirror_images():
    phashes, mirrors = [0x0, 0xFF, ~0 & MASK, 0xF0F0], [~0 & MASK, 0xFF00, 0x0, 0x0F0F ^ 0b1]
    nearest = nearest_distances([_hex(h) for h in phashes], [_hex(h) for h in mirrors])
    # Photo 3 is 8 bits from photos 0 and 1 as stored, but its mirror is 7 bits from photo 0.
    assert nearest.tolist() == [0, 8, 0, 7]


def test_breeds_with_too_few_photos_are_excluded_and_reported():
    split = make_split(_photos({"Beagle": 60, "Pug": 12}), min_per_breed=50)
    assert split.excluded == {"Pug": 12}
    assert set(split.table["breed"]) == {"Beagle"}
    assert [c["name"] for c in split.classes] == ["Beagle"]


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="fractions"):
        make_split(_photos({"Beagle": 60}), fractions=(0.7, 0.2, 0.2))


def test_write_split_writes_manifest_and_class_list_and_earlier_split_reads_it_back(tmp_path):
    split = make_split(_photos({"Beagle": 60, "Pug": 60}), min_per_breed=10)
    params = {"fractions": [0.7, 0.2, 0.1], "salt": "doggo"}
    csv_path = write_split(split, tmp_path / "split", "data/raw", params, "abc")
    written = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    assert list(written.columns) == ["path", "breed", "wnid", "split", "sha256", "phash", "group"]
    assert len(written) == 120 and set(written["split"]) == set(SPLITS)
    info = json.loads((tmp_path / "split" / "split.json").read_text())
    assert [c["name"] for c in info["classes"]] == ["Beagle", "Pug"]
    assert info["fractions"] == {"train": 0.7, "val": 0.2, "holdout": 0.1}
    assert info["assignment"] == ASSIGNMENT
    assert not list((tmp_path / "split").glob("*.tmp"))
    again = earlier_split(tmp_path / "split", [0.7, 0.2, 0.1], "doggo")
    pd.testing.assert_frame_equal(again, written)
    # An earlier split made with other settings or by another rule is not carried over.
    assert earlier_split(tmp_path / "split", [0.8, 0.1, 0.1], "doggo") is None
    assert earlier_split(tmp_path / "split", [0.7, 0.2, 0.1], "other") is None
    (tmp_path / "split" / "split.json").write_text(json.dumps({**info, "assignment": "hash"}))
    assert earlier_split(tmp_path / "split", [0.7, 0.2, 0.1], "doggo") is None
    assert earlier_split(tmp_path / "nothing", [0.7, 0.2, 0.1], "doggo") is None


def test_links_keep_pairs_the_hash_missed_together():
    photos = _photos({"Beagle": 90})
    plain = make_split(photos, min_per_breed=10).table.set_index("sha256")["split"]
    a = photos.loc[0, "sha256"]
    b = next(s for s in photos["sha256"] if plain[s] != plain[a])  # far apart by hash, split apart
    linked = make_split(photos, min_per_breed=10, links=[(a, b), (a, "not a photo")])
    rows = linked.table.set_index("sha256")
    assert (
        rows.loc[a, "split"] == rows.loc[b, "split"]
        and rows.loc[a, "group"] == rows.loc[b, "group"]
    )
    counts = split_counts(linked.table).loc["Beagle"]
    assert (counts - 90 * np.array([0.7, 0.2, 0.1])).abs().max() <= 2  # a pair may cost a photo


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_the_split_files_get_the_modes_the_umask_gives(tmp_path, umask):
    # tempfile makes 0600 files; renamed into place they were unreadable to other users.
    old = os.umask(umask)
    try:
        split = make_split(_photos({"Beagle": 20, "Pug": 20}), min_per_breed=10)
        write_split(split, tmp_path / "split", "data/raw", {}, "abc")
    finally:
        os.umask(old)
    for name in ("split.csv", "split.json"):
        assert stat.S_IMODE((tmp_path / "split" / name).stat().st_mode) == 0o666 & ~umask
