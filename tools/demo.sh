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
# LiteMedSAM zero-shot on Colin27's first 16 validation slices: box, one point, 5 corrective clicks.
"$medcat" eval --catalog "$cat" --checkpoint .deps/data/lite_medsam.pth --dataset colin27-aal --split val --limit 16 \
    --protocol box --protocol points1 --protocol clicks --name lite_medsam-zero-shot --replace
"$medcat" leaderboard --catalog "$cat" --out "$demo/report"
set +x
echo "demo: catalog at $cat, SA-Med2D export at $demo/sa-med2d, leaderboard at $demo/report/leaderboard.html"
