"""Learning-rate policies: the reference's linear rule and the torch built-ins."""

from __future__ import annotations

import pytest
import torch

from models.schedulers import SCHEDULERS, get_scheduler
from util.errors import UserError

LR = 0.0002


def make_optimizer() -> torch.optim.Optimizer:
    return torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=LR)


def lrs_per_epoch(policy: str, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1,
                  **kwargs) -> list[float]:
    """The lr used in each epoch, stepping the scheduler once after each (as train.py does)."""
    optimizer = make_optimizer()
    scheduler = get_scheduler(optimizer, policy, n_epochs, n_epochs_decay, epoch_count, **kwargs)
    lrs = []
    for _ in range(epoch_count, n_epochs + n_epochs_decay + 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_linear_constant_then_linear_decay() -> None:
    lrs = lrs_per_epoch("linear", n_epochs=5, n_epochs_decay=4)
    assert len(lrs) == 9
    assert lrs[:5] == [LR] * 5
    # Epochs 6..9 use factors 1 - k/5 for k = 1..4: a straight line towards zero.
    assert lrs[5:] == pytest.approx([LR * f for f in (0.8, 0.6, 0.4, 0.2)])
    assert lrs[-1] > 0


def test_linear_respects_epoch_count() -> None:
    full = lrs_per_epoch("linear", n_epochs=5, n_epochs_decay=4)
    resumed = lrs_per_epoch("linear", n_epochs=5, n_epochs_decay=4, epoch_count=4)
    assert resumed == pytest.approx(full[3:])


def test_linear_reference_rule_at_default_options() -> None:
    lrs = lrs_per_epoch("linear", n_epochs=100, n_epochs_decay=100)
    assert lrs[99] == LR
    assert lrs[100] == pytest.approx(LR * (1 - 1 / 101))
    assert lrs[199] == pytest.approx(LR / 101)


def test_step_divides_by_ten() -> None:
    lrs = lrs_per_epoch("step", n_epochs=3, n_epochs_decay=3, lr_decay_iters=2)
    assert lrs == pytest.approx([LR, LR, LR / 10, LR / 10, LR / 100, LR / 100])


def test_cosine_reaches_zero_after_n_epochs() -> None:
    lrs = lrs_per_epoch("cosine", n_epochs=4, n_epochs_decay=0)
    assert lrs == pytest.approx([LR, LR * (1 + 2 ** -0.5) / 2, LR / 2, LR * (1 - 2 ** -0.5) / 2])
    optimizer = make_optimizer()
    scheduler = get_scheduler(optimizer, "cosine", 4, 0)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_plateau_reduces_after_patience() -> None:
    optimizer = make_optimizer()
    scheduler = get_scheduler(optimizer, "plateau", 10, 10)
    scheduler.step(1.0)
    for _ in range(5):  # patience: five epochs without improvement are tolerated
        scheduler.step(0.995)  # within the 1% relative threshold: not an improvement
        assert optimizer.param_groups[0]["lr"] == LR
    scheduler.step(1.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(LR * 0.2)


@pytest.mark.parametrize("policy", sorted(SCHEDULERS))
def test_every_policy_state_dict_round_trip(policy: str) -> None:
    optimizer = make_optimizer()
    scheduler = get_scheduler(optimizer, policy, 3, 3, lr_decay_iters=2)
    for _ in range(2):
        optimizer.step()
        scheduler.step(*([1.0] if policy == "plateau" else []))
    state = scheduler.state_dict()
    restored_opt = make_optimizer()
    restored_opt.load_state_dict(optimizer.state_dict())
    restored = get_scheduler(restored_opt, policy, 3, 3, lr_decay_iters=2)
    restored.load_state_dict(state)
    assert restored.last_epoch == scheduler.last_epoch
    assert restored_opt.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_unknown_policy() -> None:
    with pytest.raises(UserError, match="available: cosine, linear, plateau, step"):
        get_scheduler(make_optimizer(), "exponential", 10, 10)


@pytest.mark.parametrize("policy", ["linear", "step", "cosine"])
def test_schedule_at_replays_the_rate_of_an_uninterrupted_run(policy) -> None:
    from models.schedulers import schedule_at

    straight = lrs_per_epoch(policy, n_epochs=4, n_epochs_decay=3, lr_decay_iters=2)
    for steps, expected in enumerate(straight):
        lr, state = schedule_at(policy, LR, 4, 3, 1, 2, steps)
        assert lr == expected  # the same float operations, not merely close
        assert state["last_epoch"] == steps


@pytest.mark.parametrize("policy", ["linear", "step", "cosine", "plateau"])
def test_a_resume_builds_each_scheduler_once_at_the_exact_rates(policy, aligned_dataroot, tmp_path, monkeypatch):
    """An uninterrupted model steps its schedule epoch by epoch; a model resumed from its
    state at each epoch builds one scheduler per optimizer, after the load, with the same
    rates (==, not approx) and the same next step. Two optimizers at two base rates
    (--lr, --lr_D); plateau with a figure that never improves, so its rate drops."""
    import models.schedulers as schedulers
    from models import create_model
    from options import parse_options
    from tests.helpers import tiny_args

    flags = ["--lr_policy", policy, "--n_epochs", "3", "--n_epochs_decay", "3", "--lr_decay_iters", "2",
             "--lr", "0.0003", "--lr_D", "0.0007", *(["--val_freq", "1"] if policy == "plateau" else [])]
    straight = create_model(parse_options(tiny_args("pix2pix", aligned_dataroot, tmp_path, "s", *flags), True))
    straight.setup(straight.opt)
    built = []
    real = schedulers.get_scheduler
    monkeypatch.setattr(schedulers, "get_scheduler", lambda *a, **k: built.append(a[1]) or real(*a, **k))
    first_rates = [o.param_groups[0]["lr"] for o in straight.optimizers]
    for epoch in range(1, 9):
        if policy == "plateau":
            straight.metric = 1.0  # no improvement: the rate drops after patience epochs
        rates = [o.param_groups[0]["lr"] for o in straight.optimizers]
        state = straight.training_state()
        resumed = create_model(parse_options(tiny_args("pix2pix", aligned_dataroot, tmp_path, "r", *flags,
                                                       "--continue_train"), True))
        resumed.setup(resumed.opt)
        assert resumed.schedulers == []  # not built before the resume
        built.clear()
        resumed.load_training_state(state)
        assert resumed.follow_schedule(epoch) == rates[0]
        assert built == [policy] * len(resumed.optimizers) == [policy, policy]
        assert [o.param_groups[0]["lr"] for o in resumed.optimizers] == rates
        straight.update_learning_rate()
        resumed.metric = 1.0 if policy == "plateau" else None
        assert resumed.update_learning_rate() == straight.optimizers[0].param_groups[0]["lr"]
        assert [o.param_groups[0]["lr"] for o in resumed.optimizers] == \
            [o.param_groups[0]["lr"] for o in straight.optimizers]
    assert first_rates == [0.0003, 0.0007] and rates != first_rates  # the schedule moved the rates
