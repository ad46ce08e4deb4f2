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
}
PAIRED = {"pix2pix", "template"}


def tiny_args(model: str, dataroot: Path, checkpoints: Path, name: str = "run", *extra: str) -> list:
    return ["--dataroot", str(dataroot), "--model", model, "--name", name,
            "--checkpoints_dir", str(checkpoints), *TINY, *TINY_BY_MODEL[model], *extra]
