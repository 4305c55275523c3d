#!/usr/bin/env bash
# Make the Dockerfile's base image locally when no registry is reachable: a minimal Debian
# bookworm with python3.11 and venv, `python` and `pip` on PATH as in the official python image,
# imported under the official tag (default python:3.11-slim-bookworm) so the Dockerfile is unchanged.
#   scripts/docker_base.sh [TAG]
set -euo pipefail
tag="${1:-python:3.11-slim-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root="$(mktemp -d /tmp/doggo-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
echo "docker_base: debootstrap bookworm into $root (a few minutes)"
debootstrap --variant=minbase --include=python3.11,python3-venv,python3-pip,ca-certificates \
  bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
rm -f "$root.log"
# As in the official image: `python`/`pip` on PATH, and pip may install into the system Python.
ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
# Trust the CAs this host trusts (e.g. a TLS-inspecting proxy in front of PyPI), so pip works.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/locale/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$tag"
echo "docker_base: imported $tag"
