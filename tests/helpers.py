"""Small shared helpers for the tests: tiny, fast option sets for every model."""

from __future__ import annotations

from pathlib import Path

# Small networks and images so that a training step takes milliseconds on a CPU.
TINY = ["--ngf", "8", "--ndf", "8", "--num_threads", "0", "--gpu_ids", "-1", "--display_id", "0",
        "--print_freq", "1", "--display_freq", "1", "--update_html_freq", "1"]
TINY_BY_MODEL = {
    "pix2pix": ["--netG", "unet_128", "--load_size", "140", "--crop_size", "128"],
    "cycle_gan": ["--netG", "resnet_6blocks", "--load_size", "36", "--crop_size", "32"],
    "template": ["--netG", "resnet_6blocks", "--load_size", "36", "--crop_size", "32"],
    # 16^3 patches of 1-channel volumes (tests/conftest.py volume_dataroot).
    "pix2pix3d": ["--netG", "unet_16", "--netD", "n_layers", "--n_layers_D", "2", "--patch_size", "16",
                  "--ngf", "4", "--ndf", "4", "--input_nc", "1", "--output_nc", "1", "--patches_per_volume", "1"],
    "colorization": ["--netG", "resnet_6blocks", "--load_size", "36", "--crop_size", "32", "--phase", "trainA"],
    "cut": ["--netG", "resnet_6blocks", "--load_size", "36", "--crop_size", "32"],
    # Label maps of tests/conftest.py label_dataroot (6 classes), G1 with 2 downsamplings.
    "pix2pixhd": ["--label_nc", "6", "--n_downsample_global", "2", "--n_blocks_global", "1", "--load_size", "36",
                  "--crop_size", "32"],
    # 5 classes and dontcare, SPADE's shared conv 16 wide (128 in the paper).
    # 64 px: G's first grid is crop_size / 32, and its batch norm needs more than one value.
    "spade": ["--label_nc", "5", "--contain_dontcare_label", "--spade_hidden", "16", "--load_size", "64",
              "--crop_size", "64"],
    "bicycle_gan": ["--netG", "unet_32", "--load_size", "36", "--crop_size", "32", "--nef", "8"],
    "stargan_v2": ["--load_size", "36", "--crop_size", "32", "--latent_dim", "4", "--style_dim", "8",
                   "--mapping_hidden", "16"],
}
# Training-only flags of the tiny settings (test.py does not take them).
TINY_TRAIN_BY_MODEL = {"cut": ["--num_patches", "16", "--netF_nc", "16"], "stargan_v2": ["--batch_size", "2"],
                       "pix2pixhd": ["--lambda_vgg", "0"], "spade": ["--lambda_vgg", "0"]}  # no VGG weights offline (its own test has them)
PAIRED = {"pix2pix", "template", "bicycle_gan"}
WITHOUT_D = {"template"}  # --ndf is an error there (it has no discriminator)
VOLUMES = {"pix2pix3d"}
LABELS = {"pix2pixhd", "spade"}  # --dataset_mode label
MULTIDOMAIN = {"stargan_v2"}  # --dataset_mode multidomain (tests/conftest.py multidomain_dataroot)
# New model families: their matrix cells that train or run, but the train door, are extended tests.
MATRIX_EXTENDED_MODELS = {"bicycle_gan", "stargan_v2", "pix2pixhd", "spade"}


def tiny_args(model: str, dataroot: Path, checkpoints: Path, name: str = "run", *extra: str) -> list:
    tiny = TINY if model not in WITHOUT_D else TINY[:2] + TINY[4:]  # without --ndf 8
    return ["--dataroot", str(dataroot), "--model", model, "--name", name,
            "--checkpoints_dir", str(checkpoints), *tiny, *TINY_BY_MODEL[model],
            *TINY_TRAIN_BY_MODEL.get(model, []), *extra]

# Tiny, fast networks at 32x32 (resnet_6blocks needs 8 pixels, the basic PatchGAN 24), no pages,
# one short epoch: for tests about the loop and its errors, not about the networks.
TINY_NETS_32 = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "36", "--crop_size", "32",
                "--no_html", "--display_freq", "100000", "--print_freq", "100000", "--n_epochs", "1",
                "--n_epochs_decay", "0", "--max_dataset_size", "2"]


def assert_same_networks(expected: Path, actual: Path, names, tag: str = "latest", atol: float = 1e-6) -> None:
    """Every tensor of ``<tag>_net_<name>.pth`` in ``actual`` equals ``expected``'s to ``atol``."""
    import torch

    for name in names:
        a = torch.load(Path(expected) / f"{tag}_net_{name}.pth", weights_only=True)
        b = torch.load(Path(actual) / f"{tag}_net_{name}.pth", weights_only=True)
        assert a.keys() == b.keys(), name
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=atol, msg=f"{name}.{key}")


def assert_continue_train_equals_one_run(model: str, dataroot: Path, checkpoints: Path, nets, *common: str) -> None:
    """2 epochs (1 + 1 of decay) in one go equal 1 epoch, then ``--continue_train`` for the
    second: every tensor of ``nets``, exactly."""
    import train

    whole, first = ["--n_epochs", "1", "--n_epochs_decay", "1"], ["--n_epochs", "1", "--n_epochs_decay", "0"]
    assert train.main(tiny_args(model, dataroot, checkpoints, "straight", *common, *whole)) == 0
    assert train.main(tiny_args(model, dataroot, checkpoints, "split", *common, *first)) == 0
    assert train.main(tiny_args(model, dataroot, checkpoints, "split", *common, *whole, "--continue_train")) == 0
    assert_same_networks(checkpoints / "straight", checkpoints / "split", nets, atol=0)


def write_random_vgg(path: Path, network: str = "vgg19") -> Path:
    """torchvision's VGG layers with random weights, as a ``features.*`` state_dict file (no download):
    VGG-19 up to relu5_1 (the pix2pixHD form), VGG-16 up to relu4_3."""
    import torch

    from models.perceptual import LAYERS, VGG19_LAYERS, vgg_layers

    torch.manual_seed(0)
    layers = vgg_layers(network, VGG19_LAYERS[-1] if network == "vgg19" else LAYERS[-1])
    torch.save({"features." + k: v for k, v in layers.state_dict().items()}, path)
    return path
