"""Helpers of the multi-process tests.

* ``SignalOnRank``, a dataset mode selected by dotted path
  (``--dataset_mode tests.distributed_helpers.SignalOnRank``): aligned pairs, and the process
  of rank ``PIX2CYCLE_TEST_SIGNAL_RANK`` sends itself SIGTERM when it reads its
  ``PIX2CYCLE_TEST_SIGNAL_AT``-th sample, as a cluster's scheduler would stop a job.
* Run as a script under torchrun, ``train.py`` with ``RecordGradientSyncs``: every rank writes
  ``<checkpoints>/<name>/syncs_rank<N>.json``: for each network, the training steps (1, 2, ...)
  in which DDP averaged its gradients over the processes.
"""

import json
import os
import signal
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.aligned_dataset import AlignedDataset  # noqa: E402
from engine.hooks import Hook  # noqa: E402


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
        from torch.nn.parallel import DistributedDataParallel

        def recorder(name):
            def record(state, bucket):
                self.synced[name].add(self.step)
                return allreduce_hook(state, bucket)
            return record

        for name, net in trainer.model.networks().items():
            if isinstance(net, DistributedDataParallel):
                self.synced[name] = set()
                net.register_comm_hook(None, recorder(name))

    def before_step(self, trainer) -> None:
        self.step += 1

    def close(self, trainer) -> None:
        folder = Path(trainer.opt.checkpoints_dir) / trainer.opt.name
        (folder / f"syncs_rank{trainer.dist.rank}.json").write_text(
            json.dumps({"steps": self.step, "synced": {k: sorted(v) for k, v in self.synced.items()}}))


if __name__ == "__main__":
    import train

    sys.exit(train.main(sys.argv[1:], hooks=[RecordGradientSyncs()]))
