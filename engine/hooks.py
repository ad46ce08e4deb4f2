"""The hook contract: a hook is called by the ``Trainer`` at fixed points of the loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

if TYPE_CHECKING:
    from engine.trainer import Trainer


class Hook:
    """Base class; override the points you need. ``trainer.state`` holds the position, and
    ``trainer.model``, ``trainer.opt``, ``trainer.dist`` the rest."""

    def before_train(self, trainer: Trainer) -> None:
        """Once, before the first step (and after a resume has set the position)."""

    def before_epoch(self, trainer: Trainer) -> None:
        """At the start of every epoch (also a resumed one, part-way through)."""

    def before_step(self, trainer: Trainer) -> None:
        """A batch is ready; the model has not seen it yet (``state.batch``)."""

    def votes(self, trainer: Trainer, after_step: bool) -> Dict[str, float]:
        """This rank's numbers for the step's one collective (``after_step``: the model has just
        stepped; else an epoch opens); their sums over ranks are in ``trainer.agreed`` from
        ``after_step`` (or ``before_epoch``) on. Same keys on every rank."""
        return {}

    def after_step(self, trainer: Trainer) -> None:
        """After the optimisation step on ``state.batch``."""

    def after_epoch(self, trainer: Trainer) -> None:
        """All batches of ``state.epoch`` are done; the epoch number has not advanced yet."""

    def after_train(self, trainer: Trainer) -> None:
        """Once, after the last epoch."""

    def on_stop(self, trainer: Trainer, signum: int) -> None:
        """The run stops early (``signum``: the signal that asked for it)."""

    def close(self, trainer: Trainer) -> None:
        """Always, last: release files, threads and connections."""
