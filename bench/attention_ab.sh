#!/usr/bin/env bash
# attention_ab.sh - the one-pass attention kernels of two revisions, A/B in one process.
#   [KERNEL=avx2|avx512|avx512-bf16] [AB_BIN=path] bench/attention_ab.sh OLD_REV [NEW_REV] [-- tokens width rounds causal]
# NEW_REV defaults to the working tree. Each revision's kernel sources (and the
# headers they include) are compiled from that revision and their symbols
# suffixed _A / _B, so both link into bench/attention_ab.c against BUILD's
# libgesso.a (default build-rel: the thread pool and op timers they call).
# Not part of CI; see bench/RESULTS.md sections 33 and 35.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: [KERNEL=avx2|avx512|avx512-bf16] bench/attention_ab.sh OLD_REV [NEW_REV] [-- args]}
shift
new=
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    new=$1
    shift
fi
[ "${1:-}" = "--" ] && shift
BUILD=${BUILD:-build-rel}
KERNEL=${KERNEL:-avx2}
case $KERNEL in
avx2) files="attention_avx2.c attention_pack.c" define=-DAB_AVX2 ;;
avx512) files="attention_fused.c attention_fused_bf16.c attention_pack.c" define=-DAB_FUSED_BF16=0 ;;
avx512-bf16) files="attention_fused.c attention_fused_bf16.c attention_pack.c" define=-DAB_FUSED_BF16=1 ;;
*) echo "KERNEL is avx2, avx512 or avx512-bf16" >&2 && exit 2 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags="-O3 -fno-trapping-math -fopenmp -Iinclude -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
for v in A B; do
    mkdir -p "$work/$v"
    rev=$old
    [ $v = B ] && rev=$new
    if [ -n "$rev" ]; then
        git archive "$rev" src | tar -x -C "$work/$v"
    else
        cp -r src "$work/$v/"
    fi
    objs=""
    for f in $files; do
        # shellcheck disable=SC2086
        gcc $flags -I"$work/$v/src" -c "$work/$v/src/compute/$f" -o "$work/$v/${f%.c}.o"
        objs="$objs $work/$v/${f%.c}.o"
    done
    # shellcheck disable=SC2086
    ld -r $objs -o "$work/$v/kernel.o"
    nm --defined-only -g "$work/$v/kernel.o" | awk -v s="_$v" '{print $3, $3 s}' >"$work/$v/names"
    objcopy --redefine-syms="$work/$v/names" "$work/$v/kernel.o"
done
# shellcheck disable=SC2086
gcc $flags -Isrc $define bench/attention_ab.c "$work/A/kernel.o" "$work/B/kernel.o" \
    -o "$work/attention_ab" "$BUILD/libgesso.a" -ldnnl -lm -lpthread
# AB_BIN=path keeps the driver (to run it under perf with its symbols)
[ -n "${AB_BIN:-}" ] && cp "$work/attention_ab" "$AB_BIN"
"$work/attention_ab" "$@"
