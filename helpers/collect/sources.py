"""Photo sources: image search, a published URL manifest, a local folder of breed folders.

A source only proposes candidate URLs per breed; `helpers.collect.scrape` downloads and checks them.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from ddgs.engines import ENGINES
from ddgs.exceptions import DDGSException
from ddgs.http_client import HttpClient, Response

from helpers.atomic import write_atomic
from helpers.breeds import breed_slug, imagenet_wnid, parse_breed_folder, search_query
from helpers.collect.download import Candidate
from helpers.paths import project_path

SEARCH_DIR = "search"  # <out_dir>/search/<breed_slug>.json: what the image search found


class Source(Protocol):
    """Anything that proposes candidate image URLs for a breed, best first."""

    name: str
    schemes: tuple[str, ...]  # URL schemes its candidates may use (file: only for local data)

    def candidates(
        self, breed: str, limit: int, *, record_in: Path | None = None
    ) -> list[Candidate]:
        """Return up to `limit` candidates for `breed`, in a stable order.

        A source whose answers change between calls (a web search) records them in `record_in`
        (the output folder), so that a re-run proposes the same candidates.
        """
        ...


class SearchError(RuntimeError):
    """The image search kept failing (rate limit, network) after its retries."""


class SearchRefused(DDGSException):
    """The search engine answered an HTTP status other than 200; 403 and 429 mean "slow down"."""

    def __init__(self, status: int):
        kind = "rate limited" if status in RATE_LIMIT_STATUSES else "refused"
        super().__init__(f"HTTP {status}, {kind}")
        self.status = status


RATE_LIMIT_STATUSES = frozenset({403, 429})


class _StatusCheckingClient(HttpClient):
    """An engine's HTTP client (the same connection and headers) that raises on a non-200 answer.

    ddgs's engines read any status but 200 as "no results" (and ddgs then raises "No results
    found."), which would make a rate limit look like a breed without photos.
    """

    def __init__(self, engine_client: HttpClient):  # noqa: D107 (no new client: share its own)
        self.client = engine_client.client

    def request(self, *args: Any, **kwargs: Any) -> Response:
        """Make the engine's request; raise SearchRefused unless the answer is 200."""
        response = super().request(*args, **kwargs)
        if response.status_code != 200:
            raise SearchRefused(response.status_code)
        return response


@dataclass
class _SearchRecord:
    """What the search found for a breed so far: its image URLs in result order, the pages read,
    and whether the results ran out (a page added no new URL)."""

    backend: str
    pages: int = 0
    exhausted: bool = False
    urls: list[str] = field(default_factory=list)


class ImageSearchSource:
    """Candidates from a web image search (the `ddgs` package) for "<breed> dog".

    Result pages are read until `limit` distinct URLs are found or the results run out. With a
    `record_in` folder, what was found is kept in `<folder>/search/<breed_slug>.json`, so a
    re-run proposes the same candidates without searching, and a larger `limit` or an
    interrupted search pages on from where it stopped.
    """

    name = "image_search"
    schemes: tuple[str, ...] = ("http", "https")

    def __init__(
        self,
        *,
        backend: str = "duckduckgo",  # 100 results a page; ddgs's "bing" gives 35
        retries: int = 5,
        backoff: float = 30.0,  # seconds before the first retry, doubled each time
        timeout: int = 10,
        proxy: str | None = None,
        verify: bool | str = True,  # or the path of a CA bundle to trust
    ):
        if backend not in ENGINES["images"]:
            raise ValueError(
                f"unknown image search backend {backend!r}: {sorted(ENGINES['images'])}"
            )
        self.backend, self.retries, self.backoff = backend, retries, backoff
        self._engine = ENGINES["images"][backend](proxy=proxy, timeout=timeout, verify=verify)
        self._engine.http_client = _StatusCheckingClient(self._engine.http_client)

    def candidates(
        self, breed: str, limit: int, *, record_in: Path | None = None
    ) -> list[Candidate]:
        """Return up to `limit` distinct image URLs found for the breed, in result order."""
        path = None if record_in is None else record_in / SEARCH_DIR / f"{breed_slug(breed)}.json"
        record = _read_record(path, self.backend)
        while len(record.urls) < limit and not record.exhausted:
            known = set(record.urls)
            new = [u for u in dict.fromkeys(self._page(breed, record.pages + 1)) if u not in known]
            record.urls += new
            record.pages += 1
            record.exhausted = not new
            if path is not None:  # after every page, so a stopped search resumes at the next
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, json.dumps(asdict(record), indent=1) + "\n")
        wnid = imagenet_wnid(breed)  # so 05 can start the breed from ImageNet's row
        return [Candidate(breed, wnid, self.name, url) for url in record.urls[:limit]]

    def _page(self, breed: str, page: int) -> list[str]:
        """Return the image URLs of one result page, waiting out refusals and network errors."""
        for attempt in range(self.retries + 1):
            try:
                results = self._engine.search(search_query(breed), page=page) or []
                return [r.image for r in results if r.image]
            # Refusals (rate limits), timeouts, network errors, a page that is not JSON.
            except (DDGSException, ValueError) as err:
                last = err
            if attempt < self.retries:  # engines rate-limit bursts: wait it out, then go on
                wait = self.backoff * 2**attempt
                print(
                    f"{breed}: image search page {page} failed ({last}); waiting {wait:g} s, "
                    f"then retry {attempt + 1} of {self.retries}",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(wait)
        raise SearchError(
            f"image search for {search_query(breed)!r} page {page} failed {self.retries + 1} "
            f"times ({last}); wait a few minutes and re-run: finished work is kept, and this "
            "breed resumes where it stopped"
        ) from last


class ManifestSource:
    """Candidates from a published CSV (breed, url, optional sha256 and wnid), e.g. a manifest.

    Rows with a `status` column other than `kept` are skipped, so doggo's own manifest works.
    With `base_url`, relative URLs are downloaded from that server but recorded as published, so
    a resumed run matches them even when the server's address has changed.
    """

    name = "manifest"
    schemes: tuple[str, ...] = ("http", "https")

    def __init__(self, csv_path: str | os.PathLike, base_url: str | None = None):
        self.base_url = base_url
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        missing = {"breed", "url"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{csv_path} lacks columns {sorted(missing)}")
        self._rows = [r for r in rows if r.get("status", "kept") in ("kept", "")]

    def breeds(self) -> list[str]:
        """Return the breeds the CSV lists, sorted."""
        return sorted({r["breed"] for r in self._rows})

    def candidates(
        self, breed: str, limit: int, *, record_in: Path | None = None
    ) -> list[Candidate]:
        """Return the CSV's rows for `breed` in file order."""
        rows = [r for r in self._rows if r["breed"] == breed][:limit]
        return [
            Candidate(
                breed, r.get("wnid") or None, self.name, r["url"], r.get("sha256") or None,
                self._fetch_url(r["url"]),
            )
            for r in rows
        ]  # fmt: skip

    def _fetch_url(self, url: str) -> str | None:
        """Return where a relative URL is downloaded from, or None for an absolute one."""
        if self.base_url is None or urlsplit(url).scheme:
            return None
        return urljoin(self.base_url, url)


class FolderSource:
    """Candidates from a local folder of breed folders (`Golden_Retriever/` or Stanford Dogs'
    `n02085620-Chihuahua/`), as file: URLs validated exactly like downloads."""

    name = "folder"
    schemes: tuple[str, ...] = ("file",)

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self._folders: dict[str, tuple[Path, str | None]] = {}
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if folder.name.startswith("."):
                continue
            display, wnid = parse_breed_folder(folder.name)
            if display in self._folders:
                raise ValueError(f"two folders in {self.root} are both breed {display!r}")
            self._folders[display] = (folder, wnid)

    def breeds(self) -> list[str]:
        """Return the breed display names of the sub-folders, sorted."""
        return sorted(self._folders)

    def candidates(
        self, breed: str, limit: int, *, record_in: Path | None = None
    ) -> list[Candidate]:
        """Return the breed folder's files as file: URLs, sorted by name."""
        if breed not in self._folders:
            raise KeyError(f"no folder for breed {breed!r} in {self.root}")
        folder, wnid = self._folders[breed]
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        return [Candidate(breed, wnid, self.name, p.as_uri()) for p in files[:limit]]


def _read_record(path: Path | None, backend: str) -> _SearchRecord:
    """Return the recorded search at `path`, or an empty one; another backend's pages restart."""
    if path is None or not path.is_file():
        return _SearchRecord(backend)
    try:
        record = _SearchRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{path} is not a search record ({err}); delete it to search again"
        ) from err
    if record.backend != backend:  # its page numbers mean other pages: keep the URLs, page on
        return _SearchRecord(backend, urls=record.urls)
    return record


def make_source(kind: str, path: str | os.PathLike | None = None) -> Source:
    """Return the source a notebook parameter names: "search", "manifest" (CSV) or "folder"."""
    if kind == "search":
        return ImageSearchSource()
    if kind not in ("manifest", "folder"):
        raise ValueError(f"unknown source {kind!r}: use 'search', 'manifest' or 'folder'")
    if path is None:
        raise ValueError(f"the {kind} source needs source_path (a CSV file or a folder)")
    resolved = project_path(path)
    if not resolved.exists():
        raise FileNotFoundError(f"source_path {resolved} does not exist")
    return ManifestSource(resolved) if kind == "manifest" else FolderSource(resolved)
