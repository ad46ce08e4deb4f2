"""One generator applied to single images, for test.py only.

Use it to run one direction of a trained CycleGAN (``--model test --model_suffix _A``
loads ``latest_net_G_A.pth``) or any generator on a folder of images, without needing
images of the other domain. It sets ``--dataset_mode single``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from models.base_model import BaseModel
from models.inference import InferenceModel
from models.registry import MODELS
from util.errors import UserError
from util.saved_options import load_saved_options
from util.weights import weights_file

# Bare weights of a two-generator run (the reference's G_A / G_B files), by direction.
SUFFIX_BY_DIRECTION = {"AtoB": "_A", "BtoA": "_B"}


@MODELS.register("test")
class TestModel(InferenceModel):
    # A run's saved suffix (a pretrained model's train_opt.json) names the file to load.
    architecture_keys = BaseModel.architecture_keys + ("model_suffix",)
    TRAIN_ONLY = "--model test is for test.py only; train with --model cycle_gan or pix2pix"
    # What the doors ask of it instead of knowing it by name: it reads the generator of a run
    # of any model (and the reference's bare weight files), and its results go to a folder
    # of their own so they never overwrite a full model's gallery of the same run.
    reads_any_run = True
    refused_doors = dict.fromkeys(("train", "resume", "resume weights", "ablate", "torchrun", "compile", "amp",
                                   "accumulation", "exact accumulation", "ema", "validation", "cache_images",
                                   "webdataset"), TRAIN_ONLY)

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        if is_train:
            raise UserError(TestModel.TRAIN_ONLY)
        # Mostly used for CycleGAN generators, which are trained without dropout; a saved
        # train_opt.json or an explicit flag still wins.
        parser.set_defaults(dataset_mode="single", no_dropout=True)
        parser.add_argument("--model_suffix", default="",
                            help="loads <epoch>_net_G<model_suffix>.pth, e.g. _A for a CycleGAN's G_A")
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt, self.plugin_of_run(opt), "G" + opt.model_suffix)

    @staticmethod
    def results_folder_suffix(opt) -> str:
        """Appended to test.py's ``<phase>_<epoch>`` results folder."""
        return f"_test{opt.model_suffix}"

    @staticmethod
    def plugin_of_run(opt) -> type:
        """The registered model of the run whose generator is tested, where it builds its
        generator its own way (CUT's anti-aliased ResNet); else the options' generator. Only
        registered names count: a saved dotted path is never imported here."""
        saved = load_saved_options(Path(opt.checkpoints_dir) / opt.name) or {}
        plugin = MODELS.get(saved["model"]) if saved.get("model") in MODELS else TestModel
        return plugin if plugin.build_generator.__func__ is not BaseModel.build_generator.__func__ else TestModel

    @classmethod
    def inference_generator(cls, opt, direction: Optional[str]) -> str:
        folder = Path(opt.checkpoints_dir) / opt.name
        if not opt.model_suffix and weights_file(folder, f"{opt.epoch}_net_G") is None \
                and weights_file(folder, f"{opt.epoch}_net_G_A") is not None:
            return "G" + SUFFIX_BY_DIRECTION[direction or "AtoB"]  # G_A and G_B without a train_opt.json
        super().inference_generator(opt, direction)  # one generator, trained one way
        return "G" + opt.model_suffix
