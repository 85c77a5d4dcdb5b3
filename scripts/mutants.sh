#!/usr/bin/env bash
# The mutation check: every planted bug in tests/mutants/ must make its test fail.
#   bash scripts/mutants.sh [PATCH...]     (all of them by default; on demand, not in CI)
# Applies each patch to a scratch worktree, builds, runs the suite its "# test:" line
# names (tests/mutants/run.sh does the work) and prints a table of caught and missed,
# the form tests/README.md keeps. Exits 1 when any mutant is missed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
bash tests/mutants/run.sh "$@" | tee "$out"
echo
echo "| mutant | test | result |"
echo "|---|---|---|"
sed -nE 's/^killed +tests\/mutants\/([^ ]+)\.patch \(([^ ]+) failed\)/| \1 | \2 | caught |/p;
         s/^SURVIVED tests\/mutants\/([^ ]+)\.patch \(([^ ]+) passed\)/| \1 | \2 | **missed** |/p;
         s/^tests\/mutants\/([^ ]+)\.patch: (.*)/| \1 | | \2 |/p' "$out"
! grep -qE '^(SURVIVED|tests/mutants/.*: does not)' "$out"
