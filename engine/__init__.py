"""The training engine: a ``Trainer`` that runs epochs and steps, and hooks that do the rest.

The loop (``trainer.py``) only iterates: it asks the model for one step per batch and calls
each hook at fixed points: ``before_train``, ``before_epoch``, ``before_step``,
``after_step``, ``after_epoch``, ``after_train``, and ``on_stop`` when the run is stopped
early; ``close`` always runs last. Everything else is a hook in a file of its own, called
in list order:

==================  ===============================================================
``checkpoints.py``  resume at start; latest/epoch checkpoints; the save on a stop
``validation.py``   ``--val_freq`` scoring (``evaluation/``), best weights, ``plateau``'s figure
``schedule.py``     the learning-rate step at the end of each epoch
``report.py``       the run summary, loss lines, pages, live displays, progress bars
``nan_guard.py``    stops the run on a non-finite loss, naming it
``signals.py``      Ctrl-C, SIGTERM, ``--preempt_signal``: save at the next step
``timing.py``       data and step times (read by the reporting hook and benchmarks)
==================  ===============================================================

``distributed.py`` holds the process group of a ``torchrun`` launch; hooks ask it whether
they run on rank 0 (the only one that writes). Ranks agree in one all-reduce per step: a
hook's ``votes`` go into it, and their sums are in ``trainer.agreed`` at ``after_step``.

To add behaviour, subclass ``Hook`` and pass it to ``train.main(argv, hooks=[...])``.
"""

from engine.distributed import Distributed
from engine.hooks import Hook
from engine.trainer import StopTraining, Trainer, TrainState

__all__ = ["Distributed", "Hook", "StopTraining", "Trainer", "TrainState"]
