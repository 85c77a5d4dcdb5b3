#!/usr/bin/env bash
# Runs a libFuzzer harness of tests/fuzz: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
# TARGET is a folder of tests/fuzz/corpus (safetensors, layout, lora, image, job_json, http, yaml,
# prompt), or "all" for each in turn. Builds build-fuzz/ (clang, ASan+UBSan) on first use.
# New inputs go to build-fuzz/corpus/TARGET (the seeds in tests/fuzz/corpus stay as they are),
# crash files to build-fuzz/crashes/. Exits non-zero when a harness crashed or a run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer flags...]" >&2
  exit 2
fi
target=$1 seconds=$2
shift 2
all=$(ls tests/fuzz/corpus)
if [ "$target" = all ]; then
  targets=$all
elif [ -d "tests/fuzz/corpus/$target" ]; then
  targets=$target
else
  echo "fuzz.sh: no target '$target' (known: all $(echo $all))" >&2
  exit 2
fi

if [ ! -f build-fuzz/CMakeCache.txt ]; then
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DGESSO_FUZZ=ON -DGESSO_TESTS=OFF \
    >/dev/null || exit 2
fi
build_targets=()
for t in $targets; do build_targets+=(--target "fuzz_$t"); done
cmake --build build-fuzz -j"$(nproc)" "${build_targets[@]}" >/dev/null || {
  echo "fuzz.sh: the build failed (cmake --build build-fuzz shows why)" >&2
  exit 2
}

mkdir -p build-fuzz/crashes
status=0
summary=""
for t in $targets; do
  mkdir -p "build-fuzz/corpus/$t"
  # the http harness's server keeps its store and blobs here; gone after the run
  tmp=$(mktemp -d)
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  echo "==== fuzz $t for ${seconds}s"
  TMPDIR=$tmp "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=30 \
    -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/crashes/$t-" "${dict[@]}" "$@" \
    "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" 2>&1 | tee "build-fuzz/fuzz-$t.log"
  rc=${PIPESTATUS[0]}
  rm -rf "$tmp"
  last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "build-fuzz/fuzz-$t.log" | tail -1)
  summary+="$(printf '%-12s rc=%-3s %s' "$t" "$rc" "$last")"$'\n'
  if [ "$rc" -ne 0 ]; then
    echo "fuzz.sh: $t failed (exit $rc); crash files: build-fuzz/crashes/$t-*" >&2
    status=1
  fi
done
echo "==== summary"
printf '%s' "$summary"
exit $status
