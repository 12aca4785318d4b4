#!/usr/bin/env bash
# Install Debian's nginx if it is missing. Nothing is started here: the replicas test runs its own
# nginx with its own configuration on a free loopback port, and stops it.
set -euo pipefail

if ! command -v nginx >/dev/null 2>&1 && ! test -x /usr/sbin/nginx; then
  echo "installing nginx"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
