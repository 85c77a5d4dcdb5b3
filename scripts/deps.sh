#!/usr/bin/env bash
# Installs the Debian packages gesso builds and tests with (skips what is present).
set -euo pipefail
pkgs=(build-essential cmake pkg-config zlib1g-dev libjansson-dev libpng-dev libjpeg-dev
      libwebp-dev libdnnl-dev libunistring-dev libcmocka-dev libsqlite3-dev sqlite3 libpq-dev postgresql libmicrohttpd-dev
      libyaml-dev libcurl4-openssl-dev libpcre2-dev curl procps clang-format git
      clang libclang-rt-14-dev libomp-14-dev)  # the last three: scripts/fuzz.sh (libFuzzer)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The web page's browser test runs Chromium through Node (tests/browser): taken
# from Debian unless the machine already has them (e.g. Node from NodeSource,
# whose nodejs package conflicts with Debian's npm).
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
