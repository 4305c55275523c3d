#!/usr/bin/env bash
# `make docker-test`: build the image, run it with compose.yaml's hardening, wait for its
# HEALTHCHECK, predict a real photo over HTTP, then the same serving a mounted trained model.
# Starts the Docker engine if it is installed but not running (installs it with apt-get as root);
# makes the base image locally (scripts/docker_base.sh) when no registry answers. Without an
# engine it skips, except under CI=true, where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
IMAGE="${DOGGO_IMAGE:-doggo:test}"
DOGS="${DOGGO_DOGS:-../shared/datasets/stanford-dogs-120}"
BASE="$(sed -n 's/^ARG BASE=//p' Dockerfile)"
NAME="doggo-test-$$"
WORK="$(mktemp -d /tmp/doggo-docker-test.XXXXXX)"
cleanup() { docker rm -f "$NAME" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

say() { echo "docker-test: $*"; }
die() { say "FAIL: $*"; exit 1; }

ensure_engine() {
  docker info >/dev/null 2>&1 && return 0
  if ! command -v dockerd >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing docker.io with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  if command -v dockerd >/dev/null && [ "$(id -u)" = 0 ]; then
    say "starting dockerd (log: /tmp/doggo-dockerd.log)"
    nohup dockerd --storage-driver=overlay2 --iptables=false --bridge=none \
      >/tmp/doggo-dockerd.log 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  fi
  docker info >/dev/null 2>&1 && return 0
  [ "${CI:-}" = true ] && die "no Docker engine (and CI=true: this is not skipped)"
  say "SKIPPED: no Docker engine here (set CI=true to make this a failure)"
  exit 0
}

ensure_base() {
  docker image inspect "$BASE" >/dev/null 2>&1 && return 0
  timeout 120 docker pull "$BASE" >/dev/null 2>&1 && return 0
  say "$BASE not pullable: making it locally"
  scripts/docker_base.sh "$BASE"
}

# compose.yaml's hardening and limits as `docker run` flags, so both always agree.
compose_flags() {
  "$PY" - <<'PY'
import yaml
service = yaml.safe_load(open("compose.yaml"))["services"]["doggo"]
flags = []
if service.get("read_only"):
    flags.append("--read-only")
flags += [f"--tmpfs={path}" for path in service.get("tmpfs", [])]
flags += [f"--security-opt={opt}" for opt in service.get("security_opt", [])]
flags += [f"--cap-drop={cap}" for cap in service.get("cap_drop", [])]
for key, flag in (("user", "--user"), ("mem_limit", "--memory"), ("cpus", "--cpus")):
    if key in service:
        flags.append(f"{flag}={service[key]}")
flags += [f"--env={k}={v}" for k, v in (service.get("environment") or {}).items()]
required = {"--read-only", "--tmpfs=/tmp", "--cap-drop=ALL", "--user=10001:10001",
            "--security-opt=no-new-privileges:true"}
missing = required - set(flags)
assert not missing, f"compose.yaml lacks hardening {sorted(missing)}"
print("\n".join(flags))
PY
}

wait_healthy() {
  local status=""
  for _ in $(seq 150); do
    status="$(docker inspect -f '{{.State.Health.Status}}' "$NAME" 2>/dev/null || echo gone)"
    [ "$status" = healthy ] && return 0
    { [ "$status" = unhealthy ] || [ "$status" = gone ] ||
      [ "$(docker inspect -f '{{.State.Running}}' "$NAME")" != true ]; } && break
    sleep 2
  done
  docker logs "$NAME" 2>&1 | tail -40
  die "container not healthy (status: $status)"
}

# Predict one real photo of each of a few breeds; the answer must be the photo's breed.
check_answers() {
  local port="$1" model="$2"
  "$PY" - "$port" "$model" "$DOGS" <<'PY'
import json, sys, urllib.request
from pathlib import Path
port, model, dogs = sys.argv[1], sys.argv[2], Path(sys.argv[3])
base = f"http://127.0.0.1:{port}"
health = json.load(urllib.request.urlopen(base + "/healthz", timeout=10))
assert health["model"]["name"] == model, health
for folder in ("n02099601-golden_retriever", "n02110958-pug", "n02106662-German_shepherd"):
    photo = sorted((dogs / folder).glob("*.jpg"))[0]
    request = urllib.request.Request(base + "/api/explain?top_k=3", data=photo.read_bytes(),
                                     headers={"Content-Type": "image/jpeg"})
    answer = json.load(urllib.request.urlopen(request, timeout=60))
    wnid = folder.split("-")[0]
    assert answer["predictions"][0]["wnid"] == wnid, (photo, answer["predictions"])
    assert answer["model"]["name"] == model and answer["explanation"]["image"].startswith("data:")
    print(f"  {photo.name}: {answer['answer']} ({answer['predictions'][0]['probability']:.2f})"
          f", heatmap of {answer['explanation']['class']!r}")
PY
}

# Nothing written outside the tmpfs, and no errors in the logs (e.g. gunicorn's control socket).
# The engine itself creates a volume's mount point and its parents: those are not run-time writes.
check_clean() {
  local changes errors
  changes="$(docker diff "$NAME" | awk -v m="${MOUNT_POINT:-}/" 'm == "/" || index(m, $2 "/") != 1')"
  [ -z "$changes" ] || die "the container wrote to its filesystem: $changes"
  errors="$(docker logs "$NAME" 2>&1 | grep -E 'Traceback|\[ERROR\]|Errno|Read-only file system' || true)"
  [ -z "$errors" ] || die "errors in the container's log: $errors"
  docker stats --no-stream --format '  memory: {{.MemUsage}}' "$NAME"
}

run_case() {
  local label="$1" model="$2"; shift 2
  local port
  port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  say "$label: starting on 127.0.0.1:$port"
  mapfile -t flags < <(compose_flags)
  docker run -d --name "$NAME" --network host "${flags[@]}" \
    -e GUNICORN_BIND="127.0.0.1:$port" "$@" "$IMAGE" >/dev/null
  local started=$SECONDS
  wait_healthy
  say "$label: healthy after $(( SECONDS - started )) s"
  check_answers "$port" "$model"
  check_clean
  docker rm -f "$NAME" >/dev/null
  say "$label: ok"
}

ensure_engine
ensure_base
[ -d "$DOGS" ] || die "no shared photos at $DOGS"
say "building $IMAGE (base $BASE)"
start=$(date +%s)
docker build --network host -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; die "build failed"; }
say "built in $(( $(date +%s) - start )) s, $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}')"
run_case "embedded model" imagenet-efficientnet-lite2

# A real trained-model directory saved by helpers.serving.model_dir on this machine (the default
# model's network under another name), mounted read-only as compose.yaml describes.
# TensorFlow's start-up noise goes to a log, shown only if saving fails.
"$PY" - "$WORK/trained" 2>"$WORK/save.log" <<'PY' || { cat "$WORK/save.log"; say "FAILED: could not save the mounted model"; exit 1; }
import sys
from helpers.serving.default_model import build_default_model, default_card
from helpers.serving.model_dir import save_model_dir
save_model_dir(sys.argv[1], build_default_model(), default_card().replace(name="mounted-model"))
PY
MOUNT_POINT=/srv/doggo/trained/my-model run_case "mounted model" mounted-model \
  -v "$WORK/trained:/srv/doggo/trained/my-model:ro" -e DOGGO_MODEL_DIR=/srv/doggo/trained/my-model
say "PASSED"
