#!/usr/bin/env bash
# medcat on a CUDA GPU, from a bundle (tools/gpu-bundle.sh) and the machine's own PyTorch: no Swift
# toolchain, no network. Prints, in under 8 minutes on one GPU:
#   - forward parity on the GPU of the small ViT SAM and of LiteMedSAM against the CPU reference
#     outputs in Tests/SAMTests/Fixtures;
#   - one AdamW step in fp32 and in bf16 autocast (loss, weights kept in fp32);
#   - a one-process NCCL group's all-reduce;
#   - LiteMedSAM inference images/s; vit_b at 1024 px fine-tuning steps (images/s, peak GPU
#     memory), with and without activation checkpointing.
# Exits 0 when every check passes, 1 when one fails, 2 when there is no usable GPU. Each check has
# a time limit; together they come to 8 minutes.
#
# Usage: tools/gpu-check.sh [--cpu]   (--cpu: the same checks on the CPU, small; a dry run)
#   MEDCAT_GPU_BUNDLE  the bundle (default .build/gpu-bundle)
#   MEDCAT_TORCH_LIB   libtorch's folder (default: torch/lib of /opt/torch/.venv's Python, else python3's)
set -uo pipefail
cd "$(dirname "$0")/.."
device=cuda; quick=0
[ "${1:-}" = "--cpu" ] && { device=cpu; quick=1; }
bundle=${MEDCAT_GPU_BUNDLE:-.build/gpu-bundle}
fixtures=Tests/SAMTests/Fixtures
say() { printf '%s\n' "$*"; }
fail() { say "gpu-check: $*" >&2; exit 2; }

[ -e "$bundle/medcat-sam-bench" ] || [ -e "$bundle/medcat-sam-bench.xz" ] || fail "no bundle at $bundle (make it with tools/gpu-bundle.sh where Swift is)"
if [ -e "$bundle/medcat-sam-bench.xz" ]; then  # compressed by gpu-bundle.sh: unpacked into a scratch folder
    unpacked=$(mktemp -d); trap 'rm -rf "$unpacked"' EXIT
    mkdir -p "$unpacked/lib"
    unxz_to() { python3 -c "import lzma, sys; open(sys.argv[2], 'wb').write(lzma.open(sys.argv[1]).read())" "$1" "$2"; }  # xz-utils may be absent
    unxz_to "$bundle/medcat-sam-bench.xz" "$unpacked/medcat-sam-bench"
    for f in "$bundle"/lib/*.xz; do unxz_to "$f" "$unpacked/lib/$(basename "$f" .xz)"; done
    chmod +x "$unpacked/medcat-sam-bench"
    bin=$unpacked/medcat-sam-bench; libs=$unpacked/lib
else
    bin=$bundle/medcat-sam-bench; libs=$bundle/lib
fi
weights=${MEDCAT_LITE_MEDSAM:-$bundle/lite_medsam.pth}
[ -e "$weights" ] || fail "no LiteMedSAM weights at $weights"

torch_lib=${MEDCAT_TORCH_LIB:-}
if [ -z "$torch_lib" ]; then
    for py in /opt/torch/.venv/bin/python python3; do
        torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) && break
    done
fi
[ -n "$torch_lib" ] && [ -e "$torch_lib/libtorch_cpu.so" ] || fail "no libtorch found (set MEDCAT_TORCH_LIB to torch's lib folder)"
export LD_LIBRARY_PATH="$libs:$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
threads=$(nproc)

run() {  # $1 seconds, $2… arguments of medcat-sam-bench; prints its JSON line, or its error on stderr and returns 1
    local out
    if out=$(timeout "$1" "$bin" "${@:2}" 2>&1); then printf '%s\n' "$out" | tail -n 1; return 0; fi
    say "FAIL $2: $(printf '%s\n' "${out:-timed out after $1 s}" | tail -n 3)" >&2
    return 1
}

say "== gpu-check: medcat-sam-bench from $bundle, libtorch from $torch_lib, device $device"
probe=$(run 60 device "$device") || fail "no usable $device device (the reason is above)"
say "device: $probe"
failures=0
check() {  # $1 description, $2 JSON, $3 Python condition on `r`
    if python3 -c "import json, sys; r = json.loads(sys.argv[1]); sys.exit(0 if ($3) else 1)" "$2" 2>/dev/null; then say "PASS $1: $2"
    else say "FAIL $1: $2"; failures=$((failures + 1)); fi
}

# On the CPU the outputs equal the references to 1e-4; on a GPU convolutions may run in TF32.
tolerance=$([ "$device" = cpu ] && echo 1e-4 || echo 1e-2)
if r=$(run 90 parity "$fixtures" "$weights" "$device"); then
    check "forward parity against the CPU references (tolerance $tolerance)" "$r" \
        "max(r['small_vit_embedding'], r['small_vit_box_masks'], r['lite_medsam_logits']) < $tolerance"
else failures=$((failures + 1)); fi

steps_done=()
for precision in fp32 bf16; do
    if r=$(run 45 one-step "$device" "$precision" "$fixtures"); then
        check "one training step, $precision" "$r" "r['weight_dtypes'] == 'f32' and 0 < r['largest_weight_change'] < 0.01 and r['loss'] == r['loss']"
        steps_done+=("\"$precision\": $r")
    else failures=$((failures + 1)); fi
done
if [ ${#steps_done[@]} = 2 ]; then
    check "bf16 loss within 2% of fp32's" "{${steps_done[0]}, ${steps_done[1]}}" "abs(r['fp32']['loss'] - r['bf16']['loss']) <= 0.02 * abs(r['fp32']['loss'])"
fi

iters=$([ $quick = 1 ] && echo 2 || echo 50)
if r=$(run 60 lite-infer "$weights" "$iters" "$threads" "$device"); then say "LiteMedSAM inference: $r"; else failures=$((failures + 1)); fi

size=$([ $quick = 1 ] && echo 256 || echo 1024); steps=$([ $quick = 1 ] && echo 1 || echo 10)
precision=$([ "$device" = cpu ] && echo fp32 || echo bf16)
for mode in plain checkpointed; do
    if r=$(run 90 train-vitb "$size" 1 "$steps" "$threads" "$device" "$precision" "$mode"); then
        say "vit_b at $size px, batch 1, $precision, $mode activations, fine-tuning step: $r"
    else failures=$((failures + 1)); fi
done

if [ "$failures" -gt 0 ]; then say "gpu-check: $failures check(s) failed"; exit 1; fi
say "gpu-check: all checks passed"
