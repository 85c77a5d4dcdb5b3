#!/usr/bin/env bash
# Builds gesso with AddressSanitizer + UndefinedBehaviorSanitizer and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DGESSO_SANITIZE=ON
cmake --build build-test -j"$(nproc)"
# Two suites at a time: the service suites mostly wait on their servers, and
# the tests run OpenMP with passive waits (tests/CMakeLists.txt), so sharing
# the cores costs little.
status=0
ctest --test-dir build-test --output-on-failure -j"$(nproc)" || status=$?
# What did not run here (CPU features, tools): cmocka's skips and test_note_skip's lines.
log=build-test/Testing/Temporary/LastTest.log
skipped=$(grep -hE '^\[  SKIPPED \]|^SKIPPED: ' "$log" 2>/dev/null | sort -u || true)
if [ -n "$skipped" ]; then
  echo "skipped on this machine:"
  echo "$skipped" | sed 's/^/  /'
else
  echo "skipped on this machine: nothing"
fi
exit $status
