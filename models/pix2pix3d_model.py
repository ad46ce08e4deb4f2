"""pix2pix3d: pix2pix for volumes (CT, MRI, microscopy stacks).

The pix2pix objective, GAN(G, D) + lambda_L1 * ||B - G(A)||_1, with a 3-D U-Net generator
and a 3-D PatchGAN that judges (A, B) pairs of patches (``models.networks.volumetric``).
Training runs on random patches of ``--patch_size`` (``--dataset_mode volume``); testing
translates whole volumes of any shape with a sliding window of that size, overlapping by
``--overlap`` and blended, so a volume comes back in its own shape.
"""

from __future__ import annotations

from models.networks.volumetric import (
    check_patch_size,
    define_D3d,
    define_G3d,
    discriminator_3d_refusal,
    generator_3d_refusal,
    sliding_window,
)
from models.pix2pix_model import Pix2PixModel
from models.registry import MODELS
from util.errors import UserError


@MODELS.register("pix2pix3d")
class Pix2Pix3dModel(Pix2PixModel):
    unused_options = {
        **Pix2PixModel.unused_options,
        **{key: "the 3-D networks (models/networks/volumetric.py) have no such form"
           for key in ("spectral_norm_G", "spectral_norm_D", "upsample", "attention")},
        # An open defect, refused rather than met as a NaN stop mid-run.
        "amp": "volumes train and test in fp32: bf16 3-D steps gave a non-finite GAN loss in 1 of 3 to 1 of 10 "
               "runs on an AVX512_BF16 CPU (tests/test_compatibility.py), not reproducibly for a seed",
    }
    metric_visuals = {}  # the image metrics are 2-D

    refused_doors = dict.fromkeys(("translate.py", "Translator", "export onnx", "export exported_program"),
                                  "a --model pix2pix3d run translates volumes: translate.py, export.py and the "
                                  "Translator take 2-D images; use test.py --model pix2pix3d (whole volumes, "
                                  "sliding windows)")
    refused_doors["validation"] = ("--model pix2pix3d has no validation metric (the image metrics are 2-D); "
                                   "score test.py's volumes with a measure of your field")

    @classmethod
    def generator_refusal(cls, netG: str):
        return generator_3d_refusal(netG)

    @classmethod
    def discriminator_refusal(cls, netD: str):
        return discriminator_3d_refusal(netD)

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        Pix2PixModel.modify_commandline_options(parser, is_train)
        # Volumes come one or two at a time: instance norm, and U-Net depth for 32^3 patches.
        parser.set_defaults(norm="instance", netG="unet_32", dataset_mode="volume", metrics="none")
        parser.add_argument("--overlap", type=float, default=0.5,
                            help="test time: overlap of the sliding windows, as a fraction of --patch_size")
        return parser

    def __init__(self, opt) -> None:
        from data.volume_dataset import parse_patch_size
        from util.errors import UserError

        if not hasattr(opt, "patch_size"):
            raise UserError(f"--model pix2pix3d needs volumes: use --dataset_mode volume, not {opt.dataset_mode}")
        self.patch = parse_patch_size(opt.patch_size)
        if opt.isTrain:
            check_patch_size(self.patch, opt.netG, opt.netD, opt.n_layers_D)
        super().__init__(opt)

    def define_generator(self, input_nc: int, output_nc: int):
        opt = self.opt
        return self.build_network(define_G3d(input_nc, output_nc, opt.ngf, opt.netG, opt.normG, not opt.no_dropout,
                                             opt.init_type, opt.init_gain))

    @classmethod
    def inference_generator(cls, opt, direction):
        raise UserError(cls.refused_doors["Translator"])

    def define_discriminator(self, input_nc: int, multiscale: bool = False):
        opt = self.opt
        if multiscale:
            raise UserError("--num_D and --lambda_feat are for 2-D images; pix2pix3d takes one discriminator")
        return self.build_network(define_D3d(input_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.normD,
                                             opt.init_type, opt.init_gain))

    def forward(self) -> None:
        if tuple(self.real_A.shape[2:]) == self.patch:
            self.fake_B = self.netG(self.real_A)
        else:  # a whole volume: window by window
            self.fake_B = sliding_window(self.netG, self.real_A, self.patch, self.opt.overlap, self.opt.output_nc)
