#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser tests (tests/dashboard/test_browser.py), driven
# by the pip `playwright` package with executable_path; no browser is ever downloaded.
# Installs the `chromium` package when /usr/bin/chromium is missing (needs root). Prints the
# browser's path on stdout.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "chromium.sh: installing chromium (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium >&2
fi
/usr/bin/chromium --version >&2
echo /usr/bin/chromium
