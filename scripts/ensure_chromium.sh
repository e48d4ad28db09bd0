#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed at /usr/bin/chromium, the browser
# the browser tests drive through Playwright (Playwright's own browser
# download does not work on machines without its CDN).
#
# Idempotent, for root; prints nothing when the browser is already there.
set -euo pipefail

CHROMIUM="${COMPETE_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure_chromium: $CHROMIUM is missing and installing it needs root; run this script as root" >&2
    exit 1
fi

echo "installing chromium (once per machine)" >&2
out="$(mktemp)"
# apt's chatter is kept and shown only when something fails.
if ! DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$out" 2>&1; then
    echo "ensure_chromium: apt-get update failed:" >&2; tail -n 20 "$out" >&2; rm -f "$out"; exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >"$out" 2>&1; then
    echo "ensure_chromium: apt-get install chromium failed:" >&2; tail -n 20 "$out" >&2; rm -f "$out"; exit 1
fi
rm -f "$out"
if [ ! -x "$CHROMIUM" ]; then
    echo "ensure_chromium: chromium was installed but $CHROMIUM does not exist" >&2
    exit 1
fi
