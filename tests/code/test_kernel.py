"""The doggo kernel: its settings reach a started kernel, and the platform check says when
committed outputs can be compared exactly."""

import json
import subprocess
import sys

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from helpers import kernel


def test_installed_kernelspec_runs_this_python_with_the_reproducible_settings(tmp_path):
    folder = kernel.install(tmp_path)
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    assert spec["env"]["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert spec["env"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert spec["env"]["TF_NUM_INTRAOP_THREADS"] == "2"


def test_a_started_doggo_kernel_sees_the_settings(tmp_path):
    kernel.install(tmp_path)
    manager = KernelSpecManager(kernel_dirs=[str(tmp_path / "share" / "jupyter" / "kernels")])
    km = KernelManager(kernel_name="doggo", kernel_spec_manager=manager)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        seen = []
        kc.execute_interactive(
            "import os; print(os.environ['ONEDNN_MAX_CPU_ISA'], "
            "os.environ['TF_ENABLE_ONEDNN_OPTS'])",
            output_hook=lambda m: seen.append(m["content"].get("text", "")),
            timeout=60,
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert "AVX2 0" in "".join(seen)


def test_reference_platform_is_x86_64_linux_with_avx2_and_the_pinned_tensorflow():
    pinned = kernel.pinned_tensorflow()
    ok = {"system": "Linux", "machine": "x86_64", "flags": {"avx", "avx2"}, "tensorflow": pinned}
    assert kernel.why_not_exact(**ok) is None
    assert "AVX2" in kernel.why_not_exact(**{**ok, "flags": {"avx"}})
    assert "arm64" in kernel.why_not_exact(**{**ok, "system": "Darwin", "machine": "arm64"})
    assert "not the pinned" in kernel.why_not_exact(**{**ok, "tensorflow": "2.20.0"})
    assert "not installed" in kernel.why_not_exact(**{**ok, "tensorflow": ""})


def test_the_pin_is_read_from_requirements(tmp_path):
    reqs = tmp_path / "cpu.txt"
    reqs.write_text("-r base.txt\ntensorflow-cpu==9.8.7  # note\n")
    assert kernel.pinned_tensorflow(reqs) == "9.8.7"


def test_check_exits_nonzero_with_a_reason_off_the_reference_platform():
    code = (
        "import sys, helpers.kernel as k; k._cpu_flags = lambda: {'avx'}; "
        "sys.exit(k.main(['check']))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1
    assert "no AVX2" in run.stdout


def test_numerics_differ_names_both_machines_and_passes_an_equal_fingerprint(tmp_path):
    path = tmp_path / "numerics.json"
    assert "missing" in kernel.numerics_differ(path, seen="a" * 64)
    path.write_text(json.dumps({"fingerprint": "b" * 64, "cpu": "Some CPU", "tensorflow": "x"}))
    assert kernel.numerics_differ(path, seen="b" * 64) is None
    reason = kernel.numerics_differ(path, seen="a" * 64)
    assert "Some CPU" in reason and kernel.cpu_name() in reason and "aaaaaaaaaaaa" in reason


def test_cpu_name_gives_model_family_and_cache(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
        "model name\t: AMD EPYC\ncache size\t: 1024 KB\nflags\t\t: fpu avx2\n"
    )
    assert kernel.cpu_name(info) == "AMD EPYC (cpu family 25, model 17, 1024 KB cache)"
