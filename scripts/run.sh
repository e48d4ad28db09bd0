#!/usr/bin/env bash
# Runs the platform on its embedded default: a SQLite file and a local artifact
# directory in $COMPETE_HOME (default ./compete-home), the demo competition
# loaded and its sample submissions scored on the local Dask queue.
#   scripts/run.sh [compete demo arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/bootstrap.sh
export COMPETE_HOME="${COMPETE_HOME:-$PWD/compete-home}"
if [ "$(id -u)" = "0" ] && [ -f scripts/ensure_docker.sh ] && [ "${COMPETE_EXECUTOR:-auto}" != "process" ]; then
    # The docker executor isolates participants' code; without an engine the
    # platform falls back to the process executor and says so.
    bash scripts/ensure_docker.sh || echo "warning: no Docker engine; submissions run without isolation" >&2
fi
exec compete --executor "${COMPETE_EXECUTOR:-auto}" demo "$@"
