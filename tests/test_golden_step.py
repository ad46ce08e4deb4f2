"""One training step against the reference's own: the whole step, data loading included.

``../shared/reference/golden_step`` holds, for a pix2pix and a CycleGAN case, the starting
weights the reference used (``init/``), its weights and BatchNorm statistics after one
iteration on one real image, recorded on two CPU kinds (``after/``: AVX2, ``after_AVX512/``:
AVX-512 with AVX512_BF16, both torch 2.15), and the losses it printed. Here ``train.main``
runs that iteration from the same weights with the same options (a weights-only
``--continue_train``: a fresh Adam, as in the reference) and every tensor it writes is
compared with the reference's.

The reference itself computes other bits on another CPU kind (its convolution kernels and
their summation order follow the instruction set), so exactness is a statement about one
machine: the step is compared bit for bit with the data recorded on this CPU kind, and with
the other kinds' data under the cross-machine rounding bound. On a kind with no recording
(AMX, Arm, another torch) only the bound is asserted, against every recording. The terminal
summary names the comparisons that ran. The tests skip when the shared folder is absent.
"""

from __future__ import annotations

import platform
import re
import shutil
from pathlib import Path

import pytest
import torch

import train
from tests.conftest import REPO_ROOT, SHARED_DATASETS
from util.hardware import cpu_flags_here

GOLDEN = REPO_ROOT.parent / "shared" / "reference" / "golden_step"
LR = 2e-4  # the reference's default --lr, used by both runs
# Folder of after-step data -> the CPU kind (see cpu_kind) it was recorded on, with torch 2.15.
RECORDINGS = {"after": "AVX2", "after_AVX512": "AVX512"}
RECORDED_TORCH = "2.15"
RECORDED_THREADS = 2  # measured: with 1 thread, 18 pix2pix values differ from after_AVX512/ by up to 4.7e-10
# What golden comparisons ran, for the terminal summary (tests/conftest.py prints it).
COMPARISONS: list = []

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


def cpu_kind() -> str:
    """This machine as ``RECORDINGS`` names CPU kinds: torch's CPU capability (``AVX2``,
    ``AVX512``, ...), ``+AMX`` where the CPU has AMX tiles, the architecture where it is not
    x86-64, and torch's version where it is not the recordings'."""
    kind = torch.backends.cpu.get_cpu_capability()
    if "amx_tile" in cpu_flags_here():
        kind += "+AMX"
    if platform.machine().lower() not in ("x86_64", "amd64"):
        kind = f"{platform.machine()} {kind}"
    if torch.__version__.split("+")[0].rsplit(".", 1)[0] != RECORDED_TORCH:
        kind += f", torch {torch.__version__}"
    return kind


def own_recording() -> str | None:
    """The folder recorded on this CPU kind, or None."""
    return next((folder for folder, kind in RECORDINGS.items() if kind == cpu_kind()), None)


@pytest.fixture
def golden() -> Path:
    if not all((GOLDEN / case / folder).is_dir() for case in CASES for folder in RECORDINGS) \
            or not SHARED_DATASETS.is_dir():
        pytest.skip(f"golden step data not found at {GOLDEN}")
    return GOLDEN


def printed_losses(text: str) -> dict:
    """Loss name -> printed value from the line of iteration 1 (both print formats)."""
    line = next(line for line in text.splitlines() if line.startswith("(epoch: 1, iters: 1,"))
    return {name: value for name, value in re.findall(r"(\w+): (-?\d+\.\d+)", line.split(")", 1)[1])}


def one_step(case: str, tmp_path: Path, extra: list, capsys) -> tuple:
    """Run the case's iteration; returns {file stem: state_dict} of ours and the printed losses."""
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
    threads = torch.get_num_threads()
    torch.set_num_threads(RECORDED_THREADS)  # the split of a reduction over threads is part of its bits
    try:
        assert train.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    losses = printed_losses(capsys.readouterr().out)
    ours = {path.stem: torch.load(run_dir / path.name, weights_only=True)
            for path in sorted((GOLDEN / case / "init").glob("latest_net_*.pth"))}
    return ours, losses


def pairs_with(case: str, folder: str, ours: dict) -> dict:
    """{file: {key: (ours, reference)}} against the recording in ``folder``."""
    pairs = {}
    for reference_file in sorted((GOLDEN / case / folder).glob("latest_net_*.pth")):
        reference = torch.load(reference_file, weights_only=True)
        mine = ours[reference_file.stem]
        assert set(mine) == set(reference), reference_file.name
        pairs[reference_file.stem] = {key: (mine[key], reference[key]) for key in reference}
    assert set(pairs) == set(ours), f"{folder} holds other networks"
    return pairs


def is_bn_stat(key: str) -> bool:
    return key.endswith(("running_mean", "running_var"))


def assert_identical(pairs: dict) -> None:
    for name, tensors in pairs.items():
        for key, (ours, reference) in tensors.items():
            assert ours.shape == reference.shape and ours.dtype == reference.dtype, f"{name}.{key}"
            if key.endswith("num_batches_tracked"):
                assert torch.equal(ours, reference), f"{name}.{key}"
            else:
                diff = float((ours.double() - reference.double()).abs().max())
                assert diff == 0, f"{name}.{key}: max |difference| {diff:.3g}"


def assert_rounding_only(pairs: dict, bounds: tuple) -> str:
    """Differences that rounding explains, within ``bounds`` = (share of weights off by about
    2 * lr, share off by more than 1e-6, largest BatchNorm-statistic difference); returns a
    description of what was found.

    Adam's first step moves a weight by about ``lr`` times the sign of its gradient (less
    where the gradient is as small as Adam's eps), so a rounding difference shows as weights
    off by up to ``2 * lr`` where a gradient is almost zero; nothing may differ by more.
    """
    max_flip_share, max_changed_share, max_bn_diff = bounds
    weights = [(ours.double() - reference.double()).abs() for tensors in pairs.values()
               for key, (ours, reference) in tensors.items() if ours.is_floating_point() and not is_bn_stat(key)]
    flipped = sum(int((diff > 1.5 * LR).sum()) for diff in weights)
    changed = sum(int((diff > 1e-6).sum()) for diff in weights)
    total = sum(diff.numel() for diff in weights)
    assert flipped <= max_flip_share * total, f"{flipped} of {total} weights flipped"
    assert changed <= max_changed_share * total, f"{changed} of {total} weights differ by more than 1e-6"
    largest = max(float(diff.max()) for diff in weights)
    assert largest <= 2 * LR * 1.01, f"a weight differs by {largest:.3g}, more than a flipped sign"
    bn = max((float((ours.double() - reference.double()).abs().max()) for tensors in pairs.values()
              for key, (ours, reference) in tensors.items() if is_bn_stat(key)), default=0.0)
    assert bn <= max_bn_diff, f"a BatchNorm statistic differs by {bn:.3g}"
    for tensors in pairs.values():
        for key, (ours, reference) in tensors.items():
            if key.endswith("num_batches_tracked"):
                assert torch.equal(ours, reference)
    return f"{flipped} flipped, {changed} of {total} off by > 1e-6"


# The reference against itself across CPU kinds (after/ vs after_AVX512/): pix2pix 0 of
# 700,476 weights flipped, 24 off by more than 1e-6 (largest 2.5e-5), BatchNorm statistics
# within 3.2e-7; CycleGAN 50 of 338,936 flipped, 1,124 off by more than 1e-6. The bounds are
# a few times that: case -> (share flipped, share off by > 1e-6, largest BatchNorm difference).
CROSS_CPU_BOUNDS = {"p2p": (1e-5, 2e-4, 2e-6), "cyc": (5e-4, 1e-2, 0.0)}


def record(case: str, what: str, comparisons: list) -> None:
    COMPARISONS.append(f"{case} {what} (this CPU: {cpu_kind()}): " + "; ".join(comparisons))


@pytest.mark.parametrize("adam", sorted(REFERENCE_ARITHMETIC))
@pytest.mark.parametrize("case", sorted(CASES))
def test_one_step_equals_the_reference(golden, case, adam, tmp_path, capsys):
    """With the reference's arithmetic the step is the reference's on the same CPU kind, to
    the last bit (measured on AVX2 and on AVX-512: max |difference| 0 over every weight,
    BatchNorm statistic and counter, both cases), and within the reference's own
    cross-CPU rounding of the other kinds' recordings."""
    ours, losses = one_step(case, tmp_path, REFERENCE_ARITHMETIC[adam], capsys)
    own = own_recording()
    comparisons = []
    for folder, kind in RECORDINGS.items():
        pairs = pairs_with(case, folder, ours)
        if folder == own:
            assert_identical(pairs)
            comparisons.append(f"bit for bit with {folder}/ ({kind})")
        else:
            found = assert_rounding_only(pairs, CROSS_CPU_BOUNDS[case])
            comparisons.append(f"within the cross-CPU bound of {folder}/ ({kind}: {found})")
    if own is None:
        comparisons.append("no recording for this CPU kind, so no bit-for-bit comparison")
    record(case, f"--adam_impl {adam}", comparisons)
    assert losses == printed_losses((golden / case / "reference_losses.txt").read_text())


# The default fast paths against the recording of their own CPU kind, measured on an AMD
# EPYC, AVX2, 1 and 2 threads: pix2pix none of 700,476 weights off by more than 1.5 lr, 23 by
# more than 1e-6 (largest 1.1e-4), BatchNorm statistics within 9e-8, losses as printed by the
# reference; CycleGAN 48 of 338,936 (0.014 %) off by more than 1.5 lr, all of them biases of
# convolutions followed by an InstanceNorm (whose gradient is zero but for rounding); 1,097
# (0.32 %) by more than 1e-6; no BatchNorm. Bounds a few times that, as CROSS_CPU_BOUNDS.
FAST_PATH_BOUNDS = {"p2p": (1e-4, 1e-4, 1e-6), "cyc": (5e-4, 1e-2, 0.0)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_paths_differ_from_the_reference_by_rounding_only(golden, case, tmp_path, capsys):
    """The default fast paths (GEMM convolutions over few pixels, fused Adam) round
    differently: within FAST_PATH_BOUNDS of the recording of this CPU kind, and within that
    plus the cross-CPU bound of the others."""
    ours, _ = one_step(case, tmp_path, FAST_DEFAULTS, capsys)
    own = own_recording()
    comparisons = []
    for folder, kind in RECORDINGS.items():
        bounds = FAST_PATH_BOUNDS[case] if folder == own else \
            tuple(a + b for a, b in zip(FAST_PATH_BOUNDS[case], CROSS_CPU_BOUNDS[case]))
        found = assert_rounding_only(pairs_with(case, folder, ours), bounds)
        comparisons.append(f"within the {'fast-path' if folder == own else 'fast-path + cross-CPU'} bound "
                           f"of {folder}/ ({kind}: {found})")
    record(case, "fast paths", comparisons)


def test_a_cpu_kind_without_recording_is_held_to_the_bound(golden, tmp_path, capsys, monkeypatch):
    """On a CPU kind nothing was recorded on (AMX, Arm, a new torch) the check does not
    vanish: every recording is compared under the cross-CPU bound, and the summary says so."""
    monkeypatch.setattr(f"{__name__}.cpu_kind", lambda: "aarch64 SVE256")
    assert own_recording() is None
    before = len(COMPARISONS)
    test_one_step_equals_the_reference(golden, "p2p", "for_loop", tmp_path, capsys)
    assert COMPARISONS[before:] and "no recording for this CPU kind" in COMPARISONS[-1]
    assert COMPARISONS[-1].count("within the cross-CPU bound") == len(RECORDINGS)
