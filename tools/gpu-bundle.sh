#!/usr/bin/env bash
# Builds what tools/gpu-check.sh runs on a GPU machine that has no Swift toolchain and no network:
# medcat-sam-bench linked with the Swift standard library statically, the Debian libraries it needs
# beside it (glibc and libtorch excepted: the machine has its own), and LiteMedSAM's weights.
# Output: .build/gpu-bundle (under 64 MiB). Usage: tools/gpu-bundle.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/gpu-bundle}
limit=$((64 * 1024 * 1024))

# A scratch folder of its own: the static standard library changes every module's link.
swift build -c release --static-swift-stdlib --product medcat-sam-bench --scratch-path .build-static >/dev/null
bin=.build-static/release/medcat-sam-bench
rm -rf "$out"; mkdir -p "$out/lib"
cp "$bin" "$out/medcat-sam-bench"
strip "$out/medcat-sam-bench"
# Every library the binary loads but glibc's own and libtorch's (taken from the machine's torch).
ldd "$bin" | awk '$3 ~ /^\// { print $1, $3 }' | while read -r name path; do
    case "$name" in
        libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libutil.so*|libresolv.so*|ld-linux*|libtorch*|libc10*|libgomp*|libcudart*|libcupti*) continue ;;
    esac
    cp -L "$path" "$out/lib/$name"
    strip --strip-unneeded "$out/lib/$name" 2>/dev/null || true
done
cp -L .deps/data/lite_medsam.pth "$out/lite_medsam.pth"
size=$(du -sb "$out" | cut -f1)
if [ "$size" -gt "$limit" ]; then
    # The binary and libraries compress well; the weights do not.
    xz -T0 -6 "$out/medcat-sam-bench" "$out"/lib/*
    size=$(du -sb "$out" | cut -f1)
fi
[ "$size" -le "$limit" ] || { echo "gpu-bundle: $out is $((size >> 20)) MiB, over 64 MiB" >&2; exit 1; }
echo "gpu-bundle: $out, $((size >> 20)) MiB ($(ls "$out/lib" | wc -l) libraries)"
