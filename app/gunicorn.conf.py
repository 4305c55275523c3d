"""gunicorn settings from the environment: `gunicorn -c app/gunicorn.conf.py "app:create_app()"`.

Each worker process loads and warms its own copy of the model (no preload: TensorFlow does not
survive fork), then serves requests with a few threads sharing that model.
"""

import logging
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


bind = os.environ.get(
    "GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{_int('PORT', 8000)}"
)
# One worker per ~2 cores: a worker's TensorFlow already uses several cores per inference, and
# each worker holds its own model (~0.5 GB resident).
workers = _int("WEB_CONCURRENCY", 1)
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)
# Model loading happens in the worker before it answers: allow for it, and for slow Grad-CAMs.
timeout = _int("GUNICORN_TIMEOUT", 120)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then to bound memory growth; jitter keeps them from restarting together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 50)
limit_request_line = 8190
limit_request_fields = 100
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None  # empty: no access log
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# Keep gunicorn's own temporary heartbeat files in memory where a tmpfs is available.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
preload_app = False


def post_fork(server, worker) -> None:
    """Route the app's log lines (model loaded, warm-up time) through gunicorn's error log."""
    app_log = logging.getLogger("doggo")
    app_log.handlers = worker.log.error_log.handlers
    app_log.setLevel(worker.log.error_log.level)
