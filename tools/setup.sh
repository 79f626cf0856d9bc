#!/usr/bin/env bash
# Installs everything medcat needs on a fresh Debian bookworm machine. Idempotent: each step is
# skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in libpng-dev zlib1g-dev libjpeg62-turbo-dev libtiff-dev libgif-dev libdeflate-dev libxxhash-dev libsqlite3-dev libgdcm-dev libdeflate-tools python3 python3-pip; do
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
echo "setup: ok"
