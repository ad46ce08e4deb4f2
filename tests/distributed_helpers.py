"""Helpers of the multi-process tests.

* ``SignalOnRank``, a dataset mode selected by dotted path
  (``--dataset_mode tests.distributed_helpers.SignalOnRank``): aligned pairs, and the process
  of rank ``PIX2CYCLE_TEST_SIGNAL_RANK`` sends itself SIGTERM when it reads its
  ``PIX2CYCLE_TEST_SIGNAL_AT``-th sample, as a cluster's scheduler would stop a job
  (``PIX2CYCLE_TEST_SIGNAL``: the signal's name, SIGTERM by default; SIGKILL for a crash),
  on the first start only (not after a torchrun restart).
* Run as a script under torchrun, ``train.py`` with ``RecordGradientSyncs`` and
  ``CountCollectives``: every rank writes ``<checkpoints>/<name>/syncs_rank<N>.json``: for
  each network, the training steps (1, 2, ...) in which DDP averaged its gradients over the
  processes; and ``collectives_rank<N>.json``: the engine's collectives of every step.
* ``CollectiveGenerator`` (``--netG tests.distributed_helpers.CollectiveGenerator``): a tiny
  generator whose norm layer, like SyncBatchNorm, averages its batch statistics over the
  processes in every training-mode forward pass: an all-reduce that every rank must reach.
  It counts those passes in ``COLLECTIVE_CALLS``.
"""

import json
import os
import signal
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.distributed.nn  # noqa: E402,F401  (all_reduce with a gradient)
from torch import nn  # noqa: E402

from data.aligned_dataset import AlignedDataset  # noqa: E402
from engine.hooks import Hook  # noqa: E402

COLLECTIVE_CALLS = {"training mode": 0}


class CollectiveNorm(nn.Module):
    """Normalises by the batch mean and variance of all processes (training mode), as
    SyncBatchNorm does; by the batch's own in eval mode. No weights."""

    def forward(self, x):
        if self.training and dist.is_available() and dist.is_initialized():
            COLLECTIVE_CALLS["training mode"] += 1
            moments = torch.stack([x.mean(), x.square().mean()])
            moments = torch.distributed.nn.functional.all_reduce(moments) / dist.get_world_size()
            mean, var = moments[0], moments[1] - moments[0].square()
        else:
            mean, var = x.mean(), x.var(unbiased=False)
        return (x - mean) / (var + 1e-5).sqrt()


class CollectiveGenerator(nn.Module):
    size_multiple = 1

    def __init__(self, input_nc, output_nc, ngf, norm_layer, use_dropout):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(input_nc, ngf, 3, padding=1), CollectiveNorm(), nn.ReLU(),
                                 nn.Conv2d(ngf, output_nc, 3, padding=1), nn.Tanh())

    def forward(self, x):
        return self.net(x)


class SignalOnRank(AlignedDataset):
    reads = 0

    def __getitem__(self, index):
        # The first start only (torchrun counts its restarts): a restarted worker runs on.
        first_start = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
        if os.environ.get("RANK") == os.environ.get("PIX2CYCLE_TEST_SIGNAL_RANK") and first_start:
            self.reads += 1
            if self.reads == int(os.environ["PIX2CYCLE_TEST_SIGNAL_AT"]):
                os.kill(os.getpid(), signal.Signals[os.environ.get("PIX2CYCLE_TEST_SIGNAL", "SIGTERM")])
        return super().__getitem__(index)


class CountCollectives(Hook):
    """Counts the engine's calls of ``torch.distributed`` collectives, per training step (from
    the end of the previous step's hooks to the end of this one's; those torch makes itself,
    DDP's, are named with their caller): every rank writes
    ``<checkpoints>/<name>/collectives_rank<N>.json``, a list of ``[epoch, {name: calls}]``."""

    NAMES = ("all_reduce", "broadcast", "barrier", "all_gather", "gather", "gather_object", "all_gather_object",
             "broadcast_object_list", "reduce", "scatter")

    def __init__(self) -> None:
        self.calls, self.steps, self.saved = {}, [], {}

    def before_train(self, trainer) -> None:
        def counted(name, function):
            def call(*args, **kwargs):
                caller = sys._getframe(1)
                module = caller.f_globals.get("__name__", "")
                # torch's own calls (DDP's) are named by their caller, apart from the engine's.
                key = name if not module.startswith("torch") else f"{name} by {module}.{caller.f_code.co_name}"
                self.calls[key] = self.calls.get(key, 0) + 1
                return function(*args, **kwargs)
            return call

        self.saved = {name: getattr(dist, name) for name in self.NAMES}
        for name, function in self.saved.items():
            setattr(dist, name, counted(name, function))
        self.calls = {}

    def after_step(self, trainer) -> None:
        self.steps.append([trainer.state.epoch, self.calls])
        self.calls = {}

    def close(self, trainer) -> None:
        for name, function in self.saved.items():
            setattr(dist, name, function)
        folder = Path(trainer.opt.checkpoints_dir) / trainer.opt.name
        (folder / f"collectives_rank{trainer.dist.rank}.json").write_text(json.dumps(self.steps))


class RecordGradientSyncs(Hook):
    """A DDP communication hook on every network that notes, per network, the steps of its
    gradient all-reduces."""

    def __init__(self) -> None:
        self.step, self.synced = 0, {}

    def before_train(self, trainer) -> None:
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        from models.base_model import distributed_wrapper

        def recorder(name):
            def record(state, bucket):
                self.synced[name].add(self.step)
                return allreduce_hook(state, bucket)
            return record

        for name, net in trainer.model.networks().items():
            ddp = distributed_wrapper(net)  # under --compile, inside the compiled wrapper
            if ddp is not None:
                self.synced[name] = set()
                ddp.register_comm_hook(None, recorder(name))

    def before_step(self, trainer) -> None:
        self.step += 1

    def close(self, trainer) -> None:
        folder = Path(trainer.opt.checkpoints_dir) / trainer.opt.name
        (folder / f"syncs_rank{trainer.dist.rank}.json").write_text(
            json.dumps({"steps": self.step, "synced": {k: sorted(v) for k, v in self.synced.items()}}))


if __name__ == "__main__":
    import train

    sys.exit(train.main(sys.argv[1:], hooks=[RecordGradientSyncs(), CountCollectives()]))
