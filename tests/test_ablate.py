"""scripts/ablate.py: a 2x2 grid of tiny runs, tested, on one page; a second call skips them."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from tests.test_browser import BROWSER, render

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ablate.py"
TINY_PIX2PIX = ["--model", "pix2pix", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "36",
                "--crop_size", "32", "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2",
                "--num_threads", "0", "--gpu_ids", "-1", "--no_html", "--print_freq", "1", "--display_id", "0"]


def load_ablate():
    spec = importlib.util.spec_from_file_location("ablate_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grid_is_every_combination_and_names_are_folders(capsys):
    ablate = load_ablate()
    configs = ablate.parse_grid(["norm=batch,instance", "--lambda_L1=0,100", "no_dropout=true,false"])
    assert len(configs) == 8 and configs[0] == {"norm": "batch", "lambda_L1": "0", "no_dropout": "true"}
    assert ablate.run_name(configs[0]) == "norm-batch_lambda_L1-0_no_dropout-true"
    assert ablate.config_flags(configs[1]) == ["--norm", "batch", "--lambda_L1", "0"]
    assert ablate.main(["--name", "x", "--grid", "norm"]) == 2
    # No values, two configurations that would share a folder, a grid with a preset: one error line each.
    for argv, message in [(["--grid", "norm=,"], "has no values"),
                          (["--grid", "norm=batch,batch", "--", "--dataroot", "x"], "norm-batch come out twice"),
                          (["--preset", "seed_study", "--grid", "norm=batch"], "--grid and --preset")]:
        capsys.readouterr()
        assert ablate.main(["--name", "x", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    # Flags after -- override the preset's: argparse keeps the last value, and so does the runner.
    assert ablate.flag_value(["--gpu_ids", "-1", "--model", "pix2pix", "--gpu_ids=0"], "--gpu_ids") == "0"
    assert ablate.changed_flags(["--lr", "1", "--no_flip"], ["--lr", "2"]) == ["--lr 1 -> 2", "--no_flip (on) -> (unset)"]


def test_two_by_two_study_writes_one_page_and_resumes(aligned_dataroot, tmp_path, capsys):
    ablate = load_ablate()
    argv = ["--name", "tiny", "--grid", "normG=batch,instance", "--grid", "lambda_GAN=0,1",
            "--checkpoints_dir", str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "results"),
            "--", "--dataroot", str(aligned_dataroot), *TINY_PIX2PIX]
    assert ablate.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("[tiny] training ") == 4 and out.count("[tiny] testing ") == 4 and "on val" in out
    page = tmp_path / "results" / "tiny" / "index.html"
    text = page.read_text()
    rows = re.findall(r'<tr class="row">\s*<td>([^<]+)</td>', text)
    assert rows[:4] == ["normG-batch_lambda_GAN-0", "normG-batch_lambda_GAN-1",
                        "normG-instance_lambda_GAN-0", "normG-instance_lambda_GAN-1"]
    assert text.count("★") == 3  # one best per metric: l1, psnr, ssim
    assert re.search(r"\d\.\d+ ± \d\.\d+", text)
    assert (tmp_path / "results" / "tiny" / "losses.png").stat().st_size > 1000
    markdown = (tmp_path / "results" / "tiny" / "results.md").read_text().splitlines()
    assert markdown[2].startswith("| configuration | l1 | psnr | ssim |") and len(markdown) == 16
    assert sum(line.count("**") for line in markdown[:8]) == 6  # the 3 best cells in bold
    # Then the 3 others against the first, image by image, from test.py's per-image scores.
    assert markdown[9].startswith("Image by image, against normG-batch_lambda_GAN-0")
    assert len(re.findall(r"better on [0-4]/4; [+-]\d", "\n".join(markdown[13:]))) == 9
    assert "Image by image, against normG-batch_lambda_GAN-0" in text
    # The runs without D log G_L1 only: the figure still has D's panels from the others.
    assert text.count("fake_B") >= 4
    # Again: nothing is trained or tested twice, the page is rewritten.
    assert ablate.main(argv) == 0
    out = capsys.readouterr().out
    assert "[tiny] training " not in out and "[tiny] testing " not in out and "page:" in out
    # Changed flags after --: the finished runs no longer match them, and nothing is mixed up.
    assert ablate.main([*argv, "--lr", "0.001"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was trained with other flags (--lr (unset) -> 0.001)" in err[0]
    if BROWSER is None:
        pytest.skip("chromium not installed")
    seen = render(page, tmp_path / "profile")
    assert seen["rows"] >= 8 and seen["images"] and all(i["ok"] for i in seen["images"])


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
def test_each_configuration_under_torchrun(aligned_dataroot, tmp_path, capsys):
    import torch

    ablate = load_ablate()
    argv = ["--name", "ddp", "--grid", "lambda_GAN=1", "--nproc_per_node", "2",
            "--checkpoints_dir", str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "results"),
            "--", "--dataroot", str(aligned_dataroot), *TINY_PIX2PIX]
    assert ablate.main(argv) == 0
    assert "[ddp] training lambda_GAN-1 in 2 processes" in capsys.readouterr().out
    state = torch.load(tmp_path / "ckpt" / "ddp" / "lambda_GAN-1" / "latest_checkpoint.pth", weights_only=True)
    assert state["world_size"] == 2
    assert (tmp_path / "results" / "ddp" / "runs" / "lambda_GAN-1" / "val_latest" / "metrics.json").is_file()
    assert ablate.main([*argv[:6], "--jobs", "2", *argv[6:]]) == 2
    assert capsys.readouterr().err.startswith("error: --nproc_per_node and --jobs")


def test_presets_are_valid_train_flags_and_share_their_baseline():
    from options import parse_options

    ablate = load_ablate()
    for name, preset in ablate.PRESETS.items():
        baselines = set()
        for experiment, entries in preset.experiments.items():
            assert len(entries) >= 2 and len({ablate.run_name(c) for _, c in entries}) == len(entries), experiment
            for label, config in entries:
                opt = parse_options([*preset.flags, *ablate.config_flags(config), "--dataroot", "x"], is_train=True)
                assert opt.model == "pix2pix" and opt.batch_size >= 1
                if "(baseline)" in label:
                    baselines.add(ablate.run_name(config))
        assert baselines == {"default"}, name  # one run, shown in every experiment
    paper = parse_options([*ablate.PRESETS["seed_study_paper"].flags, "--dataroot", "x"], is_train=True)
    assert (paper.netG, paper.crop_size, paper.n_epochs + paper.n_epochs_decay) == ("unet_256", 256, 200)


def test_loss_curves_of_a_resumed_run_do_not_go_back(tmp_path):
    from reporting.ablation_page import RunResult

    rows = [{"epoch_frac": 1.5, "G_L1": 3.0}, {"epoch_frac": 2.0, "G_L1": 2.0},  # then stopped and resumed at 1.5
            {"epoch_frac": 1.5, "G_L1": 2.9}, {"epoch_frac": 2.0, "G_L1": 1.9}]
    log = "\n".join(json.dumps(r) for r in rows) + '\n{"epoch_frac": 2.5, "G_'  # a line cut short by a crash
    (tmp_path / "loss_log.jsonl").write_text(log)
    run = RunResult("x", {}, tmp_path, tmp_path / "test")
    assert [(r["epoch_frac"], r["G_L1"]) for r in run.history()] == [(1.5, 2.9), (2.0, 1.9)]


def test_faithful_study_compares_accumulation_forms_and_spectral_norm_placements():
    from options import parse_options

    ablate = load_ablate()
    preset = ablate.PRESETS["faithful_study"]
    built = {experiment: [parse_options([*preset.flags, *ablate.config_flags(c), "--dataroot", "x"], is_train=True)
                          for _, c in entries] for experiment, entries in preset.experiments.items()}
    assert [o.grad_accum_mode for o in built["grad_accum_mode"]] == ["interleaved", "exact"]
    assert [o.spectral_norm_D for o in built["spectral_norm_D"]] == ["none", "sngan", "spade"]
    assert all(o.grad_accum_steps == 4 and o.norm == "instance" for runs in built.values() for o in runs)
    # The same comparison as a grid: every combination.
    grid = ablate.parse_grid(["grad_accum_mode=interleaved,exact", "spectral_norm_D=sngan,spade"])
    assert len(grid) == 4 and {"grad_accum_mode": "exact", "spectral_norm_D": "spade"} in grid
