"""The course's static site (`make book`) in a real browser: every page loads, every internal link
and asset resolves, each notebook page shows its notebook's plots, tables and code, and no page
asks any host but 127.0.0.1 for anything.

Needs Debian's chromium and chromium-driver, as tests/app/test_browser.py; skipped without them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest

PROJECT = Path(__file__).resolve().parents[2]
LESSONS = sorted(PROJECT.glob("notebooks/[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted(PROJECT.glob("solutions/*.ipynb"))

# What the page shows, read in the browser after it loaded.
PAGE_FACTS = """return {
  ids: [...document.querySelectorAll('[id]')].map((e) => e.id),
  links: [...document.querySelectorAll('a[href]')].map((a) => a.href),
  outputImages: [...document.querySelectorAll('.cell_output img')].map(
    (img) => img.complete && img.naturalWidth > 0),
  outputTables: document.querySelectorAll('.cell_output table').length,
  codeCells: document.querySelectorAll('.cell .cell_input').length,
  images: [...document.images].map((img) => [img.currentSrc, img.complete && img.naturalWidth > 0]),
  nav: [...document.querySelectorAll('.bd-sidebar-primary nav a.reference')].map((a) => a.href),
};"""


@dataclass
class Page:
    """A page as the browser saw it: what it requested and what it shows."""

    url: str
    requests: list[str]
    failures: list[str]  # requests answered >= 400 or never answered
    facts: dict


def _network(driver) -> tuple[list[str], list[str]]:
    requested: dict[str, str] = {}
    failures = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            requested[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.responseReceived":
            if params["response"]["status"] >= 400:
                failures.append(f"{params['response']['status']} {params['response']['url']}")
        elif message["method"] == "Network.loadingFailed":
            failures.append(f"{params['errorText']} {requested.get(params['requestId'])}")
    return sorted(set(requested.values())), failures


@pytest.fixture(scope="module")
def pages(site: Path, site_url: str, browser) -> dict[str, Page]:
    """Every HTML page of the site, by its path, as loaded in the browser."""
    seen = {}
    browser.get_log("performance")  # start from an empty log
    for html in sorted(site.rglob("*.html")):
        path = html.relative_to(site).as_posix()
        if path.startswith("_static/"):
            continue  # the theme's template fragments, not pages
        browser.get(f"{site_url}/{path}")
        facts = browser.execute_script(PAGE_FACTS)
        requests, failures = _network(browser)
        seen[path] = Page(browser.current_url, requests, failures, facts)
    return seen


def _notebook_outputs(notebook: Path) -> dict[str, int]:
    cells = json.loads(notebook.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    outputs = [o.get("data", {}) for c in code for o in c.get("outputs", [])]
    return {
        "images": sum(any(k.startswith("image/") for k in data) for data in outputs),
        "tables": sum("<table" in "".join(data.get("text/html", "")) for data in outputs),
        "code": len(code),
    }


def _page_of(notebook: Path) -> str:
    return notebook.relative_to(PROJECT).with_suffix(".html").as_posix()


def test_the_site_has_the_readme_as_front_page_and_every_lesson_solution_and_doc(pages):
    expected = {"index.html", "README.html", "docs/teaching.html", "docs/app.html"}
    expected |= {_page_of(nb) for nb in LESSONS + SOLUTIONS}
    assert expected <= set(pages)
    assert pages["index.html"].url.endswith("/README.html")  # the front page
    assert len(LESSONS) == 6


def test_every_page_loads_everything_from_this_host_only(pages, site_url):
    for path, page in pages.items():
        foreign = [url for url in page.requests if not url.startswith((site_url, "data:"))]
        assert foreign == [], path
        assert page.failures == [], path
        broken = [src for src, ok in page.facts["images"] if not ok]
        assert broken == [], path


def test_every_internal_link_reaches_a_page_and_its_anchor(pages, site, site_url):
    ids = {urlsplit(page.url).path: set(page.facts["ids"]) for page in pages.values()}
    for path, page in pages.items():
        for link in page.facts["links"]:
            if not link.startswith(site_url):
                continue
            target, anchor = urldefrag(link)
            target_path = unquote(urlsplit(target).path)
            file = site / target_path.lstrip("/")
            assert file.is_file() or (file / "index.html").is_file(), f"{path}: {link}"
            if anchor and file.suffix == ".html":
                assert unquote(anchor) in ids[target_path], f"{path}: {link}"


@pytest.mark.parametrize("notebook", LESSONS + SOLUTIONS, ids=lambda nb: nb.stem)
def test_a_notebook_page_shows_its_plots_tables_and_code(pages, notebook):
    facts = pages[_page_of(notebook)].facts
    outputs = _notebook_outputs(notebook)
    assert all(facts["outputImages"])  # every plot decoded
    assert len(facts["outputImages"]) == outputs["images"]
    assert facts["outputTables"] == outputs["tables"]
    assert facts["codeCells"] == outputs["code"]
    if notebook in LESSONS:
        assert outputs["images"] > 0


def test_navigation_lists_lessons_then_solutions_in_order(pages, site_url):
    nav = [urlsplit(link).path for link in pages["README.html"].facts["nav"]]
    wanted = ["/" + _page_of(nb) for nb in LESSONS + SOLUTIONS] + ["/docs/teaching.html"]
    assert [path for path in nav if path in wanted] == wanted


def test_front_page_shows_the_app_screenshot_and_links_the_lessons(pages, site_url):
    front = pages["README.html"].facts
    shots = [ok for src, ok in front["images"] if src.endswith("/app-screenshot.png")]
    assert shots == [True]
    linked = {urlsplit(link).path for link in front["links"]}
    assert {"/" + _page_of(nb) for nb in LESSONS} | {"/docs/teaching.html"} <= linked


@pytest.mark.parametrize("notebook", LESSONS + SOLUTIONS, ids=lambda nb: nb.stem)
def test_a_notebook_page_links_its_colab_and_kaggle_badges(pages, notebook):
    repo_path = notebook.relative_to(PROJECT).as_posix()
    links = pages[_page_of(notebook)].facts["links"]
    colab = [u for u in links if u.startswith("https://colab.research.google.com/github/")]
    kaggle = [u for u in links if u.startswith("https://kaggle.com/kernels/welcome?src=")]
    assert [u.endswith(f"/blob/main/{repo_path}") for u in colab + kaggle] == [True, True]
