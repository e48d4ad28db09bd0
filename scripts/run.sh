#!/usr/bin/env bash
# Runs the platform on its embedded default: JupyterHub on http://127.0.0.1:8000
# with the competitions service, SQLite files and a local artifact directory in
# $COMPETE_HOME (default ./compete-home), a local Dask queue, the demo
# competition and demo accounts (printed once the hub is up).
#   scripts/run.sh [jupyterhub arguments]
# COMPETE_HUB_IP / COMPETE_HUB_PORT change the address; Ctrl-C stops the hub.
# `compete demo` is the same demo without the hub, in the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/bootstrap.sh
set +e  # from here on, this script handles failures itself
export COMPETE_HOME="${COMPETE_HOME:-$PWD/compete-home}"
mkdir -p "$COMPETE_HOME"

if [ "$(id -u)" = "0" ] && [ -f scripts/ensure_docker.sh ]; then
    # The docker executor isolates participants' code; without an engine the
    # platform falls back to the process executor and says so on its pages.
    if bash scripts/ensure_docker.sh; then
        echo "checking the runtime images, default and legacy (built once per machine, a few minutes the first time)" >&2
        compete image build >/dev/null || echo "warning: the runtime image could not be built; submissions on the docker executor will fail" >&2
        # CodaLab-era bundles (codalab/codalab-legacy:*) run on the legacy runtime; without it they run on
        # the default one, and the organizer is told so at upload.
        compete image build --all >/dev/null || echo "warning: the legacy runtime image could not be built; CodaLab-era bundles run on the default runtime" >&2
    else
        echo "warning: no Docker engine; submissions run without isolation" >&2
    fi
fi

ip="${COMPETE_HUB_IP:-127.0.0.1}"
port="${COMPETE_HUB_PORT:-8000}"
log="$COMPETE_HOME/jupyterhub.log"
pid_file="$COMPETE_HOME/jupyterhub.pid"
if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    echo "a hub already runs for $COMPETE_HOME (pid $(cat "$pid_file")); stop it first, or set COMPETE_HOME" >&2
    exit 1
fi
# The platform's database at this version's schema (the platform refuses an older one).
if ! compete db upgrade; then
    echo "error: the platform's database could not be upgraded (see above)" >&2
    exit 1
fi

# A hub that was killed leaves its proxy and service running (holding their
# ports), and a proxy pid file that would make the next start stop a stranger.
python -m hub_extension.embedded --home "$COMPETE_HOME" stop-leftovers
rm -f "$COMPETE_HOME/jupyterhub-proxy.pid"

start_line=1
[ -f "$log" ] && start_line=$(( $(wc -l <"$log") + 1 ))
jupyterhub -f jupyterhub_config.py "$@" > >(tee -a "$log") 2>&1 &
hub=$!
# Ctrl-C reaches the hub itself (same process group); a TERM to this script is passed on.
trap 'kill -TERM "$hub" 2>/dev/null' TERM
trap ':' INT

ready=0
for _ in $(seq 1 720); do
    kill -0 "$hub" 2>/dev/null || break
    if tail -n "+$start_line" "$log" 2>/dev/null | grep -q "JupyterHub is now running"; then
        ready=1
        break
    fi
    sleep 0.25
done
if [ "$ready" = 1 ]; then
    echo
    python -m hub_extension.embedded --home "$COMPETE_HOME" show --url "http://$ip:$port/"
    echo "(log: $log; the accounts are also in $COMPETE_HOME/demo-accounts.txt; Ctrl-C stops the hub)"
    echo
fi

# `wait` returns early when a signal arrives; wait again until the hub is gone.
while true; do
    wait "$hub"
    status=$?
    kill -0 "$hub" 2>/dev/null || break
done
python -m hub_extension.embedded --home "$COMPETE_HOME" stop-leftovers
exit "$status"
