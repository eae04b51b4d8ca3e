#!/usr/bin/env bash
# The GPU check in one command: bash bench/gpu_check.sh OUT [--dry-run] [--data-dir DIR] [--budget-s S] [--only JOBS]
# (see bench/gpu_check.py). PYTHON picks the interpreter (default: python3 on the PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
# The package must be installed (-P: not found in the current folder, where `python -c` would look first).
"${PYTHON:-python3}" -P -c "import dashboard_lib" 2>/dev/null || {
  echo "bench/gpu_check.sh: the package is not installed: make install (or, with the requirements already there," \
       "pip install --no-deps --no-build-isolation -e .)" >&2
  exit 2
}
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
