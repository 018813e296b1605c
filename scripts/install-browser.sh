#!/usr/bin/env bash
# Installs what the browser test (tests/browser.rs) needs: Debian's Chromium and chromedriver.
# Idempotent: does nothing when both are already there. Needs root (or sudo) for apt-get.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "chromium and chromedriver: already installed ($(chromium --version 2>/dev/null | head -1))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "Installing Debian's chromium and chromium-driver..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver >/dev/null
echo "chromium and chromedriver: $(chromium --version 2>/dev/null | head -1)"
