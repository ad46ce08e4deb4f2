"""Model packages: export.py --format hub, the model card, Translator.from_pretrained (a
folder, and a Hub id from an offline cache), translate.py --model_dir, and the upload
command up to the network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import export
import test as test_script
import train
import translate
from pix2cycle import Translator
from tests.conftest import REPO_ROOT
from tests.helpers import tiny_args
from util.errors import UserError

SHORT = ["--n_epochs", "1", "--n_epochs_decay", "0", "--no_html", "--display_freq", "100000",
         "--print_freq", "100000"]


@pytest.fixture(scope="module")
def run(aligned_dataroot, tmp_path_factory) -> dict:
    """A tiny pix2pix run with a weight average and validation, tested with metrics, packaged."""
    root = tmp_path_factory.mktemp("hub_run")
    args = tiny_args("pix2pix", aligned_dataroot, root / "checkpoints", "maps_tiny", *SHORT, "--netG", "unet_32",
                     "--load_size", "32", "--crop_size", "32", "--ema_decay", "0.9", "--val_freq", "1",
                     "--val_metrics", "l1", "--seed", "1")
    assert train.main(args) == 0
    assert test_script.main(["--dataroot", str(aligned_dataroot), "--name", "maps_tiny", "--model", "pix2pix",
                             "--checkpoints_dir", str(root / "checkpoints"), "--results_dir", str(root / "results"),
                             "--gpu_ids", "-1", "--num_threads", "0", "--metrics", "l1,psnr"]) == 0
    package = root / "package"
    assert export.main(["--name", "maps_tiny", "--checkpoints_dir", str(root / "checkpoints"), "--format", "hub",
                        "--out", str(package), "--results_dir", str(root / "results")]) == 0
    image = sorted((aligned_dataroot / "test").iterdir())[0]
    return {"root": root, "package": package, "run": root / "checkpoints" / "maps_tiny", "data": aligned_dataroot,
            "image": image}


def test_package_layout_and_config(run):
    package = run["package"]
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in package.iterdir()}
    config = json.loads((package / "config.json").read_text())
    assert config["format"] == "pix2cycle" and config["format_version"] == 1
    assert (config["model"], config["netG"], config["ngf"], config["norm"]) == ("pix2pix", "unet_32", 8, "batch")
    assert config["generator_channels"] == [3, 3] and config["direction"] == "AtoB"
    assert config["preprocess"]["crop_size"] == 32 and config["ema"] is True  # the run has a weight average
    assert "dataroot" not in config["options"]  # no paths of the author's machine
    from safetensors.torch import load_file

    ema = load_file(run["run"] / "latest_net_G_ema.safetensors")
    packaged = load_file(package / "model.safetensors")
    assert packaged.keys() == ema.keys() and all(torch.equal(packaged[k], ema[k]) for k in ema)


def test_card_renders_as_markdown_with_its_facts(run):
    markdown = pytest.importorskip("markdown")
    text = (run["package"] / "README.md").read_text()
    front, body = text.split("---\n")[1], text.split("---\n", 2)[2]
    assert "library_name: pix2cycle" in front and "license: FILL-IN-A-LICENSE" in front and "- pix2pix" in front
    html = markdown.markdown(body, extensions=["tables", "fenced_code"])
    for heading in ("Data", "Training", "Metrics", "Samples", "How to use"):
        assert f"<h2>{heading}</h2>" in html
    assert html.count("<table>") >= 2  # the options and test.py's metrics
    metrics = json.loads(next((run["root"] / "results" / "maps_tiny").glob("*/metrics.json")).read_text())
    assert f"{metrics['metrics']['psnr']['mean']:.4g}" in html
    best = json.loads((run["run"] / "best.json").read_text())
    assert f"l1 {best['value']:.4g} at epoch {best['epoch']}" in html
    images = [line.split('src="')[1].split('"')[0] for line in html.split("<img")[1:]]
    assert 2 <= len(images) <= 3 and all((run["package"] / src).is_file() for src in images)
    assert "Translator.from_pretrained" in html and "--model_dir" in html


def test_from_pretrained_is_bit_identical_and_never_unpickles(run, monkeypatch):
    image = Image.open(run["image"]).crop((0, 0, 45, 37))  # any size: padded and cropped back
    expected = Translator.from_checkpoint(run["run"], device="cpu", use_ema=True)(image)

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_pickle)
    translator = Translator.from_pretrained(run["package"], device="cpu")
    assert translator(image).tobytes() == expected.tobytes()


def test_translate_model_dir_matches_the_translator(run, tmp_path):
    assert translate.main([str(run["image"]), "--model_dir", str(run["package"]), "--out", str(tmp_path),
                           "--gpu_ids", "-1"]) == 0
    expected = Translator.from_pretrained(run["package"], device="cpu")(Image.open(run["image"]).convert("RGB"))
    (out,) = tmp_path.iterdir()
    assert Image.open(out).size == expected.size


def _hub_cache(home: Path, repo_id: str, package: Path) -> None:
    """The Hub's cache layout (huggingface_hub's file_download): refs/main names a snapshot."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(package, repo / "snapshots" / commit)


def test_hub_id_from_the_offline_cache_in_process(run, tmp_path, monkeypatch):
    """Translator.from_pretrained("user/name") through snapshot_download, offline, from a cache
    in the test's HF_HOME (huggingface_hub reads its settings at import: set here as it would)."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants as hf_constants

    _hub_cache(tmp_path / "hf", "someone/maps-tiny", run["package"])
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    image = Image.open(run["image"])
    expected = Translator.from_pretrained(run["package"], device="cpu")(image)
    assert Translator.from_pretrained("someone/maps-tiny", device="cpu")(image).tobytes() == expected.tobytes()
    with pytest.raises(UserError, match="cannot get someone/absent from the Hugging Face Hub"):
        Translator.from_pretrained("someone/absent")


@pytest.mark.extended
def test_hub_id_from_the_offline_cache(run, tmp_path):
    """translate.py --model_dir user/name in a process started with HF_HOME and HF_HUB_OFFLINE=1."""
    pytest.importorskip("huggingface_hub")
    _hub_cache(tmp_path / "hf", "someone/maps-tiny", run["package"])
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "translate.py", str(run["image"]), "--model_dir", "someone/maps-tiny",
                           "--out", str(tmp_path / "out"), "--gpu_ids", "-1"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    translate.main([str(run["image"]), "--model_dir", str(run["package"]), "--out", str(tmp_path / "local"),
                    "--gpu_ids", "-1"])
    (got,), (local,) = (tmp_path / "out").iterdir(), (tmp_path / "local").iterdir()
    assert got.read_bytes() == local.read_bytes()
    missing = subprocess.run([sys.executable, "translate.py", str(run["image"]), "--model_dir", "someone/absent"],
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and missing.stderr.startswith("error: cannot get someone/absent")
    assert "Traceback" not in missing.stderr


def test_user_mistakes_are_one_line(run, tmp_path, capsys, monkeypatch):
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants as hf_constants

    base = ["--name", "maps_tiny", "--checkpoints_dir", str(run["root"] / "checkpoints"), "--format", "hub"]
    cases = [
        (["--out", str(tmp_path / "a"), "--push_to_hub", "noslash"], "--push_to_hub wants USER/NAME"),
        (["--out", str(run["package"])], "exists and is not empty"),
        (["--out", str(tmp_path / "b"), "--bn_stats", "running"], "--bn_stats: not used with --format hub"),
        (["--out", str(tmp_path / "c"), "--format", "onnx", "--push_to_hub", "a/b"], "for --format hub only"),
    ]
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))
    monkeypatch.setattr(hf_constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no_tokens"))
    cases.append((["--out", str(tmp_path / "d"), "--push_to_hub", "someone/maps"], "needs a Hugging Face token"))
    for extra, message in cases:
        capsys.readouterr()
        assert export.main(base + extra) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err, (extra, err)
    assert not any((tmp_path / x).exists() for x in "abcd")  # refused before any work
    assert translate.main([str(run["image"]), "--model_dir", str(run["package"]), "--epoch", "3"]) == 2
    assert "--epoch: for a run folder" in capsys.readouterr().err
    with pytest.raises(Exception, match="translates AtoB"):
        Translator.from_pretrained(run["package"], direction="BtoA")


def test_cycle_gan_packages_either_direction(unaligned_dataroot, tmp_path):
    """G_B of a CycleGAN run (channels swapped where A and B differ) packages and loads as the run's BtoA."""
    checkpoints = tmp_path / "checkpoints"
    assert train.main(tiny_args("cycle_gan", unaligned_dataroot, checkpoints, "cyc", *SHORT, "--max_dataset_size",
                                "2", "--output_nc", "1", "--lambda_identity", "0")) == 0
    image = Image.open(sorted((unaligned_dataroot / "testB").iterdir())[0]).convert("L")
    for direction, generator in (("AtoB", "G_A"), ("BtoA", "G_B")):
        out = tmp_path / direction
        assert export.main(["--name", "cyc", "--checkpoints_dir", str(checkpoints), "--format", "hub", "--out",
                            str(out), "--direction", direction]) == 0
        config = json.loads((out / "config.json").read_text())
        assert (config["generator"], config["direction"]) == (generator, direction)
        source = image if direction == "BtoA" else image.convert("RGB")
        expected = Translator.from_checkpoint(checkpoints / "cyc", device="cpu", direction=direction)(source)
        assert Translator.from_pretrained(out, device="cpu")(source).tobytes() == expected.tobytes()
    assert "--direction AtoB" in (tmp_path / "BtoA" / "README.md").read_text()  # how to package the other one


def test_a_package_naming_outside_code_is_refused(run, tmp_path):
    """config.json is data: a plugin path in its options is refused unless trusted, nothing imported."""
    package = tmp_path / "package"
    shutil.copytree(run["package"], package)
    config = json.loads((package / "config.json").read_text())
    config["options"]["netG"] = "not_installed_lab.nets.Generator"
    (package / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="trust_remote_code"):
        Translator.from_pretrained(package, device="cpu")
    assert "not_installed_lab" not in sys.modules
