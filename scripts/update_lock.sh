#!/usr/bin/env bash
# Write requirements-lock.txt from an environment in which the test suite has just passed:
#   python3 -m venv /tmp/fresh && PIX2CYCLE_UNLOCKED=1 bash scripts/install_requirements.sh /tmp/fresh/bin/python
#   (cd the repository && PATH=/tmp/fresh/bin:$PATH python -m pytest -q)
#   bash scripts/update_lock.sh /tmp/fresh/bin/python
# The environment must hold requirements.txt, requirements-export.txt and what they pull in, nothing else.
set -euo pipefail
python=${1:?usage: update_lock.sh PYTHON}
root="$(cd "$(dirname "$0")/.." && pwd)"
read -r platform minimum <<<"$("$python" -c 'import platform, sys; print(f"{platform.system()}/{platform.machine()}", "%d.%d" % sys.version_info[:2])')"

{
  cat <<HEADER
# The exact versions the test suite passed with: everything requirements.txt resolved to
# (dependencies of dependencies included) on CPython $minimum, ${platform}, on $(date -u +%Y-%m-%d).
# A constraint file, not a requirement list: pip installs only what requirements.txt asks
# for and takes these versions for whatever of it is needed here,
#   python -m pip install -r requirements.txt -c requirements-lock.txt
# so the Linux-only CUDA packages of torch's PyPI wheel are simply unused elsewhere. The pins
# need Python $minimum+; on older Pythons they are left out and pip resolves the ranges.
# Written by scripts/update_lock.sh (its header says how to refresh it).
HEADER
  # pip itself is the environment's, not ours; setuptools is kept (torch needs it at run time).
  "$python" -m pip freeze --all --exclude pip | LC_ALL=C sort -f | while IFS= read -r line; do
    case "$(printf '%s' "${line%%==*}" | tr 'A-Z_' 'a-z-')" in
      nvidia-*|cuda-*|triton) echo "$line; python_version >= \"$minimum\" and platform_system == \"Linux\"" ;;
      *) echo "$line; python_version >= \"$minimum\"" ;;
    esac
  done
} > "$root/requirements-lock.txt"
echo "wrote $root/requirements-lock.txt ($(grep -c '==' "$root/requirements-lock.txt") pins)"
