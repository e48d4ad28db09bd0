#!/usr/bin/env bash
# Makes sure a local PostgreSQL server runs and has the test role, installing
# Debian's `postgresql` when it is missing (as root, without systemd).
# Prints the URL of a database the tests may use (a role that may create databases).
set -euo pipefail

ROLE=compete
PASSWORD=compete
DB=compete_test
PORT="${COMPETE_PG_PORT:-5432}"

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "installing postgresql (once per machine)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >/dev/null
fi

version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$version main$"; then
    pg_createcluster "$version" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2
fi
for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$PORT" || { echo "PostgreSQL did not start" >&2; exit 1; }

psql_admin() { su postgres -c "psql -p $PORT -qtAX -v ON_ERROR_STOP=1 -c \"$1\"" ; }
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname='$ROLE'")" != "1" ]; then
    psql_admin "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'" >/dev/null
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname='$DB'")" != "1" ]; then
    psql_admin "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
fi
echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
