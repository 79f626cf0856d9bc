#!/usr/bin/env bash
# `make demo`: ingest real data shipped by Debian packages (mricron-data: the Colin27 T1 template with
# the AAL atlas; insighttoolkit5-examples: MR volumes and slices in NIfTI, MetaImage, NRRD and PNG)
# and by PyPI (retinalysis-vascx: fundus photographs), show the catalog, export it in the SA-Med2D-20M
# layout, fine-tune LiteMedSAM and compare the models in a leaderboard.
set -euo pipefail
cd "$(dirname "$0")/.."
medcat=${1:-.build/release/medcat}
demo=.deps/demo
rm -rf "$demo"
mkdir -p "$demo/raw"
data=$(pwd)/.deps/data

# Colin27 + AAL: a generic image/label pair, recognised as the colin27-aal manifest by folder name.
mkdir -p "$demo/raw/colin27-aal/images" "$demo/raw/colin27-aal/labels"
ln -s "$data/mricron/ch2.nii.gz" "$demo/raw/colin27-aal/images/colin27.nii.gz"
ln -s "$data/mricron/aal.nii.gz" "$demo/raw/colin27-aal/labels/colin27.nii.gz"

# Colour fundus photographs (retinalysis-vascx samples from CHASE-DB1, DRIVE and HRF) with model-made
# vessel and optic-disc masks: two generic image/mask folders over the same six photographs.
for set in vessels:retinal_vessel discs:optic_disc; do
    mkdir -p "$demo/fundus_${set%%:*}/images" "$demo/fundus_${set%%:*}/masks"
    for f in "$data"/vascx/rgb/*.png; do
        ln -s "$f" "$demo/fundus_${set%%:*}/images/$(basename "$f")"
        ln -s "$data/vascx/${set%%:*}/$(basename "$f")" "$demo/fundus_${set%%:*}/masks/$(basename "$f")"
    done
done

# ITK examples, each with its own manifest.
mkdir -p "$demo/itk-kmeans/images" "$demo/itk-kmeans/labels" "$demo/itk-slices/images" "$demo/itk-slices/masks"
ln -s "$data/itk/KmeansTest_T1UCharRaw.nii.gz" "$demo/itk-kmeans/images/t1.nii.gz"
ln -s "$data/itk/KmeansTest_T1RawSkullStrip.nii.gz" "$demo/itk-kmeans/labels/t1.nii.gz"
for f in BrainProtonDensitySliceBorder20.mhd BrainProtonDensitySliceBorder20.raw BrainProtonDensitySliceBorder20.png; do
    ln -s "$data/itk/$f" "$demo/itk-slices/images/$f"
done
cp "$data/itk/BrainProtonDensitySliceBorder20.nhdr" "$demo/itk-slices/images/nrrd_slice.nhdr"
sed -i "s|^data file: .*|data file: $data/itk/BrainProtonDensitySliceBorder20.raw|" "$demo/itk-slices/images/nrrd_slice.nhdr"
for stem in BrainProtonDensitySliceBorder20 nrrd_slice; do
    ln -s "$data/itk/BrainProtonDensitySliceBorder20Mask.png" "$demo/itk-slices/masks/$stem.png"
done
rm "$demo/itk-slices/images/BrainProtonDensitySliceBorder20.png"  # one picture per stem

cat="$demo/medcat.sqlite"
set -x
"$medcat" ingest "$demo/raw" --catalog "$cat"
"$medcat" ingest "$demo/fundus_vessels" --catalog "$cat" --modality fundus --class retinal_vessel --size 512
"$medcat" ingest "$demo/fundus_discs" --catalog "$cat" --modality fundus --class optic_disc --size 512
"$medcat" ingest "$demo/itk-kmeans" --catalog "$cat" --manifest tools/demo/itk-kmeans.yaml
"$medcat" ingest "$demo/itk-slices" --catalog "$cat" --manifest tools/demo/itk-brain-slices.yaml
"$medcat" ingest "$demo/raw" --catalog "$cat"   # again: nothing to do
"$medcat" catalog stats --catalog "$cat"
"$medcat" catalog query --catalog "$cat" --class hippocampus --limit 3
"$medcat" catalog errors --catalog "$cat"
"$medcat" export --catalog "$cat" --format sa-med2d --out "$demo/sa-med2d" --dataset colin27-aal --class hippocampus
# LiteMedSAM zero-shot against two short fine-tuning runs (a few minutes on a CPU), trained on MR
# brains (Colin27 + AAL, ITK's slices) and scored on held-out data: ITK's k-means T1 subject (MR) and
# the six fundus photographs (another modality, not trained on). The selection's first 36 images:
# the 12 fundus ones (ingested first), then 24 slices of the MR subject.
lite=.deps/data/lite_medsam.pth
protocols=(--protocol box --protocol points1 --protocol points3 --protocol clicks --clicks 3 --split test --limit 36)
"$medcat" catalog split --catalog "$cat" --dataset colin27-aal=train --dataset itk-brain-slices=train --dataset itk-kmeans=test \
    --dataset fundus_vessels=test --dataset fundus_discs=test
"$medcat" eval --catalog "$cat" --checkpoint "$lite" --name lite_medsam-zero-shot "${protocols[@]}"
"$medcat" train --catalog "$cat" --checkpoint "$lite" --out "$demo/finetune" --steps 8 --batch-size 2 --masks-per-image 4 \
    --click-passes 2 --val-split test --val-images 8
"$medcat" eval --catalog "$cat" --checkpoint "$demo/finetune/model-000008.safetensors" --name lite_medsam-fine-tuned "${protocols[@]}"
# The same run with LoRA (SAMed's light mode): encoder frozen, rank-4 updates of its attention.
"$medcat" train --catalog "$cat" --checkpoint "$lite" --out "$demo/lora" --steps 8 --batch-size 2 --masks-per-image 4 \
    --click-passes 2 --val-split test --val-images 8 --tune lora
"$medcat" eval --catalog "$cat" --checkpoint "$demo/lora/model-000008.safetensors" --name lite_medsam-lora "${protocols[@]}"
"$medcat" leaderboard --catalog "$cat" --out "$demo/report"
set +x
python3 - "$demo/report/leaderboard.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
print("held-out Dice by modality (first output): zero-shot -> fine-tuned (full | lora), Δ with its case-bootstrap interval and Holm p")
for t in report["tables"]:
    if t["level"] != "mask" or t["grouping"] != "modality" or t["metric"] != "dice" or t["variant"]["output"] != "first":
        continue
    for row in t["rows"]:
        cells = row["cells"]
        def show(c):
            if c is None or c.get("mean") is None:
                return "  –  "
            d = c.get("difference")
            if d is None:
                return f"{c['mean']:.3f}"
            interval = f" [{d['low']:+.3f}, {d['high']:+.3f}]" if d.get("low") is not None else ""
            p = f" p={d['p_holm']:.3f}" if d.get("p_holm") is not None else ""
            return f"{c['mean']:.3f} (Δ {d['mean']:+.3f}{interval}{p})"
        label = t["variant"]["proto"] + (f"@{t['variant']['step']}" if t["variant"]["step"] else "")
        print(f"  {label:10s} {row['group'][0]:8s} {row['cases']:2d} cases  " + " | ".join(show(c) for c in cells))
PY
echo "demo: catalog at $cat, SA-Med2D export at $demo/sa-med2d, leaderboard at $demo/report/leaderboard.html"
