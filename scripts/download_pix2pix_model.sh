#!/usr/bin/env bash
# Download a pretrained pix2pix generator into ./checkpoints/NAME_pretrained/ (weights and the
# train_opt.json of its architecture), with the reference's script name and model names:
#   bash scripts/download_pix2pix_model.sh facades_label2photo
# Names: edges2shoes, sat2map, map2sat, facades_label2photo, day2night.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash $0 NAME   (e.g. facades_label2photo; a wrong name lists them all)" >&2
    exit 2
fi
HERE="$(cd "$(dirname "$0")" && pwd)"
exec "${PYTHON:-python}" "$HERE/download_model.py" "$1" --kind pix2pix "${@:2}"
