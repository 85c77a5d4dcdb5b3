#!/usr/bin/env bash
# Style gate: clang-format clean, and no calls from the banned list (curl's checksrc habit):
# unbounded or error-blind C library functions that have safer equivalents here.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
files=$(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c' 2>/dev/null)
[ -n "$files" ] || files=$(find src include tests bench -name '*.[ch]' 2>/dev/null)
if command -v clang-format >/dev/null; then
  if ! clang-format --dry-run -Werror $files 2>/dev/null; then
    echo "style: clang-format differences (run: clang-format -i <files>):"
    clang-format --dry-run $files 2>&1 | grep -E '^[^ ].*warning' | cut -d: -f1 | sort -u
    status=1
  fi
else
  echo "style: clang-format not installed, formatting not checked"
fi
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|atoi|atol|atof|gets|strtok|tmpnam)[[:space:]]*\('
if grep -nE "$banned" $files; then
  echo "style: banned calls above (use snprintf, memcpy with lengths, strtol/strtod, strtok_r)"
  status=1
fi
exit $status
