#!/usr/bin/env bash
# `make demo`: ingest real data shipped by Debian packages (mricron-data: the Colin27 T1 template with
# the AAL atlas; insighttoolkit5-examples: MR volumes and slices in NIfTI, MetaImage, NRRD and PNG)
# and by PyPI (nilearn: the ICBM152 template with grey and white matter; retinalysis-vascx: fundus
# photographs; tptbox: a spine CT; totalsegmentator: an abdominal CT), show the catalog, export it in
# the SA-Med2D-20M layout, fine-tune LiteMedSAM (decoder from the embedding cache, and full) and
# compare the models on held-out subjects in a leaderboard.
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
# vessel and optic-disc masks: generic image/mask folders, one per structure and role (CHASE-DB1 and
# DRIVE to train on, HRF held out).
for set in vessels:retinal_vessel discs:optic_disc; do
    for role in train:CHASEDB1 train:DRIVE test:HRF; do
        d="$demo/fundus_${set%%:*}_${role%%:*}"
        mkdir -p "$d/images" "$d/masks"
        for f in "$data"/vascx/rgb/${role#*:}_*.png; do
            ln -s "$f" "$d/images/$(basename "$f")"
            ln -s "$data/vascx/${set%%:*}/$(basename "$f")" "$d/masks/$(basename "$f")"
        done
    done
done

# The ICBM152 template with grey and white matter (nilearn), and a spine CT with vertebra labels
# (tptbox), a structure no training run here sees.
mkdir -p "$demo/icbm152/images" "$demo/icbm152/labels"
ln -s "$data/icbm152/t1.nii.gz" "$demo/icbm152/images/icbm152.nii.gz"
ln -s "$data/icbm152/labels.nii.gz" "$demo/icbm152/labels/icbm152.nii.gz"
spine="$demo/raw/Dataset610_SpineCT"   # nnU-Net raw layout; its label names are kept as they come
mkdir -p "$spine/imagesTr" "$spine/labelsTr"
ln -s "$data/tptbox/sample_ct/sub-ct_label-22_ct.nii.gz" "$spine/imagesTr/spine_001_0000.nii.gz"
ln -s "$data/tptbox/sample_ct/sub-ct_seg-vert_label-22_msk.nii.gz" "$spine/labelsTr/spine_001.nii.gz"
cat > "$spine/dataset.json" <<'JSON'
{"name": "SpineCT", "channel_names": {"0": "CT"}, "file_ending": ".nii.gz", "numTraining": 1,
 "labels": {"background": 0, "vertebra L2": 21, "vertebra L3": 22, "vertebra L4": 23}}
JSON
# TotalSegmentator's CT example with its multi-organ label map (validation: organs no run trains on).
organs="$demo/raw/Dataset601_TotalSegmentatorCT"
mkdir -p "$organs/imagesTr" "$organs/labelsTr"
ln -s "$data/totalseg/example_ct_sm.nii.gz" "$organs/imagesTr/ts_001_0000.nii.gz"
ln -s "$data/totalseg/example_seg.nii.gz" "$organs/labelsTr/ts_001.nii.gz"
python3 - "$data/totalseg/class_map.json" "$organs/dataset.json" <<'PY'
import json, sys
names = json.load(open(sys.argv[1]))["total"]
labels = {"background": 0, **{name: int(value) for value, name in names.items()}}
json.dump({"name": "TotalSegmentatorCT", "channel_names": {"0": "CT"}, "file_ending": ".nii.gz", "numTraining": 1, "labels": labels},
          open(sys.argv[2], "w"))
PY

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
for set in vessels:retinal_vessel discs:optic_disc; do
    for role in train test; do
        "$medcat" ingest "$demo/fundus_${set%%:*}_$role" --catalog "$cat" --modality fundus --class "${set#*:}"
    done
done
"$medcat" ingest "$demo/icbm152" --catalog "$cat" --manifest tools/demo/icbm152.yaml
"$medcat" ingest "$demo/itk-kmeans" --catalog "$cat" --manifest tools/demo/itk-kmeans.yaml
"$medcat" ingest "$demo/itk-slices" --catalog "$cat" --manifest tools/demo/itk-brain-slices.yaml
"$medcat" ingest "$demo/raw" --catalog "$cat"   # again: nothing to do
"$medcat" catalog stats --catalog "$cat"
"$medcat" catalog query --catalog "$cat" --class hippocampus --limit 3
"$medcat" catalog errors --catalog "$cat"
"$medcat" export --catalog "$cat" --format sa-med2d --out "$demo/sa-med2d" --dataset colin27-aal --class hippocampus
# LiteMedSAM zero-shot against fine-tuning on structures it is weak on, scored on subjects and
# photographs no run trains on: grey and white matter (trained on the ICBM152 template, scored on ITK's
# k-means subject), retinal vessels and optic discs (trained on CHASE-DB1 and DRIVE photographs, scored
# on HRF's), and lumbar vertebrae in a spine CT, which no run trains on. Colin27 + AAL regions and ITK's
# brain slices train alongside, as a replay of what the model already does well; TotalSegmentator's
# CT organs, never trained on, are the validation set that picks each run's best checkpoint.
lite=.deps/data/lite_medsam.pth
protocols=(--protocol box --protocol points1 --protocol points3 --split test)
"$medcat" catalog split --catalog "$cat" --dataset icbm152=train --dataset fundus_vessels_train=train --dataset fundus_discs_train=train \
    --dataset colin27-aal=train --dataset itk-brain-slices=train --dataset dataset601_totalsegmentatorct=val \
    --dataset itk-kmeans=test --dataset fundus_vessels_test=test --dataset fundus_discs_test=test --dataset dataset610_spinect=test
"$medcat" eval --catalog "$cat" --checkpoint "$lite" --name lite_medsam-zero-shot "${protocols[@]}"
train=(--catalog "$cat" --checkpoint "$lite" --val-split val --val-images 12 --sample-weight modality:fundus=10 --masks-per-image 2
       --click-passes 1 --lr 3e-5)
# Each run's best checkpoint is blended with the zero-shot weights, 0.3 of the tuned model (WiSE-FT;
# docs/training.md has the measurements behind 0.3), which keeps most of the gain and most of what
# the model knew about structures no run trains on.
"$medcat" train "${train[@]}" --out "$demo/decoder" --tune decoder --steps 100 --val-every 25 --batch-size 4 --no-augment
"$medcat" blend --start "$lite" --tuned "$demo/decoder/model-best.safetensors" --alpha 0.3 --out "$demo/decoder/model-blend.safetensors"
"$medcat" eval --catalog "$cat" --checkpoint "$demo/decoder/model-blend.safetensors" --name lite_medsam-decoder "${protocols[@]}"
"$medcat" train "${train[@]}" --out "$demo/full" --tune full --steps 24 --val-every 8 --batch-size 2
"$medcat" blend --start "$lite" --tuned "$demo/full/model-best.safetensors" --alpha 0.3 --out "$demo/full/model-blend.safetensors"
"$medcat" eval --catalog "$cat" --checkpoint "$demo/full/model-blend.safetensors" --name lite_medsam-full "${protocols[@]}"
"$medcat" leaderboard --catalog "$cat" --out "$demo/report"
set +x
python3 - "$demo/report/leaderboard.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
print("held-out Dice per structure (first output): zero-shot | decoder-tuned | fully tuned, Δ against zero-shot with its interval and Holm p")
for t in report["tables"]:
    if t["level"] != "mask" or t["grouping"] != "modality · class" or t["metric"] != "dice" or t["variant"]["output"] != "first":
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
        print(f"  {label:8s} {' · '.join(row['group']):28s} {row['cases']:2d} cases  " + " | ".join(show(c) for c in cells))
PY
echo "demo: catalog at $cat, SA-Med2D export at $demo/sa-med2d, leaderboard at $demo/report/leaderboard.html"
