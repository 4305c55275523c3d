"""Sphinx configuration of the course's static site (`make book`): MyST-NB renders the notebooks
with their committed outputs, never executing them, and every asset the pages load is local."""

from __future__ import annotations

import sys
from pathlib import Path

BOOK = Path(__file__).resolve().parent
sys.path.insert(0, str(BOOK / "_ext"))

project = "doggo"
author = "doggo"
copyright = "doggo contributors"

extensions = ["myst_nb", "sphinx_external_toc", "offline_badges"]
external_toc_path = str(BOOK / "_toc.yml")
external_toc_exclude_missing = True  # solutions/ may not exist yet: its glob then adds nothing

# The source folder is the project root, so the README's and notebooks' own relative links work;
# only these files are pages, and the big folders are never walked.
include_patterns = [
    "README.md",
    "notebooks/*.ipynb",
    "solutions/*.ipynb",
    "docs/*.md",
    "benchmarks/README.md",
]
exclude_patterns = [
    ".*",
    "_build",
    "book",
    "data",
    "runs",
    "models",
    "results",
    "tests",
    "helpers",
    "app",
    "**/.ipynb_checkpoints",
]

nb_execution_mode = "off"  # the committed outputs are the demo's; nbval checks they regenerate
nb_ipywidgets_js = {}  # no require.js or widget manager from a CDN (no widget outputs anyway)
nb_merge_streams = True
myst_heading_anchors = 4  # README links such as benchmarks/README.md#toward-90-...
myst_enable_extensions = ["colon_fence"]
# Heading levels skip in places; solutions/ may be empty; docs/app.md abridges JSON with "...".
suppress_warnings = ["myst.header", "etoc.glob", "misc.highlighting_failure"]

html_theme = "sphinx_book_theme"
html_title = "doggo: a dog-breed classifier course"
html_static_path = [str(BOOK / "_static")]
html_favicon = str(BOOK / "_static" / "favicon.svg")  # else browsers ask for /favicon.ico
html_extra_path = [str(BOOK / "_extra")]  # index.html: the front page is README.html
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
html_copy_source = True  # the download button offers each page's .ipynb / .md
# Sphinx loads MathJax only on pages with math, from a CDN by default. No page has math; one that
# gets some fails tests/book (this local file is missing) until MathJax is vendored here.
mathjax_path = "mathjax/tex-chtml.js"
