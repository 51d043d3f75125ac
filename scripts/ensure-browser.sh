#!/usr/bin/env bash
# Install Debian's headless Chromium for the browser test (tests/front/test_notebook_browser.py), once.
# Idempotent: does nothing when /usr/bin/chromium exists. Needs root (or sudo) for apt-get.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium
