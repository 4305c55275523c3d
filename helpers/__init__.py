"""doggo's shared code: the notebooks and the app import from here; nothing heavy runs at import."""

import os

# TensorFlow's C++ start-up chatter (CPU-feature notes, oneDNN notices, timestamped log lines)
# would bury the notebooks' output and change on every run; real failures still raise in Python.
# Set TF_CPP_MIN_LOG_LEVEL yourself to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
