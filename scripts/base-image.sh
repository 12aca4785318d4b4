#!/usr/bin/env bash
# Build a local Python 3.11 base image from Debian packages (no registry needed), once.
# Usage: scripts/base-image.sh [IMAGE]   (default local/python:3.11-bookworm)
# The image stays in the engine between runs; the root filesystem tarball is cached too.
set -euo pipefail

IMAGE=${1:-local/python:3.11-bookworm}
CACHE=${TABSERVE_CACHE:-$HOME/.cache/tabserve}
TARBALL=$CACHE/bookworm-python-rootfs.tar

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base image $IMAGE is present"
  exit 0
fi

mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  ROOTFS=$(mktemp -d /tmp/tabserve-rootfs.XXXXXX)
  trap 'rm -rf "$ROOTFS"' EXIT
  echo "debootstrap bookworm into $ROOTFS"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$ROOTFS" http://deb.debian.org/debian >/dev/null
  # pip inside the image build needs the host's CA bundle to reach the package index.
  cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  tar -C "$ROOTFS" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
fi

docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
  -c 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  "$TARBALL" "$IMAGE" >/dev/null
echo "imported $IMAGE"
