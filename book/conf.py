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
suppress_warnings = ["myst.header"]  # notebooks start at H1 and skip levels in places

html_theme = "sphinx_book_theme"
html_title = "doggo: a dog-breed classifier course"
html_static_path = [str(BOOK / "_static")]
html_extra_path = [str(BOOK / "_extra")]  # index.html: the front page is README.html
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
html_copy_source = False
mathjax_path = ""  # no page has math; never load MathJax from a CDN
