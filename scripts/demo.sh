#!/usr/bin/env bash
# Builds gesso (Release) and generates an image with the bundled test model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
mkdir -p out
./build/gesso generate --model tests/fixtures/tiny-sd15.safetensors \
  --prompt "A lighthouse at dusk, oil painting, highly detailed" --negative-prompt "blurry" \
  --seed 42 --steps 8 --cfg-scale 7 --sampler euler --width 64 --height 64 \
  --output out/lighthouse.png
echo "wrote out/lighthouse.png (the bundled model is a tiny random-weight test model)"
