"""StarGAN v2 (--model stargan_v2, --dataset_mode multidomain): the data layout, exact resume,
latent- and reference-guided test.py output, the Translator's target domain, seed and
reference, and the one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from pix2cycle import Translator
from tests.helpers import assert_same_networks, tiny_args
from util.errors import UserError

SHORT = ["--max_dataset_size", "2", "--seed", "3", "--no_html", "--print_freq", "100000", "--display_freq", "100000"]
NETS = ["G", "G_mapping", "G_style", "D"]


@pytest.fixture(scope="module")
def run(multidomain_dataroot, tmp_path_factory):
    """A tiny two-epoch run in one go (name "one")."""
    checkpoints = tmp_path_factory.mktemp("stargan")
    assert train_script.main(tiny_args("stargan_v2", multidomain_dataroot, checkpoints, "one", *SHORT,
                                       "--n_epochs", "2")) == 0
    return checkpoints


def test_resume_gives_the_weights_of_one_run(run, multidomain_dataroot):
    args = tiny_args("stargan_v2", multidomain_dataroot, run, "split", *SHORT)
    assert train_script.main(args + ["--n_epochs", "1"]) == 0
    assert train_script.main(args + ["--n_epochs", "2", "--continue_train"]) == 0
    assert_same_networks(run / "one", run / "split", NETS + ["G_ema", "G_mapping_ema", "G_style_ema"], atol=0)
    state = torch.load(run / "split" / "latest_checkpoint.pth", weights_only=True)
    lrs = [g["initial_lr"] for g in state["model"]["optimizers"][0]["param_groups"]]
    assert lrs == pytest.approx([1e-4, 1e-4, 1e-6])  # F keeps its --f_lr through the resume


def test_test_py_writes_latent_and_reference_guided_outputs(run, multidomain_dataroot, tmp_path):
    common = ["--dataroot", str(multidomain_dataroot), "--model", "stargan_v2", "--name", "one", "--checkpoints_dir",
              str(run), "--gpu_ids", "-1", "--num_threads", "0", "--num_test", "2", "--use_ema"]
    assert test_script.main([*common, "--results_dir", str(tmp_path / "all"), "--n_samples", "2"]) == 0
    names = {p.name.split("_", 1)[1] for p in (tmp_path / "all" / "one" / "test_latest" / "images").iterdir()}
    assert names == {"real.png", "ref.png", "fake_ref.png", "fake_A_1.png", "fake_A_2.png", "fake_B_1.png",
                     "fake_B_2.png"}
    assert test_script.main([*common, "--results_dir", str(tmp_path / "b"), "--target_domain", "B"]) == 0
    names = {p.name.split("_", 1)[1] for p in (tmp_path / "b" / "one" / "test_latest" / "images").iterdir()}
    assert names == {"real.png", "ref.png", "fake_ref.png", "fake_B_1.png"}


def test_ref_dir_gives_input_i_reference_i(run, multidomain_dataroot, tmp_path, capsys):
    """--ref_dir: the references in sorted order, cycled, their styles in --target_domain."""
    refs = tmp_path / "refs"
    refs.mkdir()
    colours = {"a.png": (250, 10, 10), "b.png": (10, 250, 10)}
    for name, colour in colours.items():
        Image.new("RGB", (48, 40), colour).save(refs / name)
    common = ["--dataroot", str(multidomain_dataroot), "--model", "stargan_v2", "--name", "one", "--checkpoints_dir",
              str(run), "--gpu_ids", "-1", "--num_threads", "0", "--num_test", "3", "--ref_dir", str(refs),
              "--results_dir", str(tmp_path / "out")]
    assert test_script.main([*common, "--target_domain", "B"]) == 0
    shown = sorted((tmp_path / "out" / "one" / "test_latest" / "images").glob("*[0-9]_ref.png"))
    assert len(shown) == 3
    means = [np.asarray(Image.open(p), dtype=float).mean(axis=(0, 1)) for p in shown]
    expected = [colours["a.png"], colours["b.png"], colours["a.png"]]
    assert all(np.allclose(m, c, atol=2) for m, c in zip(means, expected)), means
    assert test_script.main(common) == 2
    assert one_line(capsys).endswith("--ref_dir needs --target_domain: the domain whose style the references give")


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_translator_takes_a_target_domain_and_a_seed_or_reference(run, multidomain_dataroot):
    translator = Translator.from_checkpoint(run / "one", device="cpu")
    photo = Image.open(sorted((multidomain_dataroot / "test" / "A").iterdir())[0])
    reference = Image.open(sorted((multidomain_dataroot / "test" / "B").iterdir())[0])

    def out(**choice):
        return np.asarray(translator.condition(**choice)(photo), dtype=float)

    assert np.array_equal(out(target_domain="B", seed=1), out(target_domain="B", seed=1))
    assert not np.array_equal(out(target_domain="B", seed=1), out(target_domain="A", seed=1))
    assert not np.array_equal(out(target_domain="B", reference=reference), out(target_domain="B", seed=1))
    with pytest.raises(UserError, match="target_domain, one of A, B"):
        translator.condition(seed=1)


def test_layout_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "d" / "train" / "only").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(tmp_path / "d" / "train" / "only" / "x.png")
    assert train_script.main(tiny_args("stargan_v2", tmp_path / "d", tmp_path, "bad")) == 2
    assert "domain" in one_line(capsys)
