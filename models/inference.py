"""One generator of a trained run, as the inference doors run it.

translate.py, export.py and ``pix2cycle.Translator`` need one network of a run, not the
whole model: ``InferenceModel`` builds the generator that the run's plugin names
(``inference_generator``) the way the plugin builds it (``build_generator``), then loads,
places and casts it like every model (``BaseModel.setup``). ``--model test`` is this model
with the reference's flags.
"""

from __future__ import annotations

from models.base_model import BaseModel
from util.errors import UserError


class InferenceModel(BaseModel):
    """``net<net_name>`` of a ``plugin`` (a model class) run, alone; shown as real -> fake."""

    def __init__(self, opt, plugin: type, net_name: str) -> None:
        super().__init__(opt)
        self.plugin = plugin
        self.loss_names = []
        self.visual_names = ["real", "fake"]
        self.model_names = [net_name]
        # The network attribute carries the name so that saving and loading find the file.
        setattr(self, "net" + net_name, self.build_network(plugin.build_generator(opt, net_name)))

    def set_input(self, input: dict) -> None:
        self.real = self.to_device(input["A"])
        self.image_paths = input["A_paths"]

    def forward(self) -> None:
        self.fake = getattr(self, "net" + self.model_names[0])(self.real)

    def optimize_parameters(self) -> None:
        raise UserError(f"--model {self.opt.model} cannot be trained here: one generator for inference only")
