"""doggo's shared code: the notebooks and the app import from here; nothing runs at import."""

__version__ = "0.1.0"
