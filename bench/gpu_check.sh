#!/usr/bin/env bash
# One timed check of the whole method on this machine (GPU or not): bench/gpu_check.sh BUDGET [options].
# BUDGET: seconds (600, 600s) or minutes (10m). Options and the JSON it writes: bench/gpu_check.py.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$([ -x "$repo/.venv/bin/python" ] && echo "$repo/.venv/bin/python" || echo python3)}"
exec "$python" "$repo/bench/gpu_check.py" "$@"
