"""The compatibility matrix, cell by cell: every registered model through every door and in
every mode (pix2cycle/compatibility.py computes which cells work and which are refused).

A cell that works is run on tiny networks (ngf/ndf 8, 32-64 px, one or two steps) and what
it produces is checked: weight files, result images and their sizes, metrics, pages. A
refused cell must stop before any work with one ``error:`` line that carries the reason the
table gives. The cells come from the registries, so a new plugin is tested the day it is
added. The torchrun column runs every model in one process group (one launch for all).
"""

from __future__ import annotations

import json
import math
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
from data import create_dataset, first_batch
from models import MODELS, create_model
from options import parse_options
from options.base_options import unused_option_reason
from pix2cycle import Translator, compatibility
from tests.conftest import REPO_ROOT, load_script
from tests.helpers import MATRIX_EXTENDED_MODELS, tiny_args
from util.errors import UserError

COLUMNS = compatibility.columns()
DOORS = [c for c in COLUMNS if c.group == "door"]
MODES = [c for c in COLUMNS if c.group == "mode" and c.name != "torchrun"]
NETWORKS = [c for c in COLUMNS if c.group in ("norm", "netG", "netD")]
MODEL_NAMES = compatibility.models()
TRAINABLE = [m for m in MODEL_NAMES if compatibility.cell(m, DOORS[0]) is None]


def cells(columns: list, value=lambda column: column.name, named=lambda column: column.name) -> list:
    """(model, column) parameters; the cells that run something (not a refusal) of
    MATRIX_EXTENDED_MODELS (but their train door) and of the compile column are in the
    extended group (torch.compile takes seconds to tens of seconds per cell)."""
    out = []
    for model in MODEL_NAMES:
        for column in columns:
            cheap = (model not in MATRIX_EXTENDED_MODELS or column.name == "train") and column.name != "compile" \
                or compatibility.cell(model, column) is not None
            out.append(pytest.param(model, value(column), id=f"{model}-{named(column)}",
                                    marks=() if cheap else pytest.mark.extended))
    return out


SHORT = ["--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2", "--no_html",
         "--display_freq", "100000", "--print_freq", "100000"]
OFFLINE_METRICS = "l1,psnr,ssim"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """dataset mode -> a tiny data folder in that layout."""
    make = load_script("make_demo_data").make_demo_dataset
    root = tmp_path_factory.mktemp("matrix_data")
    aligned = make(root / "aligned", "aligned", n_train=4, n_test=1, size=32, seed=5)  # the runs read 2 (SHORT)
    unaligned = make(root / "unaligned", "unaligned", n_train=2, n_test=1, size=32, seed=6)
    # Files named as pairs (<x>_A, <x>_B: the paired metrics score them) and a val split.
    for folder in [f for f in unaligned.iterdir() if f.is_dir()]:
        for image in folder.iterdir():
            image.rename(image.with_name(f"{image.stem}_{folder.name[-1]}{image.suffix}"))
    for side in "AB":
        shutil.copytree(unaligned / f"test{side}", unaligned / f"val{side}")
    volume = load_script("make_scientific_demo").make_volume_set(root / "volume", shape=(16, 16, 16), n_train=2,
                                                                 n_test=1, fmt=".npy")
    label = load_script("make_maps_labels").make_demo_labels(root / "label", n_train=2, n_test=1, size=32, seed=7)
    multidomain = load_script("make_multidomain").make_multidomain(unaligned, root / "multidomain", copy=True)
    shard = load_script("make_shards", folder="scripts").make_shards
    shards = {mode: Path(root / f"{mode}_shards") for mode in ("aligned", "unaligned")}
    for mode, out in shards.items():
        shard({"aligned": aligned, "unaligned": unaligned}[mode], out, shard_size=1)
    return {"aligned": aligned, "unaligned": unaligned, "colorization": unaligned, "volume": volume,
            "single": unaligned / "testA", "multidomain": multidomain, "label": label, "shards": shards}


dataset_mode = compatibility.dataset_mode


def model_args(model: str, data: dict, checkpoints: Path, name: str, *extra: str) -> list:
    """Tiny train.py flags for ``model`` (those of the model it tests, for --model test)."""
    args = tiny_args(run_model_of(model), data[dataset_mode(run_model_of(model))], checkpoints, name, *SHORT, *extra)
    args[args.index("--model") + 1] = model
    return args


def run_model_of(model: str) -> str:
    """The run a model's inference doors open: --model test reads another model's generator."""
    return "cycle_gan" if model == "test" else model


def phase_args(model: str) -> list:
    """test.py's --phase for the tiny data of the model's dataset mode."""
    return ["--phase", "testA"] if dataset_mode(model) == "colorization" else []


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def assert_refused_with(reason: str, run, capsys) -> None:
    """``run()`` fails with one error line carrying ``reason`` (a UserError or exit code 2)."""
    capsys.readouterr()
    try:
        code = run()
    except UserError as e:
        assert reason in str(e)
        return
    if isinstance(code, tuple):  # (exit code, what it printed) of a door that captures its output
        code, err = code[0], code[-1]
        assert code == 2 and err.startswith("error: ") and "\n" not in err.strip() and reason in err, err
        return
    assert code == 2
    assert reason in one_error_line(capsys)


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory) -> Path:
    """One tiny trained run per trainable model (the "train" door), under <checkpoints>/<model>; those of
    MATRIX_EXTENDED_MODELS are trained when a cell first needs them (``ensure_run``)."""
    checkpoints = tmp_path_factory.mktemp("matrix_runs")
    for model in TRAINABLE:
        if model not in MATRIX_EXTENDED_MODELS:
            ensure_run(model, data, checkpoints)
    return checkpoints


def ensure_run(model: str, data: dict, runs: Path) -> None:
    if model in TRAINABLE and not (runs / model / "latest_checkpoint.pth").is_file():
        assert train.main(model_args(model, data, runs, model, "--seed", "1")) == 0, model


def finite_weights(folder: Path, tag: str = "latest") -> dict:
    files = sorted(folder.glob(f"{tag}_net_*.pth"))
    assert files, f"no {tag}_net_*.pth in {folder}"
    states = {p.name: torch.load(p, weights_only=True) for p in files}
    for name, state in states.items():
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), name
    return states


def an_input(model: str, data: dict) -> Path:
    """A file the model's inference doors take."""
    mode = dataset_mode(run_model_of(model))
    folder = data[mode] / {"aligned": "test", "label": "test_label", "multidomain": "test/A"}.get(mode, "testA")
    return sorted(folder.iterdir())[0]


# ----------------------------------------------------------------------------- doors
def run_door(door: str, model: str, data: dict, runs: Path, tmp_path: Path, capsys):
    """Go through ``door`` with ``model``'s run; returns what the door produced, for the checks."""
    run = run_model_of(model)
    folder = runs / run
    if door != "train":
        ensure_run(run, data, runs)
    if door == "train":
        return train.main(model_args(model, data, tmp_path, "t"))
    if door in ("resume", "resume weights", "resume auto"):
        shutil.copytree(folder, tmp_path / "r")
        if door == "resume weights":
            for path in (tmp_path / "r").glob("*_checkpoint.pth"):
                path.unlink()
        before = finite_weights(tmp_path / "r")
        capsys.readouterr()
        auto = ["auto"] if door == "resume auto" else []
        code = train.main(model_args(model, data, tmp_path, "r", "--seed", "1", "--continue_train", *auto,
                                     "--n_epochs_decay", "1"))
        printed = capsys.readouterr()
        return code, before, printed.out, printed.err
    if door == "test.py":
        extra = ["--model", "test", "--model_suffix", "_A", "--dataset_mode", "single"] if model == "test" else []
        return test_script.main(["--dataroot", str(data[dataset_mode(run)]), "--name", run, "--model", run,
                                 "--checkpoints_dir", str(runs), "--results_dir", str(tmp_path / "results"),
                                 "--gpu_ids", "-1", "--num_threads", "0", "--metrics", "none",
                                 *phase_args(run), *extra])
    if door == "translate.py":
        return translate.main([str(an_input(model, data)), "--name", run, "--checkpoints_dir", str(runs),
                               "--out", str(tmp_path / "out"), "--gpu_ids", "-1"])
    if door == "Translator":
        translator = Translator.from_checkpoint(folder, device="cpu")
        image = Image.open(an_input(model, data))
        return image, translator(image)
    if door == "export hub":
        code = export.main(["--name", run, "--checkpoints_dir", str(runs), "--format", "hub",
                            "--out", str(tmp_path / "package")])
        if code:
            return code
        image = Image.open(an_input(model, data))
        # The package holds the weight average where the run has one (StarGAN v2 trains with EMA).
        ema = json.loads((tmp_path / "package" / "config.json").read_text())["ema"]
        return image, Translator.from_pretrained(tmp_path / "package", device="cpu")(image), \
            Translator.from_checkpoint(folder, device="cpu", use_ema=ema)(image)
    if door.startswith("export "):
        capsys.readouterr()
        code = export.main(["--name", run, "--checkpoints_dir", str(runs), "--format", door.split()[1],
                            "--out", str(tmp_path / "model.out")])
        printed = capsys.readouterr()
        return code, printed.out, printed.err
    if door == "ablate":
        ablate = load_ablate()
        flags = model_args(model, data, tmp_path, "unused")
        flags = [f for i, f in enumerate(flags) if f not in ("--name", "--checkpoints_dir")
                 and flags[i - 1] not in ("--name", "--checkpoints_dir")]
        return ablate.main(["--name", "study", "--grid", "lr=0.0002,0.0004", "--checkpoints_dir", str(tmp_path / "c"),
                            "--results_dir", str(tmp_path / "res"), "--metrics", "l1",
                            *(phase_args(model) or ["--phase", "test"]), "--", *flags])
    raise AssertionError(f"no runner for door {door}")


def load_ablate():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ablate_matrix", REPO_ROOT / "scripts" / "ablate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_door(door: str, model: str, result, tmp_path: Path) -> None:
    """What a door that works must have produced."""
    if door == "train":
        assert result == 0
        finite_weights(tmp_path / "t")
        assert (tmp_path / "t" / "latest_checkpoint.pth").is_file()
    elif door in ("resume", "resume weights", "resume auto"):
        code, before, out, _ = result
        assert code == 0
        full = door != "resume weights"
        assert ("resuming from" in out) == full and ("no full checkpoint" in out) == (not full)
        after = finite_weights(tmp_path / "r")
        assert any(not torch.equal(before[f][k], after[f][k]) for f in before for k in before[f]
                   if before[f][k].is_floating_point()), "resuming trained nothing"
    elif door == "test.py":
        assert result == 0
        (gallery,) = (tmp_path / "results").glob("*/*/index.html")
        images = list((gallery.parent / "images").iterdir())
        assert len(images) >= 2 and all(p.stat().st_size > 0 for p in images)
    elif door == "translate.py":
        assert result == 0
        (out,) = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
        assert out.stat().st_size > 0
    elif door == "Translator":
        image, translated = result
        assert translated.size == image.size
    elif door == "export hub":
        image, from_package, from_run = result
        assert from_package.size == image.size and from_package.tobytes() == from_run.tobytes()
        assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in (tmp_path / "package").iterdir()}
        config = json.loads((tmp_path / "package" / "config.json").read_text())
        if unused_option_reason(model, dataset_mode(model), "netG"):  # networks of its own: named by class
            translator = Translator.from_pretrained(tmp_path / "package")
            assert config["netG"] == type(translator.model.unwrap(translator.net)).__name__
    elif door.startswith("export "):
        code, out, _ = result
        assert code == 0 and (tmp_path / "model.out").is_file()
        assert "largest difference to PyTorch" in out
    elif door == "ablate":
        assert result == 0
        assert (tmp_path / "res" / "study" / "index.html").is_file()
        galleries = sorted((tmp_path / "res" / "study" / "runs").glob("*/*/index.html"))
        assert len(galleries) == 2  # both configurations trained and tested
        for gallery in galleries:
            assert list((gallery.parent / "images").iterdir())


@pytest.mark.parametrize("model,door", cells(DOORS))
def test_door(model, door, data, runs, tmp_path, capsys):
    column = next(c for c in DOORS if c.name == door)
    reason = compatibility.cell(model, column)
    if reason is not None:
        assert_refused_with(reason, lambda: run_door(door, model, data, runs, tmp_path, capsys), capsys)
        return
    check_door(door, model, run_door(door, model, data, runs, tmp_path, capsys), tmp_path)


# ----------------------------------------------------------------------------- modes
MODE_EXTRA = {"compile": ["--compile_backend", "eager"], "validation": ["--val_metrics", OFFLINE_METRICS]}


@pytest.mark.parametrize("model,mode", cells(MODES))
def test_mode(model, mode, data, tmp_path, capsys):
    column = next(c for c in MODES if c.name == mode)
    reason = compatibility.cell(model, column)
    # The webdataset mode reads the model's data as shards (the data fixture makes them).
    shards = ["--dataroot", str(data["shards"][dataset_mode(model)])] if mode == "webdataset" and reason is None else []
    args = model_args(model, data, tmp_path, "m", *column.flags, *MODE_EXTRA.get(mode, []), *shards)
    if reason is not None:
        assert_refused_with(reason, lambda: train.main(args), capsys)
        assert not (tmp_path / "m").exists()  # refused before any work
        return
    assert train.main([*args, "--seed", "1"]) == 0
    states = finite_weights(tmp_path / "m")
    out = capsys.readouterr().out
    if mode == "ema":
        assert any(name.endswith("_ema.pth") for name in states)
    if mode == "validation":
        best = json.loads((tmp_path / "m" / "best.json").read_text())
        assert math.isfinite(best["value"]) and best["metric"].split("_")[0] in OFFLINE_METRICS.split(",")
    if mode == "accumulation":
        assert "x 2 accumulated steps" in out
    # The run goes on through test.py in the same mode (the average with --use_ema).
    test_flags = {"compile": ["--compile", "--compile_backend", "eager"], "amp": ["--amp", "bf16"],
                  "ema": ["--use_ema"]}.get(mode, [])
    assert test_script.main(["--dataroot", str(data[dataset_mode(model)]), "--name", "m", "--model", model,
                             "--checkpoints_dir", str(tmp_path), "--results_dir", str(tmp_path / "res"),
                             "--gpu_ids", "-1", "--num_threads", "0", "--metrics", "none", *phase_args(model),
                             *test_flags]) == 0
    assert list((tmp_path / "res" / "m").glob("*/images/*"))



# ----------------------------------------------------------------------------- networks
def network_model(model: str, column, data: dict, tmp_path: Path):
    """The model built with the column's network (at its smallest size), and a batch for it."""
    argv = model_args(model, data, tmp_path, "n", *column.flags)
    if column.group == "netD" and "--n_layers_D" in argv and column.name != "n_layers":
        del argv[argv.index("--n_layers_D"):argv.index("--n_layers_D") + 2]
    is_train = model != "test"
    if not is_train:
        argv = ["--dataroot", str(data["single"]), "--model", "test", "--name", "n", "--checkpoints_dir",
                str(tmp_path), "--gpu_ids", "-1", "--num_threads", "0", *column.flags]
    opt = parse_options(argv, is_train=is_train)
    size = max(opt.min_input_size, opt.size_multiple, 32)
    side = max(32, opt.size_multiple)  # 3-D: the basic PatchGAN needs sides of 24
    if opt.dataset_mode == "volume":
        opt.patch_size = ",".join([str(side)] * 3)
    else:
        opt.crop_size = opt.load_size = size
    model_obj = create_model(opt)
    if opt.dataset_mode == "volume" and opt.size_multiple > 64:
        return model_obj, None  # a 256^3 patch and more: built, not run on a CPU
    batch = first_batch(create_dataset(opt), opt.batch_size) if opt.dataset_mode != "volume" else None
    if batch is None and opt.dataset_mode == "volume":
        batch = {"A": torch.rand(1, opt.input_nc, side, side, side) * 2 - 1,
                 "B": torch.rand(1, opt.output_nc, side, side, side) * 2 - 1, "A_paths": ["a"], "B_paths": ["b"]}
    if model_obj.initializes_on_data():
        model_obj.data_dependent_initialize(batch)
    return model_obj, batch


@pytest.mark.parametrize("model,column", cells(NETWORKS, value=lambda column: column,
                                          named=lambda column: f"{column.group}-{column.name}"))
def test_network(model, column, data, tmp_path, capsys):
    """The model takes the network (one training step changes its weights; the test model runs
    it forward), or refuses it naming the option and the model's reason."""
    reason = compatibility.cell(model, column)
    if reason is not None:
        assert_refused_with(reason, lambda: network_model(model, column, data, tmp_path), capsys)
        return
    model_obj, batch = network_model(model, column, data, tmp_path)
    nets = model_obj.networks()
    assert nets and all(sum(p.numel() for p in net.parameters()) > 0 for net in nets.values())
    if batch is None:
        return
    if model == "test":
        model_obj.set_input(batch)
        model_obj.test()
        assert torch.isfinite(model_obj.fake).all()
        return
    model_obj.setup(model_obj.opt)
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in nets.items()}
    model_obj.train_step(batch)
    assert all(math.isfinite(v) for v in model_obj.get_current_losses().values())
    for name, net in nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), f"net{name} did not train"


# ----------------------------------------------------------------------------- torchrun
@pytest.mark.extended  # tens of seconds; tests/test_distributed.py keeps a 2-process run in the default suite
def test_torchrun_every_model_in_one_process_group(data, tmp_path):
    """Each trainable model for two steps in 2 processes (gloo), one launch for all; the norm
    refused on CPU processes is refused on every rank."""
    torchrun_models([m for m in TRAINABLE if m not in MATRIX_EXTENDED_MODELS], data, tmp_path)


@pytest.mark.extended
def test_torchrun_extended_rows(data, tmp_path):
    torchrun_models([m for m in TRAINABLE if m in MATRIX_EXTENDED_MODELS], data, tmp_path)


def torchrun_models(models: list, data: dict, tmp_path: Path) -> None:
    # bicycle_gan leaves out short batches of its 2 halves: 2 processes need 4 images.
    more = {"bicycle_gan": ["--max_dataset_size", "4"]}
    jobs = {model: model_args(model, data, tmp_path, model, "--seed", "1", *more.get(model, [])) for model in models}
    refused = [m for m in models if m == "pix2pix"]
    jobs.update({f"{m}_syncbatch": model_args(m, data, tmp_path, f"{m}_syncbatch", "--norm", "syncbatch")
                 for m in refused})
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps(jobs))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(REPO_ROOT / "tests" / "matrix_torchrun.py"), str(spec)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results_rank0.json").read_text())
    for model in models:
        expected = compatibility.cell(model, next(c for c in COLUMNS if c.name == "torchrun"))
        if expected is None:
            assert results[model] == "ok", (model, results[model])
            state = torch.load(tmp_path / model / "latest_checkpoint.pth", weights_only=True)
            assert state["world_size"] == 2
        else:
            assert expected in results[model]
    norm = next(c for c in COLUMNS if c.group == "norm" and c.name == "syncbatch")
    for name in refused:
        assert compatibility.torchrun_cell(name, norm) is not None
        assert "syncbatch" in results[f"{name}_syncbatch"] and "CPU" in results[f"{name}_syncbatch"]


# ----------------------------------------------------------------------------- the page
def test_the_docs_table_is_the_tested_table():
    page = (REPO_ROOT / "docs" / "compatibility.md").read_text()
    assert page == compatibility.markdown_table(), \
        "docs/compatibility.md is out of date: run python scripts/compatibility_table.py"


def test_every_registered_model_and_network_is_a_row_or_a_column():
    from models.networks import DISCRIMINATORS, GENERATORS, NORM_LAYERS

    assert set(MODEL_NAMES) == set(MODELS.names())
    for group, table in (("netG", GENERATORS), ("netD", DISCRIMINATORS), ("norm", NORM_LAYERS)):
        assert {c.name for c in COLUMNS if c.group == group} == set(table.names())
