"""One generator applied to single images, for test.py only.

Use it to run one direction of a trained CycleGAN (``--model test --model_suffix _A``
loads ``latest_net_G_A.pth``) or any generator on a folder of images, without needing
images of the other domain. It sets ``--dataset_mode single``.
"""

from __future__ import annotations

from models import MODELS
from models.base_model import BaseModel
from util.errors import UserError


@MODELS.register("test")
class TestModel(BaseModel):
    # A run's saved suffix (a pretrained model's train_opt.json) names the file to load.
    architecture_keys = BaseModel.architecture_keys + ("model_suffix",)

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        if is_train:
            raise UserError("--model test is for test.py only; train with --model cycle_gan or pix2pix")
        # Mostly used for CycleGAN generators, which are trained without dropout; a saved
        # train_opt.json or an explicit flag still wins.
        parser.set_defaults(dataset_mode="single", no_dropout=True)
        parser.add_argument("--model_suffix", default="",
                            help="loads <epoch>_net_G<model_suffix>.pth, e.g. _A for a CycleGAN's G_A")
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt)
        self.loss_names = []
        self.visual_names = ["real", "fake"]
        self.model_names = ["G" + opt.model_suffix]
        net = self.define_generator(opt.input_nc, opt.output_nc)
        # The network attribute carries the suffix so that saving and loading find the file.
        setattr(self, "netG" + opt.model_suffix, net)

    def set_input(self, input: dict) -> None:
        self.real = self.to_device(input["A"])
        self.image_paths = input["A_paths"]

    def forward(self) -> None:
        self.fake = getattr(self, "netG" + self.opt.model_suffix)(self.real)

    def optimize_parameters(self) -> None:
        raise UserError("--model test cannot be trained")
