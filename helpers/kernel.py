"""The `doggo` Jupyter kernel: the settings under which notebook outputs regenerate bit for bit.

TensorFlow's CPU kernels pick their code path at run time: oneDNN's custom ops are on by default
only on CPUs with AVX-512 VNNI/BF16 or AMX, oneDNN's matrix multiply (which Eigen also calls)
dispatches on the instruction set, and Eigen splits reductions by the number of threads. Each
choice changes training numbers from the third decimal on, so outputs made on one CPU failed to
regenerate on another. The kernel fixes all three (and numpy's OpenBLAS kernels, chosen the same
way). Papermill (`helpers.pipeline`), nbval
(`make test`) and Jupyter Lab all start notebooks in this kernel.

    python -m helpers.kernel install   # write the kernelspec into this environment
    python -m helpers.kernel check     # exit 0 if committed outputs can regenerate exactly here
    python -m helpers.kernel record    # note this machine's numerics as the committed outputs'

Even with all of that pinned, two CPUs can still add floats in another order (blocking that
depends on cache sizes, seen between two AMD EPYC machines), so `check` also compares this
machine's numerics fingerprint (`helpers._numerics`: a few training steps of each kind of model,
hashed) with the one recorded, in `notebooks/numerics.json`, where the outputs were made.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from helpers.atomic import write_atomic
from helpers.paths import PROJECT_ROOT

KERNEL_NAME = "doggo"
NUMERICS_RECORD = PROJECT_ROOT / "notebooks" / "numerics.json"  # where the outputs were made
DISPLAY_NAME = "doggo (reproducible)"
# Every value is one a machine of the reference platform (below) can honour, so a native AVX2
# machine and an AVX-512 one capped at AVX2 run the same code paths.
REPRODUCIBLE_ENV = {
    "TF_ENABLE_ONEDNN_OPTS": "0",  # Eigen kernels everywhere, not oneDNN's on some CPUs only
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's matmul (used by Eigen too) as on an AVX2-only CPU
    "TF_NUM_INTRAOP_THREADS": "2",  # reductions split the same way on any number of cores
    "TF_NUM_INTEROP_THREADS": "2",
    "PYTHONHASHSEED": "0",
    # numpy's and scipy's OpenBLAS also pick kernels by CPU at run time: the AVX2 ones everywhere.
    "OPENBLAS_CORETYPE": "Haswell",
    "TF_CPP_MIN_LOG_LEVEL": "1",
}


def kernelspec() -> dict:
    """Return the kernel.json content: this environment's Python with REPRODUCIBLE_ENV."""
    return {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "env": REPRODUCIBLE_ENV,
        "metadata": {"debugger": True},
    }


def install(prefix: str | Path = sys.prefix) -> Path:
    """Write the kernelspec under `<prefix>/share/jupyter/kernels/doggo`; return its folder."""
    folder = Path(prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(kernelspec(), indent=1) + "\n")
    return folder


def pinned_tensorflow(requirements: Path = PROJECT_ROOT / "requirements" / "cpu.txt") -> str:
    """Return the tensorflow-cpu version that requirements/cpu.txt pins."""
    match = re.search(r"^tensorflow-cpu==(\S+)", requirements.read_text(), re.MULTILINE)
    if not match:
        raise ValueError(f"{requirements} pins no tensorflow-cpu version")
    return match.group(1)


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def _installed(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def why_not_exact(
    system: str | None = None,
    machine: str | None = None,
    flags: set[str] | None = None,
    tensorflow: str | None = None,
    pinned: str | None = None,
) -> str | None:
    """Return why this machine cannot regenerate the committed outputs bit for bit, or None.

    The reference platform is x86-64 Linux with AVX2, running the pinned tensorflow-cpu build
    (other builds, such as the GPU one or macOS arm64, compile their kernels differently).
    """
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    flags = _cpu_flags() if flags is None else flags
    tensorflow = _installed("tensorflow-cpu") if tensorflow is None else tensorflow
    pinned = pinned_tensorflow() if pinned is None else pinned
    if system != "Linux" or machine not in ("x86_64", "AMD64"):
        return f"{system} {machine} is not x86-64 Linux"
    if "avx2" not in flags:
        return "this CPU has no AVX2"
    if tensorflow != pinned:
        return f"tensorflow-cpu {tensorflow or 'is not installed'}, not the pinned {pinned}"
    return None


def fingerprint(overrides: Mapping[str, str] | None = None) -> str:
    """Return this machine's numerics fingerprint in the doggo kernel's settings (`overrides`
    changed), from a fresh Python: the settings must be in place before TensorFlow loads."""
    return fingerprints(overrides or {})[0]


def fingerprints(*overrides: Mapping[str, str]) -> list[str]:
    """Return the fingerprint under each of `overrides`, computed side by side in processes of
    their own: most of each is single-threaded tracing, and every setting that decides how sums
    are split is an environment variable, so running together changes no result."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "helpers._numerics"],
            env={**os.environ, **REPRODUCIBLE_ENV, **changed, "TF_CPP_MIN_LOG_LEVEL": "3"},
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for changed in overrides
    ]
    results = [proc.communicate() for proc in procs]
    for proc, (_, stderr) in zip(procs, results, strict=True):
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, stderr=stderr)
    return [stdout.split()[-1] for stdout, _ in results]


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Return the CPU as /proc/cpuinfo describes it: model name, family, model and cache (or
    the platform's processor where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(re.findall(r"^(model name|cpu family|model|cache size)\s*:\s*(.*)$", text, re.M))
    name = fields.get("model name", platform.machine()).strip()
    details = [f"{key} {fields[key]}" for key in ("cpu family", "model") if key in fields]
    if "cache size" in fields:
        details.append(f"{fields['cache size']} cache")
    return f"{name} ({', '.join(details)})" if details else name


def record_numerics(path: Path = NUMERICS_RECORD) -> dict[str, str]:
    """Write this machine's fingerprint to `path` as the committed outputs'; return the record."""
    record = {
        "fingerprint": fingerprint(),
        "cpu": cpu_name(),
        "tensorflow": _installed("tensorflow-cpu") or "not installed",
    }
    write_atomic(path, (json.dumps(record, indent=1) + "\n").encode())
    return record


def numerics_differ(path: Path = NUMERICS_RECORD, seen: str | None = None) -> str | None:
    """Return why this machine's numerics are not the recorded ones (`seen`: its fingerprint,
    computed when None), or None when they are the same."""
    if not path.is_file():
        return f"{path.name} is missing: no record of where the committed outputs were made"
    record = json.loads(path.read_text())
    seen = fingerprint() if seen is None else seen
    if seen == record["fingerprint"]:
        return None
    return (
        f"TensorFlow adds floats in another order on this CPU ({cpu_name()}) than on the one "
        f"that made the committed outputs ({record['cpu']}): numerics fingerprint "
        f"{seen[:12]} here, {record['fingerprint'][:12]} there"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the doggo Jupyter kernel")
    parser.add_argument("command", choices=["install", "check", "record", "fingerprint"])
    args = parser.parse_args(argv)
    if args.command == "install":
        print(f"installed kernel {KERNEL_NAME!r} in {install()}")
        return 0
    if args.command == "fingerprint":
        print(fingerprint())
        return 0
    if args.command == "record":
        record = record_numerics()
        print(f"recorded {record['fingerprint'][:12]} ({record['cpu']}) in {NUMERICS_RECORD.name}")
        return 0
    reason = why_not_exact() or numerics_differ()
    if reason is None:
        print("reference platform: committed notebook outputs are compared exactly")
        return 0
    print(f"not the reference platform ({reason}): notebooks run and their checks must pass, ")
    print("but printed training numbers may differ in float noise, so outputs are not compared")
    return 1


if __name__ == "__main__":
    sys.exit(main())
