#!/usr/bin/env bash
# Soak test of `gesso serve` (issue 16): builds gesso, then runs bench/soak.py (its docstring
# says what it does and checks) with the tiny test model under nice -n 19. Not part of CI.
# Usage: bash bench/soak.sh [JOBS] [SECONDS]   (defaults 2000 and 900; BUILD=dir, SEED=k)
# Exit status: the number of failed checks (0: all passed). RETENTION=S runs the server with
# --retention S during the load (a bounded store: the strict memory rule; see soak.py).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-2000}
seconds=${2:-900}
build=${BUILD:-build-soak}
nice -n 19 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
nice -n 19 cmake --build "$build" -j2 --target gesso_cli >/dev/null
ulimit -n 4096 2>/dev/null || true
echo "soak: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include || echo '+changes'), $jobs jobs, at most $seconds s, $(nproc) CPUs, $(date -u +%FT%TZ)"
exec nice -n 19 python3 bench/soak.py "$build/gesso" tests/fixtures/tiny-sd15.safetensors \
  --jobs "$jobs" --seconds "$seconds" --seed "${SEED:-1}" --retention "${RETENTION:-0}" ${KEEP:+--keep}
