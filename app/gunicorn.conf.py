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
# each worker holds its own model (~0.37 GB resident with the default model, measured in
# the container by scripts/docker_test.sh).
workers = _int("WEB_CONCURRENCY", 1)
# gevent: a connection costs a greenlet, not a thread, while its request arrives, so clients that
# trickle their upload cannot hold every worker thread (gthread parses requests in its threads).
# Inference and Grad-CAM hold the worker while they run; TensorFlow spreads each over the cores.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 100)
threads = _int("GUNICORN_THREADS", 4)  # used by worker_class=gthread only
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
# gunicorn 25+ opens a control socket under $HOME/.gunicorn: nothing may be written at run time
# (the container's root is read-only), and nothing here uses gunicornc.
control_socket_disable = True


def post_fork(server, worker) -> None:
    """Route the app's log lines (model loaded, warm-up time) through gunicorn's error log."""
    app_log = logging.getLogger("doggo")
    app_log.handlers = worker.log.error_log.handlers
    app_log.setLevel(worker.log.error_log.level)
