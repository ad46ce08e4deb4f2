"""``pip install -e .``: the checkout installs, the API imports from any folder, and the
console commands are the scripts' programs. Installs into a throwaway venv only."""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
COMMANDS = ("train", "test", "translate", "export", "app")


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_dependencies_are_those_of_requirements_txt():
    project = _pyproject()["project"]
    listed = {line.strip() for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    extras = project["optional-dependencies"]
    declared = set(project["dependencies"]) | set(extras["display"]) | set(extras["dev"])
    assert declared == listed
    export = {line.strip() for line in (REPO_ROOT / "requirements-export.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert set(extras["export"]) == export
    app = {line.strip() for line in (REPO_ROOT / "requirements-app.txt").read_text().splitlines()
           if line.strip() and not line.startswith("#")}
    assert set(extras["app"]) == app


def test_packages_and_modules_are_every_one_of_the_checkout():
    setuptools = _pyproject()["tool"]["setuptools"]
    packages = sorted(str(p.parent.relative_to(REPO_ROOT)).replace(os.sep, ".")
                      for p in REPO_ROOT.glob("**/__init__.py")
                      if p.parent.relative_to(REPO_ROOT).parts[0] not in ("tests", "scripts", "datasets", "docs"))
    assert sorted(setuptools["packages"]) == packages
    assert sorted(setuptools["py-modules"]) == sorted(COMMANDS)
    scripts = _pyproject()["project"]["scripts"]
    assert scripts == {f"pix2cycle-{c}": f"pix2cycle.commands:{c}" for c in COMMANDS}


def test_commands_run_the_scripts_main():
    from pix2cycle import commands

    for name in COMMANDS:
        module = commands.script(name)
        assert Path(module.__file__).resolve() == REPO_ROOT / f"{name}.py"
        assert getattr(commands, name).__name__ == name and callable(module.main)


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
def test_editable_install_imports_from_outside_the_checkout(tmp_path):
    """pip install -e . --no-deps --no-build-isolation into a venv that sees this Python's
    packages (torch, setuptools), then the API and a command from a folder elsewhere."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                   check=True, timeout=60)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    own_site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    # The test's Python may itself be a venv: its packages are seen through a .pth file.
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(own_site, "_test_parent.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in parents))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(REPO_ROOT), "--no-deps",
                           "--no-build-isolation", "--no-index"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = venv / "bin" / "pix2cycle-translate"
    # Both at once: each imports torch, which takes most of the time.
    api = subprocess.Popen([str(python), "-c", "from pix2cycle import Translator; import pix2cycle, models; "
                            "print(pix2cycle.__file__); print(models.__file__); print(Translator.__name__)"],
                           cwd=elsewhere, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cli = subprocess.Popen([str(command), "--help"], cwd=elsewhere, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    out, err = api.communicate(timeout=120)
    assert api.returncode == 0, err
    assert out.split() == [str(REPO_ROOT / "pix2cycle" / "__init__.py"), str(REPO_ROOT / "models" / "__init__.py"),
                           "Translator"]
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    assert out.startswith("usage: pix2cycle-translate") and "--tile" in out and "--checkpoints_dir" in out
