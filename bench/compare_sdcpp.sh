#!/usr/bin/env bash
# compare_sdcpp.sh - gesso against stable-diffusion.cpp on one SD1.5 file and one job.
#
# Builds stable-diffusion.cpp (CPU backend) from source and runs both engines on
# the same random SD1.5 checkpoint with the same job: 512x512, euler, cfg 7, the
# same steps and seed, f32 compute. Prints both timings and the ratios
# (gesso / sd.cpp): wall time, per-step, VAE decode, peak RSS (GNU time).
#
# Usage: bench/compare_sdcpp.sh [MODEL.safetensors]
# Environment:
#   GESSO        gesso binary (default build/gesso)
#   SDCPP_SRC    stable-diffusion.cpp source tree (default: clone from GitHub)
#   GGML_SRC     ggml source tree for sd.cpp's ggml submodule, used when
#                SDCPP_SRC/ggml is empty (default: the submodule's commit, cloned)
#   WORK         scratch directory (default /tmp/gesso-sdcpp)
#   STEPS SEED THREADS WIDTH HEIGHT   the job (defaults 3, 42, nproc, 512, 512)
#   SDCPP_TYPE   sd.cpp weight type (--type), default f32 (the weights are
#                converted on load, so both engines compute in f32)
#   ROUNDS       runs of each engine, alternated A/B (default 1)
#   JOBS         build parallelism (default 2; the build runs under nice -n 19)
# The model defaults to $WORK/sd15-random-f16.safetensors, made by
# `gesso models init-random` when missing. CI never runs this script: it needs
# the network (or the source trees) and tens of minutes to build sd.cpp.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
GESSO=${GESSO:-$here/build/gesso}
WORK=${WORK:-/tmp/gesso-sdcpp}
STEPS=${STEPS:-3}
SEED=${SEED:-42}
THREADS=${THREADS:-$(nproc)}
WIDTH=${WIDTH:-512}
HEIGHT=${HEIGHT:-512}
SDCPP_TYPE=${SDCPP_TYPE:-f32}
ROUNDS=${ROUNDS:-1}
JOBS=${JOBS:-2}
PROMPT="a photograph of an astronaut riding a horse"
mkdir -p "$WORK"
MODEL=${1:-$WORK/sd15-random-f16.safetensors}

log() { printf '== %s\n' "$*" >&2; }

# --- sources -----------------------------------------------------------------
src=$WORK/sdcpp-src
if [ -n "${SDCPP_SRC:-}" ]; then
    src=$SDCPP_SRC
elif [ ! -f "$src/CMakeLists.txt" ]; then
    log "cloning stable-diffusion.cpp"
    git clone --depth 1 https://github.com/leejet/stable-diffusion.cpp "$src"
fi
if [ ! -f "$src/ggml/CMakeLists.txt" ]; then
    if [ -n "${GGML_SRC:-}" ]; then
        rm -rf "$src/ggml"
        cp -a "$GGML_SRC" "$src/ggml"
    else
        log "fetching the ggml submodule"
        git -C "$src" submodule update --init --depth 1 ggml
    fi
fi

# Snapshots of sd.cpp may lack its large tokenizer headers. SD1.5 needs only
# the CLIP merges, which this repository ships (data/clip, the same OpenAI
# file); the other tokenizers get empty stand-ins so vocab.cpp still compiles.
vocab=$src/src/tokenizers/vocab
if [ -f "$vocab/vocab.cpp" ]; then
    if [ ! -s "$vocab/clip_merges.hpp" ]; then
        log "regenerating clip_merges.hpp from data/clip"
        {
            echo "static const unsigned char clip_merges_utf8_c_str[] = {"
            gzip -dc "$here/data/clip/bpe_simple_vocab_16e6.txt.gz" | xxd -i
            echo "};"
        } >"$vocab/clip_merges.hpp"
    fi
    missing=()
    for h in $(sed -n 's/^#include "\(.*\.hpp\)"/\1/p' "$vocab/vocab.cpp"); do
        [ -e "$vocab/$h" ] || missing+=("$h") # an empty one is an earlier stand-in
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "stand-ins for missing tokenizer headers: ${missing[*]}"
        for h in "${missing[@]}"; do : >"$vocab/$h"; done
        defined=$(cat "$vocab"/*.hpp | sed -n 's/.* \([A-Za-z0-9_]\+\)\[\] *=.*/\1/p')
        for sym in $(grep -o '(\([a-z0-9_]*_str\))' "$vocab/vocab.cpp" | tr -d '()' | sort -u); do
            grep -qx "$sym" <<<"$defined" ||
                echo "static const unsigned char $sym[] = {0};" >>"$vocab/${missing[0]}"
        done
    fi
fi

# --- build ---------------------------------------------------------------------
bld=$WORK/sdcpp-build
sd=$bld/bin/sd-cli
if [ ! -x "$sd" ]; then
    log "building stable-diffusion.cpp (nice -n 19, -j$JOBS)"
    nice -n 19 cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=Release -DSD_WEBP=OFF -DSD_WEBM=OFF \
        -DGGML_NATIVE=ON -DSD_BUILD_EXAMPLES=ON >"$WORK/sdcpp-cmake.log"
    nice -n 19 cmake --build "$bld" -j"$JOBS" --target sd-cli >"$WORK/sdcpp-build.log"
fi
[ -x "$GESSO" ] || { echo "no gesso binary at $GESSO" >&2; exit 1; }
if [ ! -f "$MODEL" ]; then
    log "making a random SD1.5 checkpoint at $MODEL"
    "$GESSO" models init-random --arch sd15 --dtype f16 --output "$MODEL"
fi

# --- runs ----------------------------------------------------------------------
# One run of each engine, under GNU time for the peak RSS. Per-step and VAE
# times come from each engine's own log: gesso bench's JSON, sd.cpp's verbose
# lines ("sampling completed, taking X s", "decode_first_stage completed").
run_gesso() {
    /usr/bin/time -f '%e %M' -o "$WORK/g.time" "$GESSO" bench --model "$MODEL" --width "$WIDTH" \
        --height "$HEIGHT" --steps "$STEPS" --cfg-scale 7 --sampler euler --threads "$THREADS" \
        --precision f32 --one-shot --json >"$WORK/g.json"
    python3 - "$WORK/g.json" "$WORK/g.time" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1])); wall, rss = open(sys.argv[2]).read().split()
# per step as sd.cpp reports it: all sampling over the steps, the first included
print(wall, j["sampling_s"] / j["steps"], j["vae_decode_s"], float(rss) / 1024, j["gemm_gflops"],
      j.get("step_gemm_s", 0), j.get("step_conv_aux_s", 0), j.get("step_other_s", 0))
EOF
}
run_sdcpp() {
    /usr/bin/time -f '%e %M' -o "$WORK/s.time" "$sd" -m "$MODEL" -p "$PROMPT" -n "" -W "$WIDTH" \
        -H "$HEIGHT" --steps "$STEPS" --cfg-scale 7 --sampling-method euler -s "$SEED" \
        -t "$THREADS" --type "$SDCPP_TYPE" -o "$WORK/sdcpp.png" -v >"$WORK/s.log" 2>&1
    python3 - "$WORK/s.log" "$WORK/s.time" "$STEPS" <<'EOF'
import re, sys
log = open(sys.argv[1], errors="replace").read(); wall, rss = open(sys.argv[2]).read().split()
steps = int(sys.argv[3])
m = re.search(r"sampling completed, taking ([0-9.]+)s", log)
d = re.search(r"decode_first_stage completed, taking ([0-9.]+)s", log)
# sd.cpp's sampling time covers every step (no warm-up is set apart)
print(wall, float(m.group(1)) / steps if m else 0, d.group(1) if d else 0, float(rss) / 1024)
EOF
}

echo "machine   $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
echo "job       ${WIDTH}x$HEIGHT, euler, cfg 7, $STEPS steps, seed $SEED, $THREADS threads, f32"
echo "model     $MODEL"
echo "sd.cpp    $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown), --type $SDCPP_TYPE"
for r in $(seq 1 "$ROUNDS"); do
    # alternate the order so neither engine always runs on the warmer machine
    if [ $((r % 2)) -eq 1 ]; then
        g=$(run_gesso)
        s=$(run_sdcpp)
    else
        s=$(run_sdcpp)
        g=$(run_gesso)
    fi
    read -r gw gs gv gr rate gg ga go <<<"$g"
    read -r sw ss sv sr <<<"$s"
    echo "round $r  (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    printf '  %-12s %10s %10s %10s\n' "" gesso sd.cpp ratio
    awk -v a="$gw" -v b="$sw" 'BEGIN{printf "  %-12s %9.2fs %9.2fs %10.2f\n","wall",a,b,(b>0?a/b:0)}'
    awk -v a="$gs" -v b="$ss" 'BEGIN{printf "  %-12s %9.2fs %9.2fs %10.2f\n","per step",a,b,(b>0?a/b:0)}'
    awk -v a="$gv" -v b="$sv" 'BEGIN{printf "  %-12s %9.2fs %9.2fs %10.2f\n","vae decode",a,b,(b>0?a/b:0)}'
    awk -v a="$gr" -v b="$sr" 'BEGIN{printf "  %-12s %8.0fMB %8.0fMB %10.2f\n","peak RSS",a,b,(b>0?a/b:0)}'
    echo "  gesso: GEMM probe $rate GFLOP/s; mean step after warm-up: GEMM ${gg}s, conv" \
        "gathers/transforms ${ga}s, rest ${go}s"
done
