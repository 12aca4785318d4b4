#!/usr/bin/env bash
# Make a Docker engine available: install docker.io if missing, start dockerd without a bridge
# network (containers use the host network, on loopback), wait until it answers.
set -euo pipefail

LOG=${DOCKERD_LOG:-/tmp/tabserve-dockerd.log}

if ! command -v dockerd >/dev/null 2>&1; then
  echo "installing docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd (log: $LOG)"
  nohup dockerd --bridge=none --iptables=false --ip-masq=false >"$LOG" 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi

if ! docker info >/dev/null 2>&1; then
  echo "error: the Docker engine did not start; last lines of $LOG:" >&2
  tail -20 "$LOG" >&2 || true
  exit 1
fi
