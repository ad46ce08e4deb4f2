"""The learning-rate step at the end of every epoch (placed after validation, which feeds
``--lr_policy plateau`` its metric, and before the checkpoint, which saves the new rate)."""

from __future__ import annotations

from engine.hooks import Hook


class ScheduleHook(Hook):
    def after_epoch(self, trainer) -> None:
        trainer.state.lr = trainer.model.update_learning_rate()
