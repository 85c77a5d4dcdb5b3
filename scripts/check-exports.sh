#!/usr/bin/env bash
# ABI gate for a shared libgesso: the dynamic symbols it defines are exactly
# the functions include/gesso.h declares with GS_API. An internal function that
# leaks out (a missing -fvisibility=hidden, a stray visibility attribute) would
# become something embedders can link against and we could never change; a
# GS_API function that is not exported would fail embedders at link time.
# usage: check-exports.sh LIBGESSO.so GESSO.h [NM]
set -uo pipefail
lib=$1 header=$2 nm=${3:-nm}
[ -f "$lib" ] || { echo "exports: no library at $lib"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# T/D/B/R/W/i...: every defined dynamic symbol, whatever its kind
"$nm" -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/exported"
# the identifier just before the first '(' of each GS_API declaration
grep -E '^GS_API ' "$header" | sed -E 's/\(.*//; s/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*$/\1/' |
  sort -u >"$tmp/declared"
status=0
bare=$(grep -E '^[A-Za-z_][^(]*[^A-Za-z0-9_]gs_[A-Za-z0-9_]*[[:space:]]*\(' "$header" | grep -vE '^(GS_API|typedef) ')
if [ -n "$bare" ]; then
  echo "exports: public functions declared without GS_API in $(basename "$header"):"
  echo "$bare" | sed 's/^/  /'
  status=1
fi
if [ ! -s "$tmp/declared" ]; then
  echo "exports: found no GS_API declarations in $header"
  exit 1
fi
bad=$(grep -v '^gs_' "$tmp/exported")
if [ -n "$bad" ]; then
  echo "exports: symbols without the gs_ prefix are exported from $lib:"
  echo "$bad" | sed 's/^/  /'
  status=1
fi
extra=$(comm -23 "$tmp/exported" "$tmp/declared")
if [ -n "$extra" ]; then
  echo "exports: exported but not declared GS_API in $(basename "$header"):"
  echo "$extra" | sed 's/^/  /'
  status=1
fi
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
if [ -n "$missing" ]; then
  echo "exports: declared GS_API but not exported:"
  echo "$missing" | sed 's/^/  /'
  status=1
fi
[ $status -eq 0 ] && echo "exports: $(wc -l <"$tmp/exported") symbols, all declared GS_API in $(basename "$header")"
exit $status
