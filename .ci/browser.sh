#!/usr/bin/env bash
# A headless browser for tests/integration/test_report_browser.py (make test-slow): Debian's chromium,
# installed only when no Chromium is on PATH. Quiet; one line either way. Never fails CI: without a browser
# (no root, no package index) that test is skipped with its reason, and this line says why.
set -u
for b in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$b" >/dev/null 2>&1; then echo "browser: $(command -v "$b") is there"; exit 0; fi
done
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "browser: not installed (not root and no password-less sudo); the browser test will be skipped"; exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: not installed (no apt-get on this machine); the browser test will be skipped"; exit 0
fi
log=$(mktemp)
if $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 &&
   $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >>"$log" 2>&1; then
  echo "browser: installed $(chromium --version 2>/dev/null)"
else
  echo "browser: apt-get install chromium failed; the browser test will be skipped. Its last lines:"
  tail -n 5 "$log"
fi
rm -f "$log"
exit 0
