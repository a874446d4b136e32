#!/usr/bin/env bash
# The two commands of the README, on a fresh machine:
#   ./run.sh          the main job (see tools/demo.py): synthetic data, model, results under runs/demo/
#   ./run.sh test     the test suite (extra arguments go to pytest)
# Installs what is missing into ./.venv first. torch is installed pinned (torch==2.13.0) when absent:
# a bare `torch` requirement would pull a multi-GB CUDA build. Set HIERA_VENV to use another venv.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${HIERA_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    echo "[run.sh] creating $VENV"
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
# pip here warns about every package missing from an extra local index; keep its real output only.
pip_install() { { "$PY" -m pip install -q "$@" 2>&1; } | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "[run.sh] installing torch==2.13.0"
    pip_install "torch==2.13.0"
fi
# Re-install the project only when its dependencies changed.
stamp="$VENV/.hiera-video-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "[run.sh] installing hiera-video and its dependencies into $VENV"
    pip_install -e ".[dev]"
    touch "$stamp"
fi
case "${1:-}" in
    test) shift; exec "$PY" -m pytest "$@" ;;
    *) exec "$PY" tools/demo.py "$@" ;;
esac
