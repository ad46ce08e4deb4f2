#!/usr/bin/env bash
# Install requirements.txt (and requirements-export.txt, requirements-app.txt) into the environment of the given Python, with the versions the
# test suite passed with (requirements-lock.txt); used by scripts/quickstart.sh and .ci/run.
#   bash scripts/install_requirements.sh .venv/bin/python
#   PIX2CYCLE_UNLOCKED=1 bash scripts/install_requirements.sh .venv/bin/python   # newest versions
set -euo pipefail
python=${1:?usage: install_requirements.sh PYTHON}
root="$(cd "$(dirname "$0")/.." && pwd)"

lock=(-c "$root/requirements-lock.txt")
if [ -n "${PIX2CYCLE_UNLOCKED:-}" ]; then
  lock=()
  echo "PIX2CYCLE_UNLOCKED is set: the newest versions requirements.txt allows, not requirements-lock.txt"
fi
echo "Installing requirements.txt into $("$python" -c 'import sys; print(sys.prefix)') (a few GB with torch)"
# PIP_CONSTRAINT also replaces a constraint file named by a global pip config, so the lock's
# versions are the ones that count.
# requirements-export.txt: export.py's ONNX exporter and checker (a few tens of MB), so that
# its tests run too.
PIP_CONSTRAINT="$root/build-constraints.txt" "$python" -m pip install --disable-pip-version-check -q \
  -r "$root/requirements.txt" -r "$root/requirements-export.txt" ${lock[@]+"${lock[@]}"}

# requirements-app.txt: the Hub and the demo page (huggingface_hub, gradio), so that their tests run too.
"$python" -m pip install --disable-pip-version-check -q -r "$root/requirements-app.txt" ${lock[@]+"${lock[@]}"}
