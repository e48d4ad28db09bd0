#!/usr/bin/env bash
# Makes sure the Python environment of the project exists and is current.
# Sourced by scripts/run.sh and scripts/test.sh; prints nothing when all is ready.
#
# The virtual environment lives outside the clone, keyed by the hash of
# pyproject.toml, so fresh clones on the same machine reuse it; the project
# itself is installed in editable mode from whichever clone runs this.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
deps_hash="$(sha256sum "$REPO/pyproject.toml" | cut -c1-12)"
VENV="${COMPETE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/jupyter-compete/venv-$deps_hash}"

mkdir -p "$(dirname "$VENV")"
# One set-up at a time: a test run and a demo started together share the venv.
exec 9>"$VENV.lock"
flock 9
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.deps-ready" ]; then
    echo "setting up the Python environment in $VENV (once per machine)" >&2
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian's python3 needs python3-venv for `-m venv`.
        apt-get update -qq && apt-get install -y -qq python3-venv python3-pip >/dev/null
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel 2>&1 | grep -v "^WARNING: Location" >&2 || true
    # Dependencies first (from pyproject), the project itself below.
    "$VENV/bin/python" - "$REPO/pyproject.toml" > "$VENV/requirements.txt" <<'PY'
import re, sys, tomllib
data = tomllib.load(open(sys.argv[1], "rb"))["project"]
# The base and every extra; an extra naming the project itself
# ("jupyter-compete[lab,worker]") only repeats others, and is skipped.
own = data["name"].lower().replace("_", "-")
reqs = list(data["dependencies"])
for extra in data.get("optional-dependencies", {}).values():
    reqs += extra
def name(req):
    return re.split(r"[\s\[<>=!~;@]", req, maxsplit=1)[0].lower().replace("_", "-")
print("\n".join(dict.fromkeys(r for r in reqs if name(r) != own)))
PY
    "$VENV/bin/python" -m pip install -q -r "$VENV/requirements.txt" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    "$VENV/bin/python" -c "import jupyterhub, sqlalchemy, alembic, yaml, nh3, pytest, hypothesis, uv, aiosmtpd"
    touch "$VENV/.deps-ready"
fi
# The default runtime image's packages at its versions (kernels/requirements-py3.txt,
# the list the image is built from): where users' servers have no Docker, their
# notebooks run in this environment, with the judge's packages.
runtime_list="$REPO/kernels/requirements-py3.txt"
runtime_hash="$(sha256sum "$runtime_list" | cut -c1-12)"
if [ "$(cat "$VENV/.runtime-packages" 2>/dev/null)" != "$runtime_hash" ]; then
    echo "installing the runtime image's packages into $VENV (kernels/requirements-py3.txt)" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$runtime_list" 2>&1 \
        | grep -v "^WARNING: Location" >&2 || true
    "$VENV/bin/python" -c "import sklearn, scipy, matplotlib, ipywidgets"
    echo "$runtime_hash" > "$VENV/.runtime-packages"
fi

# Editable install of this clone (fast: no dependency resolution).
marker="$VENV/.installed-from"
if [ "$(cat "$marker" 2>/dev/null)" != "$REPO" ]; then
    "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$REPO" >"$VENV/.editable.log" 2>&1 || { cat "$VENV/.editable.log" >&2; exit 1; }
    echo "$REPO" > "$marker"
fi
flock -u 9
exec 9>&-
export PATH="$VENV/bin:$PATH"
export COMPETE_VENV="$VENV"
