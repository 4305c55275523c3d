"""Development server: `python -m app [--host H] [--port P] [--model DIR]`.

In production gunicorn serves the app instead: see app/gunicorn.conf.py and docs/app.md.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from app import create_app


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, load the model and serve with Flask's development server."""
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (8000)")
    parser.add_argument(
        "--model",
        help="saved model directory (default: $DOGGO_MODEL_DIR, the best trained model under "
        "models/, else the embedded ImageNet model)",
    )
    parser.add_argument("--debug", action="store_true", help="Flask debug mode (never in public)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(args.model)
    # threaded: concurrent requests share the one loaded model, as gunicorn's threads do.
    app.run(host=args.host, port=args.port, debug=args.debug, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
