#!/usr/bin/env bash
# The GPU check in one command: bash bench/gpu_check.sh OUT [--dry-run] [--data-dir DIR] [--budget-s S] [--only JOBS]
# (see bench/gpu_check.py). PYTHON picks the interpreter (default: python3 on the PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
