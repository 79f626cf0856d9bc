#!/usr/bin/env bash
# `make demo`: ingest real data shipped by Debian packages (mricron-data: the Colin27 T1 template with
# the AAL atlas; insighttoolkit5-examples: MR volumes and slices in NIfTI, MetaImage, NRRD and PNG),
# then show the catalog and export it in the SA-Med2D-20M layout.
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
"$medcat" ingest "$demo/itk-kmeans" --catalog "$cat" --manifest tools/demo/itk-kmeans.yaml
"$medcat" ingest "$demo/itk-slices" --catalog "$cat" --manifest tools/demo/itk-brain-slices.yaml
"$medcat" ingest "$demo/raw" --catalog "$cat"   # again: nothing to do
"$medcat" catalog stats --catalog "$cat"
"$medcat" catalog query --catalog "$cat" --class hippocampus --limit 3
"$medcat" catalog errors --catalog "$cat"
"$medcat" export --catalog "$cat" --format sa-med2d --out "$demo/sa-med2d" --dataset colin27-aal --class hippocampus
# First example: LiteMedSAM zero-shot against a short fine-tuning run (a few minutes on a CPU),
# scored on a held-out subject: train on Colin27 + AAL, test on ITK's k-means T1 subject.
lite=.deps/data/lite_medsam.pth
protocols=(--protocol box --protocol points1 --protocol clicks --clicks 3 --split test --limit 24)
"$medcat" catalog split --catalog "$cat" --dataset colin27-aal=train --dataset itk-brain-slices=train --dataset itk-kmeans=test
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
rows = {}
for e in report["entries"]:
    if e["level"] == "mask" and e["variant"]["output"] == "first":
        g = next(g for g in e["groups"] if g["kind"] == "overall")
        rows.setdefault(e["variant"]["proto"], {})[e["run"]] = g["dice"]["mean"]
print("held-out Dice (ITK k-means subject, first output):  zero-shot -> fine-tuned (full | lora)")
for proto, runs in sorted(rows.items()):
    full, lora = (runs.get(f"lite_medsam-{r}", float("nan")) for r in ("fine-tuned", "lora"))
    print(f"  {proto:8s} {runs.get('lite_medsam-zero-shot', float('nan')):.3f} -> {full:.3f} | {lora:.3f}")
PY
echo "demo: catalog at $cat, SA-Med2D export at $demo/sa-med2d, leaderboard at $demo/report/leaderboard.html"
