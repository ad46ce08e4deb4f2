"""Colorization: pix2pix from the lightness of a photo to its colours.

The generator maps L (1 channel, ``L / 50 - 1``) to ab (2 channels, ``ab / 110``); losses,
networks and defaults are pix2pix's (``Pix2PixModel``). Pages and metrics show RGB: every
image of the batch is converted back from Lab (``util/lab.py``). At test time a folder of
gray photos without colours (``--dataset_mode single``) is colourised too. Through
translate.py and the Translator (``LAB`` below) an RGB or gray photo goes in and an RGB photo
comes out; an exported generator takes L and gives ab (docs/inference.md).
"""

from __future__ import annotations

from models.colour_space import ColourSpace
from models.pix2pix_model import Pix2PixModel
from models.registry import MODELS
from util.lab import gray_to_l, lab_to_rgb, rgb_to_l

# The inference doors read RGB (gray repeated), feed its L* as the training data computes it,
# and give lab2rgb(L*, predicted a*b*).
LAB = ColourSpace(name="lab", image_nc=(3, 3), encode=rgb_to_l, decode=lab_to_rgb,
                  graph="x = L*/50 - 1 and y = a*b*/110, CIE Lab (D65) as skimage.color.rgb2lab; "
                        "the RGB photo is lab2rgb(L*, a*, b*)")


@MODELS.register("colorization")
class ColorizationModel(Pix2PixModel):
    # Scored in RGB against the real colour photo.
    metric_visuals = {"B": ("fake_B_rgb", "real_B_rgb")}
    colour_space = LAB

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        Pix2PixModel.modify_commandline_options(parser, is_train)
        parser.set_defaults(dataset_mode="colorization", input_nc=1, output_nc=2)
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt)
        # real_A is the lightness in [-1, 1]: it shows as the gray photo.
        self.visual_names = ["real_A", "fake_B_rgb", "real_B_rgb"]
        self.real_B = None
        if not self.isTrain and opt.dataset_mode == "single":
            # Gray photos without colours: nothing to score against.
            self.metric_visuals = {}
            self.visual_names = ["real_A", "fake_B_rgb"]

    def set_input(self, input: dict) -> None:
        if "B" in input:
            super().set_input(input)
            return
        # A gray image (--dataset_mode single): its lightness, as the colorization data gives it.
        self.real_A = self.to_device(gray_to_l(input["A"]))
        self.real_B = None
        self.image_paths = input["A_paths"]

    def compute_visuals(self) -> None:
        self.fake_B_rgb = lab_to_rgb(self.real_A, self.fake_B)
        self.real_B_rgb = lab_to_rgb(self.real_A, self.real_B) if self.real_B is not None else None
