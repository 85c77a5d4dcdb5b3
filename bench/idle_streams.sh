#!/usr/bin/env bash
# Server CPU while N Server-Sent Event streams watch a job queued behind a long one:
# what idle connections cost. Usage: bash bench/idle_streams.sh GESSO_BINARY [N]
# (takes any gesso build, old or new, so two can be compared in one sitting).
set -u
bin=$1; n=${2:-50}
work=$(mktemp -d); mkdir -p $work/models; ln -s $(cd "$(dirname "$0")/.." && pwd)/tests/fixtures/tiny-sd15.safetensors $work/models/tiny.safetensors
port=$((30000 + RANDOM % 20000))
$bin serve --listen 127.0.0.1:$port --data $work/data --models $work/models --workers 1 --threads 1 2>$work/log &
srv=$!
for _ in $(seq 100); do curl -sf localhost:$port/healthz >/dev/null && break; sleep 0.05; done
slow=$(curl -s -X POST localhost:$port/v1/jobs -d '{"model":"tiny","steps":150,"width":512,"height":512}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
q=$(curl -s -X POST localhost:$port/v1/jobs -d '{"model":"tiny","steps":1,"width":64,"height":64}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
pids=()
for i in $(seq $n); do curl -sN localhost:$port/v1/jobs/$q/events > /dev/null & pids+=($!); done
sleep 2
t0=$(awk '{print $14+$15}' /proc/$srv/stat)
sleep 10
t1=$(awk '{print $14+$15}' /proc/$srv/stat)
echo "$bin: $n idle streams, server CPU over 10 s: $(( (t1 - t0) * 10 )) ms"
kill ${pids[@]} 2>/dev/null; kill $srv; wait $srv 2>/dev/null; rm -rf $work
