#!/usr/bin/env bash
# Service overheads of `gesso serve` on loopback (issue 4's figures):
#  1. submit->start latency with a warm model and an idle worker (p50/p99 of
#     started_ms - created_ms over N jobs, as /v1/stats reports them);
#  2. status requests per second under wrk (GET /v1/jobs/ID);
#  3. resident memory of the idle server and worker.
# The model is the tiny test fixture: these figures are about the service, not
# the engine. Usage: bash bench/serve_bench.sh [BUILD_DIR] [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
jobs=${2:-200}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 2; }
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target gesso_cli >/dev/null
work=$(mktemp -d /tmp/gesso-serve-bench-XXXXXX)
trap 'kill $srv 2>/dev/null; wait $srv 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/models"
ln -s "$PWD/tests/fixtures/tiny-sd15.safetensors" "$work/models/tiny.safetensors"
"$build/gesso" serve --listen 127.0.0.1:0 --port-file "$work/port" --data "$work/data" \
  --models "$work/models" --workers 1 --threads 1 2>"$work/server.log" &
srv=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
base="http://127.0.0.1:$(cat "$work/port")"
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.05; done

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
worker=$(pgrep -P "$srv" | head -1)
sleep 1
echo "idle: server RSS $(rss_kb $srv) KiB, worker RSS $(rss_kb "$worker") KiB (no model loaded)"

job='{"model":"tiny","prompt":"a lighthouse","steps":1,"width":64,"height":64}'
id_of() { sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p'; }
wait_done() {
  while curl -s "$base/v1/jobs/$1" | grep -q '"status":"\(queued\|running\)"'; do sleep 0.005; done
}
first=$(curl -s -X POST "$base/v1/jobs" -d "$job" | id_of)   # loads the model
wait_done "$first"
echo "warm: worker RSS $(rss_kb "$worker") KiB (tiny model loaded)"
t0=$(date +%s.%N)
for _ in $(seq "$jobs"); do
  id=$(curl -s -X POST "$base/v1/jobs" -d "$job" | id_of)
  wait_done "$id"
done
t1=$(date +%s.%N)
echo "jobs: $jobs sequential 1-step 64x64 jobs in $(echo "$t1 - $t0" | bc) s"
echo "stats: $(curl -s "$base/v1/stats" | sed 's/.*"queue_wait_s":\({[^}]*}\).*/queue_wait_s \1/')"

echo "wrk: GET /v1/jobs/ID, 2 threads, 32 connections, 10 s"
wrk -t2 -c32 -d10s "$base/v1/jobs/$id" | grep -E "Requests/sec|Latency|requests in"
echo "wrk: GET /healthz, 2 threads, 32 connections, 10 s"
wrk -t2 -c32 -d10s "$base/healthz" | grep -E "Requests/sec|Latency"
echo "after load: server RSS $(rss_kb $srv) KiB"
