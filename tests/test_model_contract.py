"""Every registered trainable model honours the BaseModel contract.

New models in the registry are tested here for free: one training step on tiny data
gives finite losses and changes the weights, and saved weights load back into a fresh
model that then produces identical outputs.
"""

import pytest
import torch

from data import create_dataloader, create_dataset
from models import MODELS, create_model
from options import parse_options
from tests.helpers import LABELS, MULTIDOMAIN, PAIRED, TINY_BY_MODEL, VOLUMES, tiny_args

TRAINABLE = [name for name in MODELS.names() if name != "test"]


def test_every_trainable_model_has_tiny_settings():
    assert set(TRAINABLE) <= set(TINY_BY_MODEL), "add tiny settings for the new model in tests/helpers.py"


def first_batch(opt):
    return next(iter(create_dataloader(opt, create_dataset(opt), shuffle=False)))


@pytest.mark.parametrize("model_name", TRAINABLE)
def test_one_step_then_save_and_load(model_name, request, tmp_path):
    torch.manual_seed(0)
    fixture = "volume_dataroot" if model_name in VOLUMES else "aligned_dataroot" if model_name in PAIRED \
        else "label_dataroot" if model_name in LABELS else "multidomain_dataroot" if model_name in MULTIDOMAIN \
        else "unaligned_dataroot"
    root = request.getfixturevalue(fixture)
    opt = parse_options(tiny_args(model_name, root, tmp_path), is_train=True)
    model = create_model(opt)
    batch = first_batch(opt)
    model.data_dependent_initialize(batch)  # as train.py does, before the schedulers
    model.setup(opt)
    assert model.loss_names and model.visual_names and model.model_names and model.optimizers
    before = {n: [p.detach().clone() for p in net.parameters()] for n, net in model.networks().items()}
    model.train_step(batch)

    losses = model.get_current_losses()
    assert set(losses) == set(model.loss_names)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    for name, net in model.networks().items():
        changed = any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters()))
        assert changed, f"net{name} did not change after a training step"
    model.compute_visuals()  # as the pages do before showing them
    visuals = model.get_current_visuals()
    assert list(visuals) == model.visual_names
    assert all(v.shape[0] == batch["A"].shape[0] for v in visuals.values())

    model.save_networks("latest")
    for name in model.model_names:
        assert (tmp_path / "run" / f"latest_net_{name}.pth").is_file()

    # A fresh model in test mode loads the weights and computes the same outputs.
    test_opt = parse_options(tiny_args(model_name, root, tmp_path)[:2] + [
        "--model", model_name, "--name", "run", "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1",
        "--num_threads", "0", "--eval", "--ngf", "8", *TINY_BY_MODEL[model_name]], is_train=False)
    fresh = create_model(test_opt)
    fresh.setup(test_opt)
    fresh.eval()
    model.eval()
    model.set_input(batch)
    fresh.set_input(batch)
    model.test()
    fresh.test()
    for name in fresh.visual_names:
        if isinstance(getattr(fresh, name, None), torch.Tensor):
            torch.testing.assert_close(getattr(fresh, name), getattr(model, name), rtol=0, atol=0)


def test_test_model_loads_one_cycle_gan_generator(unaligned_dataroot, tmp_path):
    torch.manual_seed(0)
    opt = parse_options(tiny_args("cycle_gan", unaligned_dataroot, tmp_path), is_train=True)
    model = create_model(opt)
    model.save_networks("latest")
    args = ["--dataroot", str(unaligned_dataroot / "testA"), "--name", "run", "--checkpoints_dir", str(tmp_path),
            "--model", "test", "--model_suffix", "_A", "--netG", "resnet_6blocks", "--ngf", "8",
            "--crop_size", "32", "--gpu_ids", "-1", "--num_threads", "0"]
    test_opt = parse_options(args, is_train=False)
    single = create_model(test_opt)
    single.setup(test_opt)
    batch = first_batch(test_opt)
    single.set_input(batch)
    single.test()
    model.eval()
    with torch.no_grad():
        expected = model.netG_A(batch["A"])
    torch.testing.assert_close(single.fake, expected, rtol=0, atol=0)


def test_wgangp_applies_the_gradient_penalty(aligned_dataroot, tmp_path):
    opt = parse_options(tiny_args("pix2pix", aligned_dataroot, tmp_path, "run", "--gan_mode", "wgangp"), is_train=True)
    model = create_model(opt)
    model.setup(opt)
    model.train_step(first_batch(opt))
    assert "D_gp" in model.loss_names
    assert model.get_current_losses()["D_gp"] > 0.0


def test_cycle_gan_identity_needs_equal_channels(unaligned_dataroot, tmp_path):
    from util.errors import UserError

    opt = parse_options(tiny_args("cycle_gan", unaligned_dataroot, tmp_path, "run", "--output_nc", "1"), is_train=True)
    with pytest.raises(UserError, match="lambda_identity 0"):
        create_model(opt)


def test_direction_is_applied_once(aligned_dataroot, tmp_path):
    """--direction BtoA makes the right half the input, exactly once (dataset, not model)."""
    def batch_and_model(direction):
        args = tiny_args("pix2pix", aligned_dataroot, tmp_path, "run", "--direction", direction,
                         "--preprocess", "none", "--serial_batches", "--no_flip")
        opt = parse_options(args, is_train=True)
        model = create_model(opt)
        batch = first_batch(opt)
        model.set_input(batch)
        return batch, model

    batch_ab, model_ab = batch_and_model("AtoB")
    batch_ba, model_ba = batch_and_model("BtoA")
    assert not torch.equal(batch_ab["A"], batch_ab["B"])
    torch.testing.assert_close(model_ba.real_A, batch_ab["B"], rtol=0, atol=0)
    torch.testing.assert_close(model_ba.real_B, batch_ab["A"], rtol=0, atol=0)
    torch.testing.assert_close(model_ab.real_A, batch_ab["A"], rtol=0, atol=0)
