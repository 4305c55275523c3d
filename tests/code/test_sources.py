"""helpers.collect.sources on their own: search retries and errors, and picking a source by name.

Collecting from each source (downloads and checks) is tested in test_scrape.py.
"""

from __future__ import annotations

import pytest
from ddgs.exceptions import DDGSException, RatelimitException

from helpers.collect import sources
from helpers.collect.sources import ImageSearchSource, ManifestSource, SearchError


def test_image_search_backs_off_then_explains_failure(monkeypatch):
    outcomes: list[object] = []

    class FlakyDDGS:
        def __init__(self, **kwargs: object) -> None:
            pass

        def images(self, query: str, max_results: int) -> list[dict]:
            result = outcomes.pop(0)
            if isinstance(result, Exception):
                raise result
            return result

    monkeypatch.setattr(sources, "DDGS", FlakyDDGS)
    source = ImageSearchSource(retries=2, backoff=0.01)
    found = [{"image": "http://x/1.jpg"}, {"image": "http://x/1.jpg"}, {"title": "no url"}]
    outcomes[:] = [RatelimitException("202 Ratelimit"), RatelimitException("again"), found]
    assert [c.url for c in source.candidates("Pug", 5)] == ["http://x/1.jpg"]
    outcomes[:] = [DDGSException("No results found.")]
    assert source.candidates("Pug", 5) == []
    outcomes[:] = [RatelimitException("202 Ratelimit")] * 3
    with pytest.raises(SearchError, match="Pug dog.*re-run"):
        source.candidates("Pug", 5)


def test_make_source_picks_the_named_source_and_checks_its_path(tmp_path):
    (tmp_path / "n02085620-Chihuahua").mkdir()
    csv_file = tmp_path / "m.csv"
    csv_file.write_text("breed,url,sha256\nPug,http://127.0.0.1:9/a.jpg,\n")
    assert isinstance(sources.make_source("search"), sources.ImageSearchSource)
    assert sources.make_source("folder", tmp_path).breeds() == ["Chihuahua"]
    assert isinstance(sources.make_source("folder", tmp_path), sources.FolderSource)
    assert sources.make_source("manifest", csv_file).breeds() == ["Pug"]
    assert isinstance(sources.make_source("manifest", csv_file), sources.ManifestSource)
    with pytest.raises(ValueError, match="source_path"):
        sources.make_source("folder")
    with pytest.raises(FileNotFoundError):
        sources.make_source("folder", tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown source"):
        sources.make_source("flickr")


def test_manifest_source_resolves_relative_urls_against_its_base_url(tmp_path):
    published = tmp_path / "urls.csv"
    published.write_text("breed,url,sha256\nPug,photos/a.jpg,\nPug,https://example.org/b.jpg,ab\n")
    plain, based = ManifestSource(published), ManifestSource(published, "http://127.0.0.1:8/x/")
    assert [c.fetch_url for c in plain.candidates("Pug", 5)] == [None, None]
    first, second = based.candidates("Pug", 5)
    assert (first.url, first.fetch_url) == ("photos/a.jpg", "http://127.0.0.1:8/x/photos/a.jpg")
    assert (second.url, second.fetch_url, second.sha256) == (
        "https://example.org/b.jpg",
        None,
        "ab",
    )


def test_search_candidates_carry_the_imagenet_wnid_of_their_akc_breed(monkeypatch):
    class OneResultDDGS:
        def __init__(self, **kwargs: object) -> None:
            pass

        def images(self, query: str, max_results: int) -> list[dict]:
            return [{"image": f"http://x/{query}.jpg"}]

    monkeypatch.setattr(sources, "DDGS", OneResultDDGS)
    source = ImageSearchSource(retries=0)
    # The shared folders: n02110063-malamute, n02106662-German_shepherd, n02113799-standard_poodle
    assert source.candidates("Alaskan Malamute", 1)[0].wnid == "n02110063"
    assert source.candidates("German Shepherd Dog", 1)[0].wnid == "n02106662"
    assert source.candidates("Poodle", 1)[0].wnid == "n02113799"
    assert source.candidates("Beagle", 1)[0].wnid == "n02088364"  # same name in both
    # ImageNet's "Eskimo dog" is a sled dog: not the AKC's American Eskimo Dog (a spitz).
    assert source.candidates("American Eskimo Dog", 1)[0].wnid is None
    assert source.candidates("Azawakh", 1)[0].wnid is None  # not an ImageNet class
