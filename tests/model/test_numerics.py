"""helpers.kernel.fingerprint: the same on one machine run after run, and different under each
setting known to change the lessons' training numbers (scripts/kernel_variants.py), so that an
equal fingerprint on another CPU means much more than an equal CPU name."""

from helpers import kernel


def test_the_fingerprint_repeats_and_changes_with_the_instruction_set_and_threads():
    # Side by side, as kernel.fingerprints runs them: the first two must still agree.
    here, again, sse41, one_thread = kernel.fingerprints(
        {}, {}, {"ONEDNN_MAX_CPU_ISA": "SSE41"}, {"TF_NUM_INTRAOP_THREADS": "1"}
    )
    assert len(here) == 64 and again == here
    assert sse41 != here and one_thread != here
