#!/usr/bin/env bash
# Installs the real Python client libraries that tests/clients_python.rs drives (PyGithub,
# python-gitlab, gitea-api-client; pinned in tests/clients/python/requirements.txt) into the
# virtual environment tests/clients/python/.venv (ignored by git).
#
# Needs Python >= 3.9 with venv and pip (Debian: python3, python3-venv; installed with apt-get
# when missing and running as root) and access to PyPI. Idempotent: when the environment already
# matches the requirements file it returns at once without touching the network.
#
# Usage: .ci/install-python-clients.sh      (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR=tests/clients/python
VENV="$DIR/.venv"
REQ="$DIR/requirements.txt"
STAMP="$VENV/.installed-requirements"
PYTHON="${PYTHON:-python3}"
# find_spec, not import: importing gitea_api_client (thousands of pydantic models) takes seconds.
IMPORTS="import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('github', 'gitlab', 'gitea_api_client')))"

command -v "$PYTHON" >/dev/null || {
    echo "install-python-clients: $PYTHON not found (set PYTHON=...)" >&2
    exit 1
}

# What the stamp records: the requirements and the interpreter the venv was made from.
want="$(sha256sum "$REQ" | cut -d' ' -f1) $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
    && "$VENV/bin/python" -c "$IMPORTS" 2>/dev/null; then
    echo "install-python-clients: $VENV is up to date"
    exit 0
fi

make_venv() {
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1 \
    || [ ! -f "$STAMP" ] || [ "${want#* }" != "$(cut -d' ' -f2 "$STAMP")" ]; then
    echo "install-python-clients: creating $VENV with $("$PYTHON" --version 2>&1)"
    if ! make_venv; then
        # Debian's python3 ships venv without ensurepip; the python3-venv package adds it.
        if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
            echo "install-python-clients: installing python3-venv"
            apt-get update
            apt-get install -y --no-install-recommends python3-venv python3-pip
            make_venv
        else
            echo "install-python-clients: '$PYTHON -m venv' failed; install python3-venv" >&2
            exit 1
        fi
    fi
fi

echo "install-python-clients: installing $REQ"
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQ"
"$VENV/bin/python" -c "import github, gitlab, gitea_api_client"
echo "$want" >"$STAMP"
"$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
    | grep -Ei '^(PyGithub|python-gitlab|gitea[-_]api[-_]client) ' || true
echo "install-python-clients: done"
