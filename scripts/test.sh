#!/usr/bin/env bash
# The whole test suite, on a fresh machine as on a used one:
#   scripts/test.sh [pytest arguments]
# Installs and starts what the tests need (the Python environment, PostgreSQL,
# the Docker engine, Chromium for the browser tests), then runs pytest.  With
# CI=true, tests that need a real component fail instead of skipping when it is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/bootstrap.sh

if [ "$(id -u)" = "0" ]; then
    COMPETE_TEST_PG_URL="$(bash scripts/ensure_postgres.sh)"
    export COMPETE_TEST_PG_URL
    if [ -f scripts/ensure_docker.sh ]; then
        bash scripts/ensure_docker.sh
    fi
    bash scripts/ensure_chromium.sh
else
    echo "not root: PostgreSQL, Docker and Chromium are used only if already there" >&2
fi

exec python -m pytest -p no:cacheprovider "$@"
