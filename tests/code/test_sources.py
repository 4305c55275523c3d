"""helpers.collect.sources on their own: search paging, rate limits and records, and picking a
source by name.

The image search runs ddgs's own engine code against tests/code/searchserver.py on 127.0.0.1.
Collecting from each source (downloads and checks) is tested in test_scrape.py.
"""

from __future__ import annotations

import json

import pytest
from searchserver import SearchServer

from helpers.collect import sources
from helpers.collect.sources import ManifestSource, SearchError


def offsets(server: SearchServer, query: str) -> list[int]:
    """Return the result offsets (`s`) the server was asked for, in order, for `query`."""
    return [offset for path, q, offset in server.requests if q == query]


def test_image_search_pages_until_the_limit_or_the_results_run_out(search_server):
    urls = [f"https://photos.example/pug/{i}.jpg" for i in range(250)]
    search_server.serve("Pug dog", urls)
    source = search_server.source()
    assert [c.url for c in source.candidates("Pug", 220)] == urls[:220]
    assert offsets(search_server, "Pug dog") == [0, 100, 200]  # pages 1 to 3, 100 a page
    search_server.requests.clear()
    assert [c.url for c in source.candidates("Pug", 1200)] == urls  # page 4 is empty: the end
    assert offsets(search_server, "Pug dog") == [0, 100, 200, 300]

    # An engine that serves its first page again past the end: a page with no new URL ends it.
    search_server.serve("Akita dog", urls[:200] + urls[:100])
    assert [c.url for c in source.candidates("Akita", 1200)] == urls[:200]
    assert offsets(search_server, "Akita dog") == [0, 100, 200]


def test_a_rate_limit_is_waited_out_and_said_not_taken_for_no_photos(search_server, capsys):
    urls = [f"https://photos.example/beagle/{i}.jpg" for i in range(150)]
    search_server.serve("Beagle dog", urls)
    search_server.refuse("Beagle dog", 429, 2)
    source = search_server.source(retries=3)
    assert [c.url for c in source.candidates("Beagle", 500)] == urls
    said = capsys.readouterr().err.splitlines()
    assert said == [
        "Beagle: image search page 1 failed (HTTP 429, rate limited); waiting 0.01 s, "
        "then retry 1 of 3",
        "Beagle: image search page 1 failed (HTTP 429, rate limited); waiting 0.02 s, "
        "then retry 2 of 3",
    ]
    assert offsets(search_server, "Beagle dog") == [0, 0, 0, 100, 200]  # 200: empty, the end

    search_server.refuse("Beagle dog", 403, 99)
    with pytest.raises(SearchError, match=r"'Beagle dog' page 1 failed 4 times \(HTTP 403.*re-run"):
        source.candidates("Beagle", 500)

    # A search that finds nothing is believed at once: one request, no wait, no candidates.
    capsys.readouterr()
    assert source.candidates("Azawakh", 50) == []
    assert offsets(search_server, "Azawakh dog") == [0]
    assert capsys.readouterr().err == ""


def test_a_recorded_search_is_not_repeated_and_resumes_where_it_stopped(search_server, tmp_path):
    urls = [f"https://photos.example/pug/{i}.jpg" for i in range(300)]
    search_server.serve("Pug dog", urls)
    source = search_server.source(retries=1)
    assert len(source.candidates("Pug", 100, record_in=tmp_path)) == 100  # page 1 recorded
    search_server.refuse("Pug dog", 429, 99)
    with pytest.raises(SearchError, match="page 2"):
        source.candidates("Pug", 250, record_in=tmp_path)
    record = json.loads((tmp_path / "search" / "pug.json").read_text())
    assert (record["pages"], record["exhausted"], record["urls"]) == (1, False, urls[:100])

    search_server.refuse("Pug dog", 429, 0)
    search_server.requests.clear()
    assert [c.url for c in source.candidates("Pug", 250, record_in=tmp_path)] == urls[:250]
    assert offsets(search_server, "Pug dog") == [100, 200]  # on from page 2, not page 1 again

    # The web changes; the recorded search does not, until a larger limit asks for more.
    search_server.serve("Pug dog", list(reversed(urls)))
    search_server.requests.clear()
    assert [c.url for c in source.candidates("Pug", 250, record_in=tmp_path)] == urls[:250]
    assert search_server.requests == []
    assert [c.url for c in source.candidates("Pug", 250)][:2] == urls[:-3:-1]  # unrecorded


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


def test_search_candidates_carry_the_imagenet_wnid_of_their_akc_breed(search_server):
    breeds = ["Alaskan Malamute", "German Shepherd Dog", "Poodle", "Beagle"]
    breeds += ["American Eskimo Dog", "Azawakh"]
    for breed in breeds:
        search_server.serve(f"{breed} dog", [f"https://photos.example/{breed}.jpg"])
    source = search_server.source()
    # The shared folders: n02110063-malamute, n02106662-German_shepherd, n02113799-standard_poodle
    assert source.candidates("Alaskan Malamute", 1)[0].wnid == "n02110063"
    assert source.candidates("German Shepherd Dog", 1)[0].wnid == "n02106662"
    assert source.candidates("Poodle", 1)[0].wnid == "n02113799"
    assert source.candidates("Beagle", 1)[0].wnid == "n02088364"  # same name in both
    # ImageNet's "Eskimo dog" is a sled dog: not the AKC's American Eskimo Dog (a spitz).
    assert source.candidates("American Eskimo Dog", 1)[0].wnid is None
    assert source.candidates("Azawakh", 1)[0].wnid is None  # not an ImageNet class
