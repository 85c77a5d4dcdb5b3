#!/usr/bin/env bash
# Compiles ignores_status.c with the project's flags and passes only when the
# compiler refuses it with an error for every gs_ call in it: GS_NODISCARD is
# on each of those declarations and the build turns the warning into an error.
# usage: check-nodiscard.sh CC SOURCE INCLUDE_DIR [FLAGS...]
set -uo pipefail
cc=$1 src=$2 inc=$3
shift 3
out=$("$cc" -std=c11 "$@" -I"$inc" -c "$src" -o /dev/null 2>&1)
rc=$?
if [ $rc -eq 0 ]; then
  echo "nodiscard: $src compiled, but it ignores statuses the build must refuse:"
  echo "$out"
  exit 1
fi
status=0
for fn in $(grep -oE '^\s+gs_[a-z0-9_]+\(' "$src" | tr -d ' (' | sort -u); do
  if ! grep -qE "error: ignoring return value of .$fn." <<<"$out"; then
    echo "nodiscard: no error for the ignored status of $fn (GS_NODISCARD missing?)"
    status=1
  fi
done
[ $status -eq 0 ] && echo "nodiscard: every ignored status in $(basename "$src") is an error"
[ $status -eq 0 ] || echo "$out"
exit $status
