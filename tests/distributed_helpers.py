"""A dataset mode for the multi-process tests, selected by dotted path
(``--dataset_mode tests.distributed_helpers.SignalOnRank``): aligned pairs, and the process
of rank ``PIX2CYCLE_TEST_SIGNAL_RANK`` sends itself SIGTERM when it reads its
``PIX2CYCLE_TEST_SIGNAL_AT``-th sample, as a cluster's scheduler would stop a job."""

import os
import signal

from data.aligned_dataset import AlignedDataset


class SignalOnRank(AlignedDataset):
    reads = 0

    def __getitem__(self, index):
        if os.environ.get("RANK") == os.environ.get("PIX2CYCLE_TEST_SIGNAL_RANK"):
            self.reads += 1
            if self.reads == int(os.environ["PIX2CYCLE_TEST_SIGNAL_AT"]):
                os.kill(os.getpid(), signal.SIGTERM)
        return super().__getitem__(index)
