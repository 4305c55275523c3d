"""Sphinx extension: the notebooks' Colab and Kaggle badges show images shipped with the book, so
that no page loads anything from another host (the links themselves stay as they are)."""

from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform

from helpers.hosted import COLAB_BADGE, KAGGLE_BADGE

LOCAL = {COLAB_BADGE: "open-in-colab.svg", KAGGLE_BADGE: "open-in-kaggle.svg"}


class LocalBadges(SphinxTransform):
    """Point the badge images at the book's own copies, before Sphinx collects images."""

    default_priority = 100

    def apply(self, **kwargs: object) -> None:
        for image in self.document.findall(nodes.image):
            if image["uri"] in LOCAL:
                image["uri"] = f"/book/_static/badges/{LOCAL[image['uri']]}"


def setup(app: Sphinx) -> dict[str, object]:
    app.add_transform(LocalBadges)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
