"""The original doggo.name, the project this course re-creates and must beat: its figures, once."""

from __future__ import annotations

BREEDS = 188  # AKC breeds (../shared/breeds/akc-188.txt)
PHOTOS_PER_BREED = 400  # about, scraped by image search
SPLIT = (0.7, 0.2, 0.1)  # train, validation, holdout
EPOCHS = 20  # on 4 GPUs
# Holdout top-1 of its three models, keyed by the role each plays in the course
# (helpers.evaluation.model_role).
TOP1 = {"simple_cnn": 0.024, "xception_scratch": 0.641, "transfer": 0.827}


def top1_text(role: str) -> str:
    """Return the original's score for a model role as the notebooks quote it."""
    return f"the original: {TOP1[role]:.1%} top-1 on {BREEDS} breeds"
