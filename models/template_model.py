"""A template model: copy this file to start a new one.

It is a complete, registered model (``--model template``) that learns a plain regression
from A to B with an L1 loss: one generator, one optimizer, no discriminator. Replace the
pieces marked below. Steps to add a model called ``my_model``:

1. Copy this file to ``models/my_model_model.py`` and rename the class.
2. Change the name in ``@MODELS.register("my_model")``.
3. Add ``from models import my_model_model`` to ``models/__init__.py``.

The training loop calls ``set_input`` then ``optimize_parameters`` for every batch; the
four lists set in ``__init__`` drive logging, the pages and saving.
"""

from __future__ import annotations

import torch

from models.base_model import BaseModel
from models.registry import MODELS


@MODELS.register("template")
class TemplateModel(BaseModel):
    # It has no discriminator and no GAN loss (a plugin with one drops these).
    unused_options = {key: "the template model has no discriminator, only an L1 regression"
                      for key in ("netD", "ndf", "n_layers_D", "normD", "spectral_norm_D", "num_D", "lr_D",
                                  "gan_mode", "lambda_gp", "pool_size", "grad_accum_mode")}
    metric_visuals = {"B": ("output", "data_B")}  # what --metrics compares: output vs target

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        """New flags and changed defaults of this model."""
        parser.set_defaults(dataset_mode="aligned", metrics="l1,psnr,ssim,lpips")
        if is_train:
            parser.set_defaults(best_metric="psnr")
            parser.add_argument("--lambda_regression", type=float, default=1.0, help="weight of the L1 loss")
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt)
        self.loss_names = ["G"]  # logged as loss_G
        self.visual_names = ["data_A", "output", "data_B"]  # shown on pages, saved by test.py
        self.model_names = ["G"]  # saved as <epoch>_net_G.pth
        self.netG = self.define_generator(opt.input_nc, opt.output_nc)  # --netG, --normG, ...
        if self.isTrain:
            self.criterionLoss = torch.nn.L1Loss()
            self.optimizer = self.make_adam(self.netG.parameters())
            self.optimizers = [self.optimizer]

    def set_input(self, input: dict) -> None:
        # The dataset applies --direction: "A" is always the input domain.
        self.data_A = self.to_device(input["A"])
        self.data_B = self.to_device(input["B"])
        self.image_paths = input["A_paths"]

    def forward(self) -> None:
        self.output = self.netG(self.data_A)

    def optimize_parameters(self) -> None:
        # Runs under --amp (BaseModel.train_step); update() zeroes, back-propagates (scaled
        # for fp16) and steps, so the step reads like the algorithm.
        self.forward()
        self.loss_G = self.criterionLoss(self.output.float(), self.data_B) * self.opt.lambda_regression
        self.update(self.optimizer, self.loss_G)
