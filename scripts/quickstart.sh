#!/usr/bin/env bash
# Quick start: make a virtual environment .venv with the tested versions of the requirements,
# make the built-in demo data, train pix2pix and CycleGAN briefly on the CPU, test both and
# print where the HTML galleries are.
#   bash scripts/quickstart.sh                       # everything, in .venv
#   PYTHON=python3 bash scripts/quickstart.sh        # install into that Python instead (conda, ...)
#   SKIP_INSTALL=1 bash scripts/quickstart.sh        # no pip install
#   PIX2CYCLE_UNLOCKED=1 bash scripts/quickstart.sh  # newest versions, not requirements-lock.txt
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || { echo "error: python3 -m venv failed (Debian/Ubuntu: apt install python3-venv)" >&2; exit 2; }
  fi
  PYTHON=.venv/bin/python
fi

if [ -z "${SKIP_INSTALL:-}" ]; then
  bash scripts/install_requirements.sh "$PYTHON"
fi

DEMO=datasets/demo
"$PYTHON" datasets/make_demo_data.py --out "$DEMO" --size 128 --n_train 32 --n_test 8

COMMON=(--dataroot "$DEMO" --checkpoints_dir checkpoints --gpu_ids -1 --num_threads 1 --seed 0
        --ngf 16 --ndf 16 --print_freq 32 --display_freq 32 --update_html_freq 32)

echo "== pix2pix: label map -> photo (paired, aligned layout)"
"$PYTHON" train.py "${COMMON[@]}" --name demo_pix2pix --model pix2pix --netG unet_128 \
  --load_size 136 --crop_size 128 --batch_size 4 --n_epochs 4 --n_epochs_decay 2 --overwrite
"$PYTHON" test.py --dataroot "$DEMO" --name demo_pix2pix --model pix2pix --gpu_ids -1 --crop_size 128

echo "== cycle_gan: label map <-> photo (unpaired, trainA/trainB layout)"
"$PYTHON" train.py "${COMMON[@]}" --name demo_cyclegan --model cycle_gan --netG resnet_6blocks \
  --load_size 72 --crop_size 64 --n_epochs 1 --n_epochs_decay 1 --overwrite
"$PYTHON" test.py --dataroot "$DEMO" --name demo_cyclegan --model cycle_gan --gpu_ids -1 --crop_size 64

echo
echo "Galleries:"
echo "  results/demo_pix2pix/test_latest/index.html"
echo "  results/demo_cyclegan/test_latest/index.html"
echo "Training pages: checkpoints/demo_pix2pix/web/index.html, checkpoints/demo_cyclegan/web/index.html"
if [ "$PYTHON" = .venv/bin/python ]; then
  echo "Next: . .venv/bin/activate && python -m pytest -q   (then python train.py ... as in README.md)"
fi
