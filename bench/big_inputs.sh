#!/usr/bin/env bash
# What big init images cost the job service (issue 19's figures): N img2img
# jobs whose init PNG carries a CHUNK_MB private chunk (a careless client's
# metadata), then the size of jobs.db, the latency of GET /v1/jobs?limit=1000
# (alone and four at once, with the server's peak RSS) and of a status read.
# Usage: bash bench/big_inputs.sh GESSO_BINARY [N] [CHUNK_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
gesso=$(realpath "$1")
n=${2:-20}
chunk_mb=${3:-20}
work=$(mktemp -d /tmp/gesso-big-inputs-XXXXXX)
trap 'kill $srv 2>/dev/null; wait $srv 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/models"
ln -s "$PWD/tests/fixtures/tiny-sd15.safetensors" "$work/models/tiny.safetensors"

# the fixture init image with a private ancillary chunk after IHDR
python3 - "$PWD/tests/fixtures/init-img2img_euler_a.png" "$work/big.png" "$chunk_mb" <<'PY'
import os, struct, sys, zlib
src, dst, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
png = open(src, 'rb').read()
data = os.urandom(mb << 20)
chunk = struct.pack('>I', len(data)) + b'prVt' + data + struct.pack('>I', zlib.crc32(b'prVt' + data))
open(dst, 'wb').write(png[:33] + chunk + png[33:])
PY
{ printf '{"model":"tiny","prompt":"a harbour","steps":2,"width":64,"height":64,"strength":0.5,'
  printf '"init_image":"data:image/png;base64,'; base64 -w0 "$work/big.png"; printf '"}'; } > "$work/job.json"

nocap=() # older builds, to compare with, lack the store cap
"$gesso" serve --help | grep -q max-store-bytes && nocap=(--max-store-bytes 0)
"$gesso" serve --listen 127.0.0.1:0 --port-file "$work/port" --data "$work/data" \
  --models "$work/models" --workers 1 --threads 1 --max-body 64M --max-image 32M \
  "${nocap[@]}" 2>"$work/server.log" &
srv=$!
for _ in $(seq 200); do [ -s "$work/port" ] && break; sleep 0.05; done
base="http://127.0.0.1:$(cat "$work/port")"
for _ in $(seq 200); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.05; done

db_bytes() { cat "$work/data/jobs.db" "$work/data/jobs.db-wal" 2>/dev/null | wc -c; }
before=$(db_bytes)
t0=$(date +%s.%N)
for _ in $(seq "$n"); do
  id=$(curl -s -X POST "$base/v1/jobs" --data-binary @"$work/job.json" |
    sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p')
done
t1=$(date +%s.%N)
echo "submit: $n jobs of $(wc -c < "$work/job.json") bytes in $(echo "$t1 - $t0" | bc) s"
echo "jobs.db (+wal): $before -> $(db_bytes) bytes; results/: $(du -sb "$work/data/results" | cut -f1) bytes"
peak() { awk '/VmHWM/ {print $2}' "/proc/$srv/status"; }
echo "server peak RSS after the submits: $(peak) KiB"
while curl -s "$base/v1/jobs/$id" | grep -q '"status":"\(queued\|running\)"'; do sleep 0.1; done

ms() { curl -s -o /dev/null -w '%{time_total}\n' "$1" | awk '{printf "%.1f", $1 * 1000}'; }
printf 'GET /v1/jobs?limit=1000, 5 times (ms):'
for _ in 1 2 3 4 5; do printf ' %s' "$(ms "$base/v1/jobs?limit=1000")"; done
echo " ($(curl -s "$base/v1/jobs?limit=1000" | wc -c) bytes)"
printf 'GET /v1/jobs/ID, 5 times (ms):'
for _ in 1 2 3 4 5; do printf ' %s' "$(ms "$base/v1/jobs/$id")"; done
echo
t0=$(date +%s.%N)
lists=()
for _ in 1 2 3 4; do
  ms "$base/v1/jobs?limit=1000" > /dev/null &
  lists+=($!)
done
wait "${lists[@]}"
t1=$(date +%s.%N)
echo "4 lists at once: $(echo "($t1 - $t0) * 1000" | bc | cut -d. -f1) ms; server peak RSS $(peak) KiB"
