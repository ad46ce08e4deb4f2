"""Shared test fixtures: tiny generated datasets and an options object with reference defaults.

Fixtures:
* ``aligned_dataroot``: Path with ``train/`` (8), ``val/`` and ``test/`` (4 each) A|B PNGs
  of 128x64 (two 64x64 halves).
* ``unaligned_dataroot``: Path with ``trainA/ trainB/`` (8 each) and ``testA/ testB/``
  (4 each) 64x64 PNGs.
* ``make_opt(**overrides)``: an ``argparse.Namespace`` with the reference's defaults
  (importable function, also available as the fixture ``opt_factory``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

# The tests run tiny networks, for which one intra-op thread is fastest; it also keeps
# the suite from oversubscribing small CI machines.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"

# The reference's defaults (base + train options) for what the data code and most tests read.
REFERENCE_DEFAULTS = dict(
    dataroot=None, name="experiment_name", gpu_ids=[], checkpoints_dir="./checkpoints",
    model="cycle_gan", input_nc=3, output_nc=3, ngf=64, ndf=64, netD="basic",
    netG="resnet_9blocks", n_layers_D=3, norm="instance", init_type="normal", init_gain=0.02,
    no_dropout=False, dataset_mode="unaligned", direction="AtoB", serial_batches=False,
    num_threads=4, batch_size=1, load_size=286, crop_size=256, max_dataset_size=float("inf"),
    preprocess="resize_and_crop", no_flip=False, display_winsize=256, epoch="latest",
    load_iter=0, verbose=False, suffix="", phase="train", isTrain=True, seed=None,
    size_multiple=4, min_input_size=1,
)


def make_opt(**overrides) -> argparse.Namespace:
    """An options Namespace with the reference defaults, changed by ``overrides``; every
    other option has the value the parser gives it, so code can read any option."""
    from options import parse_options

    values = vars(parse_options(["--dataroot", "unused", "--gpu_ids", "-1"], is_train=True))
    values.update(REFERENCE_DEFAULTS)
    values.update(overrides)
    return argparse.Namespace(**values)


def load_script(name: str, folder: str = "datasets"):
    """Import ``<folder>/<name>.py`` (``datasets`` and ``scripts`` are folders of scripts, not packages)."""
    path = REPO_ROOT / folder / f"{name}.py"
    module_name = f"pix2cycle_{folder}_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so its functions pickle (the combine process pool)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def opt_factory():
    return make_opt


@pytest.fixture(scope="session")
def aligned_dataroot(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("aligned")
    return load_script("make_demo_data").make_demo_dataset(root, "aligned", n_train=8, n_test=4,
                                                           size=64, seed=1)


@pytest.fixture(scope="session")
def unaligned_dataroot(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unaligned")
    return load_script("make_demo_data").make_demo_dataset(root, "unaligned", n_train=8,
                                                           n_test=4, size=64, seed=2)


@pytest.fixture(scope="session")
def label_dataroot(tmp_path_factory) -> Path:
    """``train_label/ train_inst/ train_img/`` (4) and ``test_*`` (2) at 32x32: the label layout."""
    return load_script("make_maps_labels").make_demo_labels(tmp_path_factory.mktemp("labels"), size=32, seed=3)


@pytest.fixture(scope="session")
def multidomain_dataroot(unaligned_dataroot, tmp_path_factory) -> Path:
    """``train/`` and ``test/`` with one folder per domain (A, B): the unaligned images, linked."""
    return load_script("make_multidomain").make_multidomain(unaligned_dataroot, tmp_path_factory.mktemp("domains")
                                                            / "domains", copy=True)


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The real datasets folder; tests using it skip when it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def volume_dataroot(tmp_path_factory) -> Path:
    """``trainA/ trainB/`` (2 pairs) and ``testA/ testB/`` (1 pair) of 20x24x18 uint16 .npy volumes."""
    return load_script("make_scientific_demo").make_volume_set(tmp_path_factory.mktemp("volumes"), shape=(20, 24, 18), n_train=2, n_test=1, fmt=".npy")


def pytest_terminal_summary(terminalreporter):
    """Say which golden-step comparisons ran (they depend on the CPU kind: tests/test_golden_step.py)."""
    golden = sys.modules.get("tests.test_golden_step")
    if golden is not None and golden.COMPARISONS:
        terminalreporter.write_sep("-", "golden step: what was compared")
        for line in golden.COMPARISONS:
            terminalreporter.write_line(line)
