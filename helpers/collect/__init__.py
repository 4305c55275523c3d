"""Collecting photos (01_scrape): sources propose URLs, downloads are checked, a manifest kept."""

from helpers.collect.demo import demo_site
from helpers.collect.download import FetchPolicy, ImageRules, evaluate
from helpers.collect.scrape import (
    collect_images,
    counts_by_breed_and_reason,
    read_manifest,
    sample_paths,
)
from helpers.collect.sources import make_source

__all__ = [
    "FetchPolicy",
    "ImageRules",
    "collect_images",
    "counts_by_breed_and_reason",
    "demo_site",
    "evaluate",
    "make_source",
    "read_manifest",
    "sample_paths",
]
