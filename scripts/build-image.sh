#!/usr/bin/env bash
# Build the Bento, its serving image and the monitoring image on top of it: `make image`
# (BASE_IMAGE=... TAG=... MONITORING_TAG=...).
#   TAG             the serving image (bentofile.yaml): `serve`, the stream worker, the deployment CLI
#   MONITORING_TAG  TAG plus the monitoring extra (docker/monitoring.Dockerfile): the drift job
#                   (`python -m tabserve monitor`); default: TAG's name with -monitoring, same version
# BASE_IMAGE empty = bentofile.yaml's base image (python:3.11-slim: needs a registry); the default
# here is a local base built from Debian packages by scripts/base-image.sh, since no registry is
# reachable.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${BASE_IMAGE-local/python:3.11-bookworm}
TAG=${TAG:-tabserve:latest}
case "$TAG" in *:*) ;; *) TAG=$TAG:latest ;; esac
MONITORING_TAG=${MONITORING_TAG:-${TAG%:*}-monitoring:${TAG##*:}}
PY=$(realpath -s "${PY:-.venv/bin/python}")
BENTOML=$(realpath -s "${BENTOML:-.venv/bin/bentoml}")
UV_VERSION=${UV_VERSION:-$(sed -n 's/^UV_VERSION := //p' Makefile)}

scripts/docker-engine.sh
SCRATCH=$(mktemp -d /tmp/tabserve-image.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
BENTOFILE=bentofile.yaml
if [ -n "$BASE_IMAGE" ]; then
  case "$BASE_IMAGE" in local/*) scripts/base-image.sh "$BASE_IMAGE" ;; esac
  # bentofile.yaml stays the one description: only docker.base_image is set, in a copy.
  BENTOFILE=$SCRATCH/bentofile.yaml
  "$PY" - "$BASE_IMAGE" "$BENTOFILE" <<'PYTHON'
import sys, yaml
spec = yaml.safe_load(open("bentofile.yaml"))
spec.setdefault("docker", {})["base_image"] = sys.argv[1]
yaml.safe_dump(spec, open(sys.argv[2], "w"), sort_keys=False)
PYTHON
fi

"$PY" -m tabserve train --if-missing
BENTO=$("$BENTOML" build -f "$BENTOFILE" --output tag | tail -1 | sed 's/^__tag__://')
echo "built $BENTO"
# `containerize` copies the Bento to a temporary build context, then refuses its own copy of
# the Dockerfile template unless that context is under the working directory (BentoML issue
# #5566, open in 1.4.40): run it from the folder that holds its temporary directory.
(cd "$SCRATCH" && TMPDIR=$SCRATCH DOCKER_BUILDKIT=0 "$BENTOML" containerize "$BENTO" --opt network=host -t "$TAG")
echo "image $TAG"

DOCKER_BUILDKIT=0 docker build --network host -f docker/monitoring.Dockerfile \
  --build-arg SERVING_IMAGE="$TAG" --build-arg UV_VERSION="$UV_VERSION" \
  -t "$MONITORING_TAG" requirements/
echo "image $MONITORING_TAG"
