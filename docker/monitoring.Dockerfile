# The monitoring image: the serving image plus the `monitoring` extra (evidently and what it
# brings: plotly, faker, nltk), for the drift job (`python -m tabserve monitor`).
# scripts/build-image.sh (`make image`) builds it on top of the serving tag it has just built,
# with requirements/ as the build context. requirements/monitoring.txt pins the same versions as
# requirements/serving.txt (both exported from uv.lock), so only the missing packages are added
# and the two images cannot disagree on a shared one.
ARG SERVING_IMAGE
FROM ${SERVING_IMAGE}
ARG UV_VERSION
USER root
COPY monitoring.txt /tmp/monitoring.txt
# uv comes and goes in the same layer (the serving image keeps none).
RUN set -eux; \
    pip install --no-cache-dir --target /tmp/uv-tool "uv==${UV_VERSION}"; \
    UV_NO_CACHE=1 /tmp/uv-tool/bin/uv pip install --python /app/.venv/bin/python -r /tmp/monitoring.txt; \
    rm -rf /tmp/uv-tool /tmp/monitoring.txt
USER bentoml
