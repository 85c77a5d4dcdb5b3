#!/usr/bin/env bash
# attention_ab.sh - the AVX2 attention kernel of two revisions, A/B in one process.
#   bench/attention_ab.sh OLD_REV [NEW_REV] [-- tokens width rounds causal]
# NEW_REV defaults to the working tree. Both kernels link against BUILD's
# libgesso.a (default build-rel, a Release build of the newer tree: the helpers
# they call must be there). Not part of CI; see bench/RESULTS.md section 33.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/attention_ab.sh OLD_REV [NEW_REV] [-- args]}
shift
new=
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    new=$1
    shift
fi
[ "${1:-}" = "--" ] && shift
BUILD=${BUILD:-build-rel}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git show "$old:src/compute/attention_avx2.c" >"$work/a.c"
if [ -n "$new" ]; then git show "$new:src/compute/attention_avx2.c" >"$work/b.c"; else cp src/compute/attention_avx2.c "$work/b.c"; fi
flags="-O3 -fno-trapping-math -fopenmp -Isrc -Iinclude -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
for v in A B; do
    src=$work/a.c
    [ $v = B ] && src=$work/b.c
    names=""
    for s in attention_avx2 attention_avx2_available attention_avx2_handles attention_avx2_scratch_floats; do
        names="$names -D$s=${s}_$v"
    done
    # shellcheck disable=SC2086
    gcc $flags $names -c "$src" -o "$work/$v.o"
done
# shellcheck disable=SC2086
gcc $flags bench/attention_ab.c "$work/A.o" "$work/B.o" -o "$work/attention_ab" "$BUILD/libgesso.a" -ldnnl -lm -lpthread
"$work/attention_ab" "$@"
