#!/usr/bin/env bash
# Build the virtualenv holding the real Zulip clients that tests/e2e drives.
#
# usage: bash tests/e2e/make_clients_venv.sh VENV_DIR
#
# zulip-term 0.7.0 declares Requires-Python <3.11, so we look for a working Python 3.10
# (a `python3.10` on PATH may be a pyenv shim that only prints "command not found", so
# every candidate is actually run). Without one we fall back to python3 and
# `pip install --ignore-requires-python`, which is enough for the login flow the tests
# use. Safe to re-run: a healthy venv of the right Python version is reused, a broken
# or mismatched one is rebuilt. Never reads stdin (CI runs with none).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 VENV_DIR" >&2
    exit 2
fi
VENV=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REQUIREMENTS="$HERE/clients-requirements.txt"

log() { echo "make_clients_venv: $*" >&2; }

# Prints "X.Y" if "$1" is a Python that starts and can create venvs, else fails.
python_version() {
    "$1" -c 'import sys, venv, ensurepip; print("%d.%d" % sys.version_info[:2])' \
        </dev/null 2>/dev/null
}

find_python310() {
    local candidates=() root
    if command -v python3.10 >/dev/null 2>&1; then
        candidates+=("$(command -v python3.10)")
    fi
    if command -v pyenv >/dev/null 2>&1 && root=$(pyenv root 2>/dev/null </dev/null); then
        candidates+=("$root"/versions/3.10*/bin/python3.10)
    fi
    candidates+=(
        "${PYENV_ROOT:-/nonexistent}"/versions/3.10*/bin/python3.10
        "$HOME"/.pyenv/versions/3.10*/bin/python3.10
        /root/.pyenv/versions/3.10*/bin/python3.10
        /usr/bin/python3.10
        /usr/local/bin/python3.10
    )
    local c
    for c in "${candidates[@]}"; do
        [[ -x $c ]] || continue  # also skips unmatched globs
        if [[ $(python_version "$c") == "3.10" ]]; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

PIP_EXTRA=()
if PYTHON=$(find_python310); then
    log "using $PYTHON (Python 3.10)"
else
    PYTHON=$(command -v python3 || true)
    if [[ -z $PYTHON ]] || ! WANT=$(python_version "$PYTHON"); then
        log "error: no working Python 3.10 and no working python3 found"
        exit 1
    fi
    log "warning: no working Python 3.10 found; falling back to $PYTHON (Python $WANT)"
    log "warning: installing with --ignore-requires-python (zulip-term 0.7.0 wants <3.11)"
    PIP_EXTRA+=(--ignore-requires-python)
fi
WANT=$(python_version "$PYTHON")

# Reuse an existing venv only if its interpreter runs and is the version we chose.
if [[ -e $VENV ]]; then
    HAVE=$(python_version "$VENV/bin/python" || true)
    if [[ $HAVE != "$WANT" ]]; then
        log "rebuilding $VENV (found Python '${HAVE:-broken}', want $WANT)"
        rm -rf "$VENV"
    fi
fi
if [[ ! -x $VENV/bin/python ]]; then
    "$PYTHON" -m venv "$VENV" </dev/null
fi

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/python" -m pip install --quiet ${PIP_EXTRA[@]+"${PIP_EXTRA[@]}"} -r "$REQUIREMENTS" </dev/null

# Prove the clients import and start before declaring success.
"$VENV/bin/zulip-term" --version </dev/null
"$VENV/bin/python" -c 'import zulip; print("zulip", zulip.__version__)' </dev/null
