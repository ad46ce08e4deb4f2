#!/usr/bin/env bash
# Download a CycleGAN (unaligned) dataset into datasets/NAME, as the reference's script does:
#   bash datasets/download_cyclegan_dataset.sh horse2zebra
# Names: apple2orange, summer2winter_yosemite, horse2zebra, monet2photo, cezanne2photo,
# ukiyoe2photo, vangogh2photo, maps, cityscapes, facades, iphone2dslr_flower, ae_photos,
# mini, mini_pix2pix, grumpifycat.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash $0 NAME   (e.g. horse2zebra, monet2photo, maps; see download_dataset.py)" >&2
    exit 1
fi
HERE="$(cd "$(dirname "$0")" && pwd)"
exec "${PYTHON:-python}" "$HERE/download_dataset.py" "$1" --kind cyclegan --root "$HERE" "${@:2}"
