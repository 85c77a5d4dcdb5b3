#!/usr/bin/env bash
# Runs tools/rename_internal_prefix.sh on a scratch copy of the sources, twice:
# the first run must leave no gs_ identifier that include/gesso.h does not
# declare (so the script's map covers every internal that still has the public
# prefix, and once the rename is applied, no new one may take it), and the
# second must change nothing.
# usage: check-internal-prefix.sh REPO_ROOT
set -euo pipefail
root=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && tar --exclude='*.safetensors' --exclude='*.png' --exclude=node_modules -cf - src tests bench include tools) |
  tar -xf - -C "$tmp"
bash "$tmp/tools/rename_internal_prefix.sh" "$tmp" >"$tmp/first.log" 2>&1 || {
  cat "$tmp/first.log"
  exit 1
}
tail -1 "$tmp/first.log"
bash "$tmp/tools/rename_internal_prefix.sh" "$tmp" >"$tmp/second.log" 2>&1
if ! grep -q 'nothing to do' "$tmp/second.log"; then
  echo "internal prefix: a second run changed something (not idempotent):"
  cat "$tmp/second.log"
  exit 1
fi
echo "internal prefix: the rename is complete and idempotent"
