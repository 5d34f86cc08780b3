#!/usr/bin/env bash
# Print the container engine `make images` uses: $CONTAINER_ENGINE if set, else the
# first docker client that builds with BuildKit (a Docker client of release 23 or
# later needs its buildx plugin for that; Debian's 20.10 has BuildKit built in),
# else podman. Prints "docker" when none is found, so the error names it.
set -euo pipefail
if [[ -n ${CONTAINER_ENGINE:-} ]]; then echo "$CONTAINER_ENGINE"; exit 0; fi

builds_with_buildkit() {
  local major
  major=$("$1" --version 2>/dev/null | sed -n 's/^Docker version \([0-9]*\)\..*/\1/p')
  [[ -n $major ]] && { ((major < 23)) || "$1" buildx version >/dev/null 2>&1; }
}

for candidate in $(type -ap docker) /usr/bin/docker; do
  if builds_with_buildkit "$candidate"; then echo "$candidate"; exit 0; fi
done
if command -v podman >/dev/null; then echo podman; exit 0; fi
echo docker
