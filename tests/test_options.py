"""Options: reference flags and defaults, model defaults, old aliases, saved options."""

import json

import pytest

from options import parse_options, save_options
from util.errors import UserError


def parse(*args, is_train=True):
    return parse_options(["--dataroot", "d", *args], is_train=is_train)


def test_reference_defaults_for_cycle_gan():
    opt = parse("--model", "cycle_gan")
    assert (opt.netG, opt.norm, opt.no_dropout, opt.gan_mode) == ("resnet_9blocks", "instance", True, "lsgan")
    assert (opt.lambda_A, opt.lambda_B, opt.lambda_identity, opt.pool_size) == (10.0, 10.0, 0.5, 50)
    assert (opt.load_size, opt.crop_size, opt.lr, opt.beta1) == (286, 256, 0.0002, 0.5)
    assert (opt.n_epochs, opt.n_epochs_decay, opt.dataset_mode) == (100, 100, "unaligned")
    assert opt.size_multiple == 4


def test_pix2pix_paper_defaults():
    opt = parse("--model", "pix2pix")
    assert (opt.netG, opt.norm, opt.dataset_mode, opt.gan_mode, opt.pool_size) == (
        "unet_256", "batch", "aligned", "vanilla", 0)
    assert opt.lambda_L1 == 100.0 and opt.no_dropout is False
    assert opt.size_multiple == 256


def test_command_line_beats_model_defaults():
    opt = parse("--model", "pix2pix", "--netG", "unet_128", "--norm", "instance")
    assert (opt.netG, opt.norm, opt.size_multiple) == ("unet_128", "instance", 128)


def test_old_flags_and_aliases():
    opt = parse("--niter", "3", "--niter_decay=4", "--gpu_ids", "-1", "--display_id", "0")
    assert (opt.n_epochs, opt.n_epochs_decay, opt.gpu_ids, opt.display_id) == (3, 4, [], 0)
    assert parse("--gpu_ids", "0,1").gpu_ids == [0, 1]
    assert parse().gpu_ids is None  # automatic choice
    test_opt = parse("--how_many", "7", is_train=False)
    assert test_opt.num_test == 7 and test_opt.phase == "test"


def test_test_options_defaults():
    opt = parse("--model", "pix2pix", is_train=False)
    assert opt.num_test is None  # every image, not the reference's silent 50
    assert opt.load_size == opt.crop_size == 256
    assert opt.serial_batches and opt.no_flip


@pytest.mark.parametrize("args, needle", [
    (["--model", "nope"], "available: bicycle_gan, colorization, cut, cycle_gan, pix2pix, pix2pix3d"),
    (["--dataset_mode", "nope"], "available: aligned"),
    (["--netG", "resnet_7blocks"], "resnet_9blocks"),
    (["--norm", "group"], "instance"),
    (["--gan_mode", "bce"], "lsgan"),
    (["--name", "../escape"], "plain folder name"),
    (["--name", "a/b"], "plain folder name"),
    (["--gpu_ids", "x"], "comma-separated"),
])
def test_bad_values_are_user_errors(args, needle):
    with pytest.raises(UserError, match=None) as info:
        parse(*args)
    assert needle in str(info.value)


def test_missing_dataroot():
    with pytest.raises(UserError, match="--dataroot"):
        parse_options([], is_train=True)


def test_test_model_is_for_testing_only():
    with pytest.raises(UserError, match="test.py only"):
        parse("--model", "test")
    assert parse("--model", "test", "--model_suffix", "_A", is_train=False).dataset_mode == "single"


def test_help_lists_models_and_dataset_modes(capsys):
    with pytest.raises(SystemExit) as info:
        parse_options(["--help"], is_train=True)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "cycle_gan" in out and "pix2pix" in out and "template" in out
    assert "aligned" in out and "unaligned" in out and "single" in out


def plugin_parsers():
    """(script, model, dataset mode, parser) for every model and dataset mode, in both scripts."""
    from data import DATASETS
    from models import MODELS
    from options.base_options import build_parser
    for is_train in (True, False):
        for model in MODELS.names():
            if is_train and model == "test":
                continue
            for mode in DATASETS.names():
                yield is_train, model, mode, build_parser(is_train, ["--model", model, "--dataset_mode", mode])


def test_help_says_first_how_to_see_every_flag_and_groups_plugins_flags(capsys):
    from options.base_options import build_parser
    common = {is_train: {a.dest for a in build_parser(is_train, ["--model", "template", "--dataset_mode",
                                                                "template"])._actions} for is_train in (True, False)}
    for is_train, model, mode, parser in plugin_parsers():
        script = "train.py" if is_train else "test.py"
        first_lines = "\n".join(parser.format_help().splitlines()[:10])
        assert f"python {script} --model MODEL [--dataset_mode MODE] --help" in " ".join(first_lines.split())
        assert f"--model {model} and --dataset_mode {mode}" in " ".join(first_lines.split())
        groups = {a.dest: g.title for g in parser._action_groups for a in g._group_actions}
        for action in parser._actions:  # a flag the plugins add sits in the group of the one that reads it
            if action.dest not in common[is_train] and action.help != "==SUPPRESS==":
                assert groups[action.dest] in (f"flags of --model {model}", f"flags of --dataset_mode {mode}"), \
                    (script, model, mode, action.dest)
    with pytest.raises(SystemExit):
        parse_options(["--model", "pix2pix", "--help"], is_train=True)
    out = capsys.readouterr().out
    assert out.index("flags of --model pix2pix:") < out.index("--lambda_L1")
    for flag in ("--lambda_L1", "--lambda_feat", "--lambda_perceptual", "--vgg_weights"):
        assert flag in out


def test_every_flag_shows_one_default_in_help():
    for _, model, mode, parser in plugin_parsers():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.help and action.help != "==SUPPRESS==":
                text = formatter._expand_help(action)
                assert text.count("(default") <= 1 and "depends on the model" not in text, (model, mode, text)
    best = next(a for a in parser_for("cycle_gan")._actions if a.dest == "best_metric")
    assert parser_for("cycle_gan")._get_formatter()._expand_help(best).endswith("(default: fid,psnr)")


def parser_for(model):
    from options.base_options import build_parser
    return build_parser(True, ["--model", model])


def test_saved_options_rebuild_architecture_for_testing(tmp_path):
    train_opt = parse("--model", "pix2pix", "--netG", "unet_128", "--ngf", "16", "--no_dropout",
                      "--norm", "instance", "--name", "run", "--checkpoints_dir", str(tmp_path))
    save_options(train_opt, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "train_opt.json").read_text())
    assert saved["netG"] == "unet_128" and saved["max_dataset_size"] is None  # inf stored as null
    assert "netG: unet_128" in (tmp_path / "run" / "train_opt.txt").read_text().replace("  ", "")
    test_opt = parse("--model", "pix2pix", "--name", "run", "--checkpoints_dir", str(tmp_path), is_train=False)
    assert (test_opt.netG, test_opt.ngf, test_opt.no_dropout, test_opt.norm) == ("unet_128", 16, True, "instance")
    override = parse("--model", "pix2pix", "--name", "run", "--checkpoints_dir", str(tmp_path), "--ngf", "32",
                     is_train=False)
    assert override.ngf == 32 and override.netG == "unet_128"


def test_seed_option():
    assert parse("--seed", "3").seed == 3
    assert parse().seed is None


def test_test_time_size_follows_training_unless_given(tmp_path):
    train_opt = parse("--model", "pix2pix", "--netG", "unet_128", "--load_size", "143", "--crop_size", "128",
                      "--name", "run", "--checkpoints_dir", str(tmp_path))
    save_options(train_opt, tmp_path / "run")
    common = ("--model", "pix2pix", "--name", "run", "--checkpoints_dir", str(tmp_path))
    test_opt = parse(*common, is_train=False)
    assert (test_opt.load_size, test_opt.crop_size) == (128, 128)
    test_opt = parse(*common, "--crop_size", "256", is_train=False)
    assert (test_opt.load_size, test_opt.crop_size) == (256, 256)
    test_opt = parse(*common, "--load_size", "300", is_train=False)
    assert (test_opt.load_size, test_opt.crop_size) == (300, 128)
    # Another model's saved run is not applied.
    other = parse("--model", "cycle_gan", "--name", "run", "--checkpoints_dir", str(tmp_path), is_train=False)
    assert (other.netG, other.crop_size) == ("resnet_9blocks", 256)


def test_no_import_circle_between_options_and_models():
    """options/ reads the plugins (their flags and choices); models/, data/, engine/ and util/
    never import options/: what both need (saved options, architecture keys) lives below.
    tests/test_import_graph.py checks the whole graph: no loop, no back-up arrow."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for package in ("models", "data", "engine", "util"):
        for path in (root / package).rglob("*.py"):
            assert not re.search(r"^\s*(from options\b|import options\b)", path.read_text(), re.M), path
    code = "import sys, models, data, engine; sys.exit('options' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0


def test_each_plugin_declares_its_architecture_keys(tmp_path):
    from models import MODELS
    from util.saved_options import ARCHITECTURE_KEYS

    assert MODELS.get("pix2pix").architecture_keys == ARCHITECTURE_KEYS
    assert "model_suffix" in MODELS.get("test").architecture_keys
    # test.py of --model test takes the suffix a saved run (e.g. a pretrained model) recorded
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train_opt.json").write_text('{"model": "test", "model_suffix": "_A", "netG": "unet_128"}')
    opt = parse_options(["--dataroot", "x", "--model", "test", "--name", "run", "--checkpoints_dir", str(tmp_path)],
                        is_train=False)
    assert (opt.model_suffix, opt.netG) == ("_A", "unet_128")
