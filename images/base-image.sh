#!/usr/bin/env bash
# Build the Debian bookworm + Python 3.11 base image from Debian packages alone
# (debootstrap + import), for machines that reach no container registry.
#   images/base-image.sh [TAG]     CONTAINER_ENGINE=docker|podman, DEBIAN_MIRROR=...
# An image already present under TAG is kept (REBUILD=1 makes it anew), so CI
# pays for debootstrap once per machine.
set -euo pipefail
tag=${1:-evcharging/python:3.11-bookworm}
engine=${CONTAINER_ENGINE:-docker}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ -z ${REBUILD:-} ]] && "$engine" image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists (REBUILD=1 to make it anew)"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "base-image: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "base-image: debootstrap needs root" >&2; exit 1; }

root=$(mktemp -d /var/tmp/evcharging-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
# python3-venv: the builder stage makes a throwaway venv to pip-install uv.
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" "$mirror"
# What a runtime image never reads: package indexes, caches, docs, man pages, locales.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/tmp/*
tar --numeric-owner -C "$root" -c . | "$engine" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  - "$tag"
"$engine" image ls "$tag"
