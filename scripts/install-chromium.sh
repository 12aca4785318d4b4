#!/usr/bin/env bash
# Install Debian's chromium if it is missing: the dashboard test loads the Evidently UI in it,
# headless, as a person would open it (tests/integration/monitoring/test_dashboard_browser.py).
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
