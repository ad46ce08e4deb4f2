#!/usr/bin/env bash
# Download a pix2pix (aligned) dataset into datasets/NAME, as the reference's script does:
#   bash datasets/download_pix2pix_dataset.sh facades
# Names: facades, cityscapes, night2day, edges2handbags, edges2shoes, maps.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash $0 NAME   (facades, cityscapes, night2day, edges2handbags, edges2shoes, maps)" >&2
    exit 1
fi
HERE="$(cd "$(dirname "$0")" && pwd)"
exec "${PYTHON:-python}" "$HERE/download_dataset.py" "$1" --kind pix2pix --root "$HERE" "${@:2}"
