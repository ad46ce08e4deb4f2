"""Helpers of the multi-process tests.

* ``SignalOnRank``, a dataset mode selected by dotted path
  (``--dataset_mode tests.distributed_helpers.SignalOnRank``): aligned pairs, and the process
  of rank ``PIX2CYCLE_TEST_SIGNAL_RANK`` sends itself SIGTERM when it reads its
  ``PIX2CYCLE_TEST_SIGNAL_AT``-th sample, as a cluster's scheduler would stop a job.
* Run as a script under torchrun, ``train.py`` with ``RecordGradientSyncs``: every rank writes
  ``<checkpoints>/<name>/syncs_rank<N>.json``: for each network, the training steps (1, 2, ...)
  in which DDP averaged its gradients over the processes.
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
        if os.environ.get("RANK") == os.environ.get("PIX2CYCLE_TEST_SIGNAL_RANK"):
            self.reads += 1
            if self.reads == int(os.environ["PIX2CYCLE_TEST_SIGNAL_AT"]):
                os.kill(os.getpid(), signal.SIGTERM)
        return super().__getitem__(index)


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

    sys.exit(train.main(sys.argv[1:], hooks=[RecordGradientSyncs()]))
