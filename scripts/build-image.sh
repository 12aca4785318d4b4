#!/usr/bin/env bash
# Build the Bento and its image: `make image` (BASE_IMAGE=... TAG=...).
# BASE_IMAGE empty = BentoML's standard base image (needs a registry); the default here is a
# local base built from Debian packages by scripts/base-image.sh, since no registry is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${BASE_IMAGE-local/python:3.11-bookworm}
TAG=${TAG:-tabserve:latest}
PY=${PY:-.venv/bin/python}
BENTOML=${BENTOML:-.venv/bin/bentoml}

scripts/docker-engine.sh
BENTOFILE=bentofile.yaml
if [ -n "$BASE_IMAGE" ]; then
  case "$BASE_IMAGE" in local/*) scripts/base-image.sh "$BASE_IMAGE" ;; esac
  # bentofile.yaml stays the one description: only docker.base_image is set, in a copy.
  BENTOFILE=$(mktemp /tmp/tabserve-bentofile.XXXXXX.yaml)
  trap 'rm -f "$BENTOFILE"' EXIT
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
DOCKER_BUILDKIT=0 "$BENTOML" containerize "$BENTO" --opt network=host -t "$TAG"
echo "image $TAG"
