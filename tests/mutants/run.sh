#!/usr/bin/env bash
# Applies each tests/mutants/*.patch to a scratch copy of the tree, builds, and
# runs the test its "# test:" line names: the mutant must make that test fail.
# Opt-in (not in CI): bash tests/mutants/run.sh [PATCH...]
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
patches=("$@")
[ ${#patches[@]} -gt 0 ] || patches=(tests/mutants/*.patch)
work=$(mktemp -d /tmp/gesso-mutants-XXXXXX)
trap 'rm -rf "$work"' EXIT
git worktree add -q --detach "$work/tree" HEAD
cp -r tests/fixtures/. "$work/tree/tests/fixtures/" 2>/dev/null
status=0
for p in "${patches[@]}"; do
  test=$(sed -n 's/^# test: *//p' "$p" | head -1)
  (cd "$work/tree" && git checkout -q -- . && git apply "$root/$p") || { echo "$p: does not apply"; status=1; continue; }
  cmake -S "$work/tree" -B "$work/build" -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build "$work/build" -j"$(nproc)" >/dev/null 2>&1 || { echo "$p: does not build"; status=1; continue; }
  # a mutant may leave processes behind (one plants orphaned workers): end them
  # with the run, or they hold ctest's output pipe open
  ctest --test-dir "$work/build" -R "^$test\$" --timeout 900 >/dev/null 2>&1 &
  ctest_pid=$!
  while kill -0 $ctest_pid 2>/dev/null && pgrep -f "$work/build/tests/$test" >/dev/null; do sleep 1; done
  sleep 2
  pkill -9 -f "$work/build/gesso" 2>/dev/null
  if wait $ctest_pid; then
    echo "SURVIVED $p ($test passed)"; status=1
  else
    echo "killed   $p ($test failed)"
  fi
done
git worktree remove --force "$work/tree"
exit $status
