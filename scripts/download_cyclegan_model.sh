#!/usr/bin/env bash
# Download a pretrained CycleGAN generator into ./checkpoints/NAME_pretrained/ (weights and the
# train_opt.json of its architecture), with the reference's script name and model names:
#   bash scripts/download_cyclegan_model.sh horse2zebra
# Names: apple2orange, orange2apple, summer2winter_yosemite, winter2summer_yosemite, horse2zebra,
# zebra2horse, monet2photo, style_monet, style_cezanne, style_ukiyoe, style_vangogh, sat2map,
# map2sat, cityscapes_photo2label, cityscapes_label2photo, facades_photo2label,
# facades_label2photo, iphone2dslr_flower.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash $0 NAME   (e.g. horse2zebra; a wrong name lists them all)" >&2
    exit 2
fi
HERE="$(cd "$(dirname "$0")" && pwd)"
exec "${PYTHON:-python}" "$HERE/download_model.py" "$1" --kind cyclegan "${@:2}"
