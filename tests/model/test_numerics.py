"""helpers.kernel.fingerprint: the same on one machine run after run, and different under each
setting known to change the lessons' training numbers (scripts/kernel_variants.py), so that an
equal fingerprint on another CPU means much more than an equal CPU name."""

from helpers import kernel


def test_the_fingerprint_repeats_and_changes_with_the_instruction_set_and_threads():
    here = kernel.fingerprint()
    assert len(here) == 64 and kernel.fingerprint() == here
    assert kernel.fingerprint({"ONEDNN_MAX_CPU_ISA": "SSE41"}) != here
    assert kernel.fingerprint({"TF_NUM_INTRAOP_THREADS": "1"}) != here
