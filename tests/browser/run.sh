#!/usr/bin/env bash
# Drives gesso's web page in Debian's Chromium (puppeteer-core from npm):
#   bash tests/browser/run.sh GESSO_BINARY MODEL.safetensors OUT_DIR
# Starts a real `gesso serve` on 127.0.0.1 with the model and a LoRA folder
# holding the fixture LoRA tiny_a (tests/fixtures/lora), runs
# web_page.test.mjs against it, keeps a screenshot in OUT_DIR. A missing
# Chromium, Node or npm package is a failure, never a skip.
set -euo pipefail
gesso=$(realpath "$1") model=$(realpath "$2") out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$chromium" ] || { echo "web page test: chromium is not installed (scripts/deps.sh installs it)"; exit 1; }
command -v node >/dev/null || { echo "web page test: node is not installed"; exit 1; }
if [ ! -d "$here/node_modules/puppeteer-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
tmp=$(mktemp -d /tmp/gesso-web-XXXXXX)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/models" "$tmp/loras"
ln -s "$model" "$tmp/models/tiny-sd15.safetensors"
ln -s "$here/../fixtures/lora/tiny_a.safetensors" "$tmp/loras/tiny_a.safetensors"
"$gesso" serve --listen 127.0.0.1:0 --port-file "$tmp/port" --data "$tmp/data" \
  --models "$tmp/models" --lora-dir "$tmp/loras" --workers 1 --threads 2 2>"$out/web-page-server.log" &
server=$!
for _ in $(seq 600); do
  [ -s "$tmp/port" ] && curl -sf "http://127.0.0.1:$(cat "$tmp/port")/healthz" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "the server exited (see $out/web-page-server.log)"; exit 1; }
  sleep 0.1
done
CHROMIUM="$chromium" node "$here/web_page.test.mjs" "http://127.0.0.1:$(cat "$tmp/port")" "$out" \
  "$(realpath "$here/../fixtures/init-img2img_euler_a.png")"
