#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine, and that `debootstrap`
# (the offline path of the runtime image build) is installed.
#
# Idempotent, for root on machines without systemd (CI containers, fresh
# VMs): installs Debian's docker.io when there is no `dockerd`, starts the
# daemon in the background, detached from the calling shell, and waits until
# `docker info` answers.  Prints nothing when all is ready.
set -euo pipefail

LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
WAIT_SECONDS="${DOCKERD_WAIT:-60}"

apt_updated=0
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "ensure_docker: '$*' is missing and installing it needs root; run this script as root" >&2
        exit 1
    fi
    # apt's chatter is kept and shown only when something fails.
    local out
    out="$(mktemp)"
    if [ "$apt_updated" = 0 ]; then
        if ! DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$out" 2>&1; then
            echo "ensure_docker: apt-get update failed:" >&2; tail -n 20 "$out" >&2; rm -f "$out"; exit 1
        fi
        apt_updated=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >"$out" 2>&1; then
        echo "ensure_docker: apt-get install $* failed:" >&2; tail -n 20 "$out" >&2; rm -f "$out"; exit 1
    fi
    rm -f "$out"
}

if ! command -v debootstrap >/dev/null 2>&1; then
    apt_install debootstrap
fi

if docker info >/dev/null 2>&1; then
    exit 0
fi

# `docker` may exist without the daemon (a client-only install), so test for
# the daemon itself.
if ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io
fi
if ! command -v docker >/dev/null 2>&1; then
    echo "ensure_docker: no docker client found after installing docker.io" >&2
    exit 1
fi

# A daemon may already be starting (another caller of this script); only
# start one when none runs, so that two callers do not fight over the socket.
if ! pgrep -x dockerd >/dev/null 2>&1; then
    # A stale pid file from a killed daemon blocks the start.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    mkdir -p "$(dirname "$LOG")"
    # setsid + nohup: the daemon must outlive the shell (and the test
    # session) that started it.
    setsid nohup dockerd >"$LOG" 2>&1 </dev/null &
fi

deadline=$((SECONDS + WAIT_SECONDS))
until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "ensure_docker: dockerd did not answer within ${WAIT_SECONDS} s; last lines of $LOG:" >&2
        tail -n 30 "$LOG" >&2 || true
        exit 1
    fi
    sleep 0.5
done
