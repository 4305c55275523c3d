"""Write the "Open in Colab" and "Open in Kaggle" badges into each notebook's first markdown cell.

Edits the jupytext `.py` twins only (under the title line, or in place when a badge line is
there); then `jupytext --sync <notebook>.ipynb` carries the change into each notebook and keeps
its outputs. Usage: `.venv/bin/python scripts/notebook_badges.py [TWIN.py ...]` (default: every
twin in notebooks/ and solutions/).
"""

from __future__ import annotations

import sys
from pathlib import Path

from helpers.hosted import COLAB_BADGE, KAGGLE_BADGE, notebook_links
from helpers.paths import PROJECT_ROOT

FOLDERS = ("notebooks", "solutions")


def badge_line(notebook: str) -> str:
    """Return the markdown line of both badges for a notebook path relative to the repository."""
    links = notebook_links(notebook)
    return (
        f"[![Open in Colab]({COLAB_BADGE})]({links['colab']}) "
        f"[![Open in Kaggle]({KAGGLE_BADGE})]({links['kaggle']})"
    )


def with_badges(twin_text: str, notebook: str) -> str:
    """Return a percent-format twin whose first markdown cell carries the badge line."""
    lines = twin_text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("# %% [markdown]"))
    wanted = f"# {badge_line(notebook)}\n"
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("# %%"):
            break
        if "[![Open in Colab]" in lines[i]:
            lines[i] = wanted
            return "".join(lines)
    title = start + 1  # the cell opens with its `# # Title` line
    return "".join(lines[: title + 1] + ["#\n", wanted] + lines[title + 1 :])


def main(paths: list[str]) -> None:
    twins = [Path(p).resolve() for p in paths] or sorted(
        twin for folder in FOLDERS for twin in (PROJECT_ROOT / folder).glob("*.py")
    )
    for twin in twins:
        notebook = twin.with_suffix(".ipynb").relative_to(PROJECT_ROOT).as_posix()
        text = twin.read_text()
        updated = with_badges(text, notebook)
        if updated != text:
            twin.write_text(updated)
            print(f"badges written: {twin.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
