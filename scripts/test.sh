#!/usr/bin/env bash
# Builds gesso with AddressSanitizer + UndefinedBehaviorSanitizer and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DGESSO_SANITIZE=ON
cmake --build build-test -j"$(nproc)"
# One test at a time: each test already uses every core (OpenMP), and two at
# once oversubscribe the CPUs and run several times slower.
ctest --test-dir build-test --output-on-failure
