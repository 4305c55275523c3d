"""Hosted notebook runtimes (Colab, Kaggle): the links that open a notebook there, and the pinned
packages a learner's runtime gets with one cell."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from helpers.paths import PROJECT_ROOT

# Set by the runtimes themselves: Colab in every kernel, Kaggle in every notebook session.
HOSTED_VARIABLES = ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE")
BRANCH = "main"  # the branch the badges open
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
KAGGLE_BADGE = "https://kaggle.com/static/images/open-in-kaggle.svg"
CONSTRAINTS = Path("requirements") / "constraints.txt"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)")


def repository_url() -> str:
    """Return the GitHub repository recorded in pyproject.toml ([project.urls] Repository)."""
    for entry in importlib.metadata.metadata("doggo").get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip() == "Repository":
            return url.strip().removesuffix("/")
    raise LookupError("pyproject.toml names no [project.urls] Repository (re-run `make setup`)")


def notebook_links(path: str) -> dict[str, str]:
    """Return the Colab and Kaggle URLs that open the notebook at `path` (relative to the repo)."""
    blob = f"{repository_url()}/blob/{BRANCH}/{path}"
    github = blob.removeprefix("https://github.com/")
    return {
        "colab": f"https://colab.research.google.com/github/{github}",
        "kaggle": f"https://kaggle.com/kernels/welcome?src={blob}",
    }


def is_hosted(environ: Mapping[str, str] | None = None) -> bool:
    """Return whether this kernel runs on Colab or Kaggle."""
    environ = os.environ if environ is None else environ
    return any(name in environ for name in HOSTED_VARIABLES)


def requirements_file(root: Path = PROJECT_ROOT) -> Path:
    """Return the requirements for this machine: the GPU build where an NVIDIA driver is present."""
    flavour = "gpu" if shutil.which("nvidia-smi") else "cpu"
    return root / "requirements" / f"{flavour}.txt"


def pins(requirements: Path) -> dict[str, str]:
    """Return the `name==version` pins of a requirements file and the files it includes (-r)."""
    found: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith(("-r ", "--requirement ")):
            found.update(pins(requirements.parent / line.split(maxsplit=1)[1]))
        elif match := _PIN.match(line):
            found[_normal(match[1])] = match[2]
    return found


def unmet_pins(wanted: Mapping[str, str]) -> dict[str, str | None]:
    """Return the pinned packages whose installed version differs (None: not installed)."""
    unmet: dict[str, str | None] = {}
    for name, version in wanted.items():
        try:
            installed: str | None = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            unmet[name] = installed
    return unmet


def install_command(root: Path = PROJECT_ROOT) -> list[str]:
    """Return the pip command that installs the pinned packages and doggo itself from `root`."""
    return [
        sys.executable, "-m", "pip", "install", "--quiet",
        "-r", str(requirements_file(root)), "-c", str(root / CONSTRAINTS), "-e", str(root),
    ]  # fmt: skip


def ensure_packages(environ: Mapping[str, str] | None = None, root: Path = PROJECT_ROOT) -> str:
    """On Colab or Kaggle, install the pinned packages unless they are already there; elsewhere do
    nothing. Return what was done, for the notebook to print."""
    if not is_hosted(environ):
        names = " or ".join(HOSTED_VARIABLES)
        return f"Not on Colab or Kaggle (no {names}): skipped; `make setup` installs the packages."
    unmet = unmet_pins(pins(requirements_file(root)))
    if not unmet:
        return f"The packages pinned by {requirements_file(root).relative_to(root)} are installed."
    subprocess.run(install_command(root), check=True)
    return (
        f"Installed {len(unmet)} pinned packages ({', '.join(sorted(unmet))}). Restart the runtime "
        "(Colab: Runtime > Restart session; Kaggle: Run > Restart & clear cell outputs), then run "
        "the notebook from the top."
    )


def _normal(name: str) -> str:
    """Return a distribution name in its normalized form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()
