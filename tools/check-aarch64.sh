#!/usr/bin/env bash
# Compiles every native source for aarch64 (objects only: Debian has no arm64 libdnnl to link on an
# x86 machine), proving the x86-only parts stay behind their guards. Needs g++-aarch64-linux-gnu.
set -euo pipefail
cd "$(dirname "$0")/../native"
napi=$(node -p "require('node-addon-api').include_dir")
out=$(mktemp -d)
for f in src/*.cc; do
  aarch64-linux-gnu-g++ -std=c++17 -O3 -fopenmp -fno-math-errno -fno-trapping-math -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS \
    -I/usr/include/node -I"$napi" -I/usr/include -c "$f" -o "$out/$(basename "$f").o"
done
echo "aarch64: $(ls "$out" | wc -l) native sources compiled"
