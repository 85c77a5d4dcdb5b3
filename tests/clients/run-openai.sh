#!/usr/bin/env bash
# The official `openai` npm client against a real `gesso serve` (ctest runs
# it: run-openai.sh GESSO_BINARY). Installs the pinned client with `npm ci`
# when tests/clients/node_modules lacks it: without npm or the registry the
# test fails, it never skips.
set -euo pipefail
gesso=$1
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if [ ! -f node_modules/openai/package.json ]; then
  npm ci --no-audit --no-fund
fi
work=$(mktemp -d /tmp/gesso-clients-XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/models"
ln -s "$here/../fixtures/tiny-sd15.safetensors" "$work/models/tiny-sd15.safetensors"
key=gesso-client-test-key-0123456789
echo "$key client-test" > "$work/keys"
"$gesso" serve --listen 127.0.0.1:0 --port-file "$work/port" --data "$work/data" \
  --models "$work/models" --workers 1 --threads 2 --api-keys "$work/keys" 2>"$work/server.log" &
pid=$!
for _ in $(seq 600); do
  [ -s "$work/port" ] && curl -sf "http://127.0.0.1:$(cat "$work/port")/healthz" >/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
[ -s "$work/port" ] || { echo "the server did not come up"; cat "$work/server.log"; exit 1; }
status=0
GESSO_URL="http://127.0.0.1:$(cat "$work/port")" GESSO_KEY=$key node openai.test.mjs || status=$?
[ $status -eq 0 ] || tail -20 "$work/server.log"
exit $status
