"""One training step against the reference's own: the whole step, data loading included.

``../shared/reference/golden_step`` holds, for a pix2pix and a CycleGAN case, the starting
weights the reference used (``init/``), its weights and BatchNorm statistics after one
iteration on one real image (``after/``) and the losses it printed. Here ``train.main`` runs
that iteration from the same weights with the same options (a weights-only
``--continue_train``: a fresh Adam, as in the reference) and every tensor it writes is
compared with ``after/``. The tests skip when the shared folder is absent.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

import train
from tests.conftest import REPO_ROOT, SHARED_DATASETS

GOLDEN = REPO_ROOT.parent / "shared" / "reference" / "golden_step"
LR = 2e-4  # the reference's default --lr, used by both runs

# case -> (image files as <dataroot path>: <path under the shared datasets>, the case's options)
CASES = {
    "p2p": ({"train/7.jpg": "maps/train/7.jpg"},
            ["--model", "pix2pix", "--netG", "unet_128", "--ngf", "8", "--ndf", "8",
             "--preprocess", "resize_and_crop", "--load_size", "128", "--crop_size", "128", "--no_dropout"]),
    "cyc": ({"trainA/410_A.jpg": "maps_unaligned/trainA/410_A.jpg",
             "trainB/420_B.jpg": "maps_unaligned/trainB/420_B.jpg"},
            ["--model", "cycle_gan", "--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8",
             "--load_size", "64", "--crop_size", "64", "--pool_size", "0"]),
}
# --adam_impl foreach gives the same bits as for_loop (tested too: it is the benchmark's "plain").
REFERENCE_ARITHMETIC = {"for_loop": ["--conv_impl", "native", "--adam_impl", "for_loop"],
                        "foreach": ["--conv_impl", "native", "--adam_impl", "foreach"]}
FAST_DEFAULTS = ["--conv_impl", "auto", "--adam_impl", "fused"]


@pytest.fixture
def golden() -> Path:
    if not (GOLDEN / "p2p" / "after").is_dir() or not SHARED_DATASETS.is_dir():
        pytest.skip(f"golden step data not found at {GOLDEN}")
    return GOLDEN


def printed_losses(text: str) -> dict:
    """Loss name -> printed value from the line of iteration 1 (both print formats)."""
    line = next(line for line in text.splitlines() if line.startswith("(epoch: 1, iters: 1,"))
    return {name: value for name, value in re.findall(r"(\w+): (-?\d+\.\d+)", line.split(")", 1)[1])}


def one_step(case: str, tmp_path: Path, extra: list, capsys) -> tuple:
    """Run the case's iteration; returns {file: {key: (ours, reference)}} and the printed losses."""
    files, options = CASES[case]
    for dst, src in files.items():
        (tmp_path / "data" / dst).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / dst).symlink_to(SHARED_DATASETS / src)
    run_dir = tmp_path / "checkpoints" / "golden"
    run_dir.mkdir(parents=True)
    for weights in (GOLDEN / case / "init").glob("latest_net_*.pth"):
        shutil.copy(weights, run_dir / weights.name)
    argv = ["--dataroot", str(tmp_path / "data"), "--checkpoints_dir", str(tmp_path / "checkpoints"),
            "--name", "golden", "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "1",
            "--serial_batches", "--no_flip", "--num_threads", "0", "--continue_train", "--gpu_ids", "-1",
            "--print_freq", "1", "--display_freq", "100000", "--no_html", *options, *extra]
    capsys.readouterr()
    assert train.main(argv) == 0
    losses = printed_losses(capsys.readouterr().out)
    pairs = {}
    for reference_file in sorted((GOLDEN / case / "after").glob("latest_net_*.pth")):
        reference = torch.load(reference_file, weights_only=True)
        ours = torch.load(run_dir / reference_file.name, weights_only=True)
        assert set(ours) == set(reference), reference_file.name
        pairs[reference_file.stem] = {key: (ours[key], reference[key]) for key in reference}
    return pairs, losses


def is_bn_stat(key: str) -> bool:
    return key.endswith(("running_mean", "running_var"))


@pytest.mark.parametrize("adam", sorted(REFERENCE_ARITHMETIC))
@pytest.mark.parametrize("case", sorted(CASES))
def test_one_step_equals_the_reference(golden, case, adam, tmp_path, capsys):
    """With the reference's arithmetic the step is the reference's, to the last bit (measured:
    max |difference| 0 over every weight, BatchNorm statistic and counter, both cases)."""
    pairs, losses = one_step(case, tmp_path, REFERENCE_ARITHMETIC[adam], capsys)
    for name, tensors in pairs.items():
        for key, (ours, reference) in tensors.items():
            assert ours.shape == reference.shape and ours.dtype == reference.dtype, f"{name}.{key}"
            if key.endswith("num_batches_tracked"):
                assert torch.equal(ours, reference), f"{name}.{key}"
            else:
                diff = float((ours.double() - reference.double()).abs().max())
                assert diff <= 1e-6, f"{name}.{key}: max |difference| {diff:.3g}"
    assert losses == printed_losses((golden / case / "reference_losses.txt").read_text())


# case -> (share of weights off by about 2 * lr, share off by more than 1e-6, largest
# BatchNorm-statistic difference): bounds a few times what was measured (see the docstring).
FAST_PATH_BOUNDS = {"p2p": (1e-4, 1e-4, 1e-6), "cyc": (5e-4, 1e-2, 0.0)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_paths_differ_from_the_reference_by_rounding_only(golden, case, tmp_path, capsys):
    """The default fast paths (GEMM convolutions over few pixels, fused Adam) round differently.

    Adam's first step moves a weight by about ``lr`` times the sign of its gradient (less
    where the gradient is as small as Adam's eps), so a rounding difference shows as weights
    off by up to ``2 * lr`` where a gradient is almost zero. Measured on an AMD EPYC (AVX2),
    1 and 2 threads: pix2pix: none of 700,476 weights off by more than 1.5 lr, 23 by more
    than 1e-6 (largest 1.1e-4), BatchNorm statistics within 9e-8, losses as printed by the
    reference. CycleGAN: 48 of 338,936 (0.014 %) off by more than 1.5 lr, all of them
    biases of convolutions followed by an InstanceNorm (whose gradient is zero but for
    rounding); 1,097 (0.32 %) by more than 1e-6; no BatchNorm.
    """
    max_flip_share, max_changed_share, max_bn_diff = FAST_PATH_BOUNDS[case]
    pairs, _ = one_step(case, tmp_path, FAST_DEFAULTS, capsys)
    weights = [(ours - reference).abs() for tensors in pairs.values()
               for key, (ours, reference) in tensors.items() if ours.is_floating_point() and not is_bn_stat(key)]
    flipped = sum(int((diff > 1.5 * LR).sum()) for diff in weights)
    changed = sum(int((diff > 1e-6).sum()) for diff in weights)
    total = sum(diff.numel() for diff in weights)
    assert flipped <= max_flip_share * total, f"{flipped} of {total} weights flipped"
    assert changed <= max_changed_share * total, f"{changed} of {total} weights differ by more than 1e-6"
    assert max(float(diff.max()) for diff in weights) <= 2 * LR * 1.01  # nothing beyond a flipped sign
    bn = [float((ours - reference).abs().max()) for tensors in pairs.values()
          for key, (ours, reference) in tensors.items() if is_bn_stat(key)]
    assert max(bn, default=0.0) <= max_bn_diff
    for tensors in pairs.values():
        for key, (ours, reference) in tensors.items():
            if key.endswith("num_batches_tracked"):
                assert torch.equal(ours, reference)
