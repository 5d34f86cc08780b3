#!/usr/bin/env bash
# Start a Docker daemon (as root) unless one answers, and wait for it.
#   images/dockerd.sh [PIDFILE]    prints nothing when a daemon already answered
# overlay2 first, vfs (always works, slower and larger) when overlay2 does not start.
# No bridge and no iptables rules: builds and the container tests use the host's
# network, so the daemon needs neither.
set -euo pipefail
pidfile=${1:-/run/evcharging-dockerd.pid}
log=${DOCKERD_LOG:-/tmp/evcharging-dockerd.log}
client=${CONTAINER_ENGINE:-docker}
deadline_s=${DOCKERD_DEADLINE_S:-60}

answers() { timeout 10 "$client" info >/dev/null 2>&1; }

if answers; then exit 0; fi
command -v dockerd >/dev/null || { echo "dockerd.sh: no dockerd (apt-get install docker.io)" >&2; exit 1; }
for driver in overlay2 vfs; do
  dockerd --storage-driver "$driver" --bridge none --iptables=false --ip-masq=false \
    --pidfile "$pidfile" >"$log" 2>&1 &
  pid=$!
  for ((i = 0; i < deadline_s * 2; i++)); do
    if answers; then echo "dockerd ($driver) is up, pid $pid, log $log"; exit 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "dockerd.sh: dockerd with $driver did not answer within ${deadline_s}s:" >&2
  tail -5 "$log" >&2
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
exit 1
