"""helpers.hosted: on Colab or Kaggle one cell installs the pinned packages; elsewhere it skips."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from pathlib import Path

import pytest

from helpers.hosted import ensure_packages, install_command, pins, unmet_pins

PROJECT = Path(__file__).resolve().parents[2]
# On a machine with an NVIDIA driver the GPU requirements apply, which this CPU environment lacks:
# the hosted path would really install them.
cpu_only = pytest.mark.skipif(bool(shutil.which("nvidia-smi")), reason="an NVIDIA GPU machine")


def test_off_a_hosted_runtime_it_skips_and_says_why():
    message = ensure_packages(environ={"HOME": "/root"})
    assert message.startswith("Not on Colab or Kaggle")
    assert "COLAB_RELEASE_TAG" in message and "skipped" in message


def test_pins_follow_included_files_and_ignore_comments_and_extras(tmp_path):
    (tmp_path / "base.txt").write_text("# comment\nkeras==3.15.1  # why\nPillow_Heif==1.8.1\n")
    (tmp_path / "cpu.txt").write_text("-r base.txt\ntensorflow[and-cuda]==2.21.0\n\n")
    assert pins(tmp_path / "cpu.txt") == {
        "keras": "3.15.1", "pillow-heif": "1.8.1", "tensorflow": "2.21.0",
    }  # fmt: skip


def test_unmet_pins_name_wrong_and_missing_versions():
    pip_version = importlib.metadata.version("pip")
    wanted = {"pip": pip_version, "pytest": "0.0.1", "no-such-package-doggo": "1.0"}
    assert unmet_pins(wanted) == {
        "pytest": importlib.metadata.version("pytest"), "no-such-package-doggo": None,
    }  # fmt: skip


@cpu_only
def test_on_a_hosted_runtime_with_the_pins_installed_nothing_is_installed():
    # This environment was installed from the same pins (make setup), so there is nothing to do.
    message = ensure_packages(environ={"COLAB_RELEASE_TAG": "release-colab-external"})
    assert message == "The packages pinned by requirements/cpu.txt are installed."
    assert unmet_pins(pins(PROJECT / "requirements" / "cpu.txt")) == {}


@cpu_only
def test_install_command_installs_the_pinned_requirements_and_doggo_from_the_checkout():
    command = install_command(PROJECT)
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    requirements = Path(command[command.index("-r") + 1])
    constraints = Path(command[command.index("-c") + 1])
    assert requirements == PROJECT / "requirements" / "cpu.txt" and requirements.is_file()
    assert constraints == PROJECT / "requirements" / "constraints.txt" and constraints.is_file()
    assert command[command.index("-e") + 1] == str(PROJECT)
