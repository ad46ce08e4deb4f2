"""SPADE (GauGAN): semantic label maps to photos, with spatially-adaptive normalization.

Park, Liu, Wang and Zhu, "Semantic Image Synthesis with Spatially-Adaptive Normalization",
CVPR 2019; written from the paper. G (models/networks/spade.py) gets the one-hot label map
(``--label_nc`` classes, one more with ``--contain_dontcare_label``, plus the instance
boundaries unless ``--no_instance``) in every residual block through SPADE, not at its input.
D is ``--num_D`` (2) PatchGANs at halving scales on (label map, image) with spectral norm on
their inner convolutions and instance norm. Objective: hinge GAN + lambda_feat * FM(D) +
lambda_vgg * VGG (both 10) [+ lambda_kld * KL with ``--use_vae``]. TTUR: G at lr/2, D at
2 lr, Adam betas (0, 0.9) (``--no_TTUR``: lr for both, betas (0.5, 0.999)).

``--use_vae`` adds the style encoder E: the photo's code z = mu + eps * sigma starts G, and
the KL term pulls the codes to N(0, I). test.py encodes each pair's photo, or the one image
``--style_image`` for every label map, or (label maps without photos) draws z at random.
"""

from __future__ import annotations

import torch

from data.image_folder import load_image
from models import networks
from models.base_model import BaseModel
from models.label_gan import LabelGANLosses
from models.losses import GANLoss
from models.networks.spade import UPSAMPLINGS, SPADEGenerator, StyleEncoder, kl_divergence, reparameterize
from models.perceptual import PERCEPTUAL_FORMS, VGG_FILES, vgg_loss
from models.pix2pixhd_model import LABEL_DOORS, check_label_options
from models.registry import MODELS
from util.errors import UserError

SPADE_KEYS = ("label_nc", "contain_dontcare_label", "no_instance", "use_vae", "z_dim", "num_upsampling_layers",
              "spade_hidden", "no_spectral_norm_G")


def semantic_channels(opt) -> int:
    """The map SPADE reads: one-hot classes (dontcare included), the boundary map."""
    base = opt.label_nc + int(opt.contain_dontcare_label) if opt.label_nc > 0 else opt.input_nc
    return base + (0 if opt.no_instance else 1)


@MODELS.register("spade")
class SPADEModel(LabelGANLosses, BaseModel):
    # SPADE's combination of the scales and D's terms (models/label_gan.py).
    average_scales, d_loss_scale, feat_weighting = True, 1.0, "spade"
    metric_visuals = {"B": ("fake_B", "real_B")}
    architecture_keys = BaseModel.architecture_keys + SPADE_KEYS
    unused_options = {
        "netG": "SPADE's generator is its own (models/networks/spade.py); --num_upsampling_layers sizes it",
        **{key: "SPADE's generator is its own (models/networks/spade.py), without it"
           for key in ("spectral_norm_G", "upsample", "attention", "no_dropout")},
        "pool_size": "SPADE's D judges the current fakes, there is no image pool (as in the SPADE paper)",
        "lr_D": "TTUR sets D's rate to 2 --lr (and G's to --lr / 2); --no_TTUR uses --lr for both",
    }
    refused_doors = {door: "SPADE's input is a label map (one-hot classes and instance boundaries, with a style "
                           "code under --use_vae); this door takes photos only: use test.py on --dataset_mode "
                           "label data" for door in LABEL_DOORS}

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        # SPADE's defaults: param-free batch norm in G's SPADE layers (its syncbatch on one device),
        # spectral instance norm in D, xavier init with gain 0.02, 2 scales of D.
        parser.set_defaults(dataset_mode="label", norm="instance", normG="batch", init_type="xavier", num_D=2,
                            metrics="l1,psnr,ssim,lpips")
        parser.add_argument("--label_nc", type=int, default=182,
                            help="classes of the label maps, without dontcare; 0: images in")
        parser.add_argument("--contain_dontcare_label", action="store_true",
                            help="the maps hold a dontcare class with id --label_nc (or 255): one more channel")
        parser.add_argument("--no_instance", action="store_true", help="no instance boundary channel")
        parser.add_argument("--use_vae", action="store_true", help="train the style encoder: G starts from a style code")
        parser.add_argument("--z_dim", type=int, default=256, help="length of the style code")
        parser.add_argument("--num_upsampling_layers", default="normal", choices=list(UPSAMPLINGS),
                            help="upsamplings of G (5, 6, 7): its first grid is crop_size / 2**that")
        parser.add_argument("--spade_hidden", type=int, default=128, help="channels of SPADE's shared conv (128)")
        parser.add_argument("--no_spectral_norm_G", action="store_true",
                            help="no spectral norm on G's residual-block convolutions")
        if not is_train:
            parser.add_argument("--style_image", default=None,
                                help="--use_vae runs: the image whose style code every output takes")
        if is_train:
            parser.set_defaults(gan_mode="hinge", pool_size=0, n_epochs=50, n_epochs_decay=0, beta1=0.0, beta2=0.9,
                                spectral_norm_D="spade", best_metric="psnr")
            parser.add_argument("--no_TTUR", action="store_true",
                                help="one rate for G and D and Adam betas (0.5, 0.999) instead of TTUR")
            parser.add_argument("--lambda_feat", type=float, default=10.0, help="weight of feature matching; 0: off")
            parser.add_argument("--lambda_vgg", type=float, default=10.0, help="weight of the VGG loss; 0: off")
            parser.add_argument("--lambda_kld", type=float, default=0.05, help="weight of the KL term (--use_vae)")
            parser.add_argument("--perceptual_form", default="pix2pixhd", choices=PERCEPTUAL_FORMS.names(),
                                help="whose VGG loss (see --model pix2pix)")
            parser.add_argument("--vgg_weights", default=None,
                                help=f"the VGG weights (default: the torch hub cache's {VGG_FILES['vgg19']})")
        return parser

    @staticmethod
    def mode_defaults(parser, known, is_train: bool) -> None:
        """``--no_TTUR`` brings back Adam's (0.5, 0.999) (options/base_options.py calls this)."""
        if is_train and known.no_TTUR:
            parser.set_defaults(beta1=0.5, beta2=0.999)

    def __init__(self, opt) -> None:
        super().__init__(opt)
        check_label_options(opt, "spade")
        self.loss_names = ["G_GAN", "D_real", "D_fake"]
        self.visual_names = ["input_label" if opt.label_nc > 0 else "real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        self.netG = self.build_network(self.build_generator(opt, "G"))
        if opt.use_vae:
            self.model_names.append("E")
            self.netE = self.build_network(networks.init_weights(
                StyleEncoder(opt.output_nc, opt.ngf, opt.z_dim, opt.crop_size >= 256), opt.init_type, opt.init_gain))
        self.style = None
        if not self.isTrain:
            if opt.style_image and not opt.use_vae:
                raise UserError("--style_image needs a run trained with --use_vae (a style encoder)")
            return
        self.netD = self.define_discriminator(semantic_channels(opt) + opt.output_nc, multiscale=True)
        self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
        if opt.lambda_feat > 0:
            self.loss_names.append("G_feat")
        self.criterionVGG = vgg_loss(opt.perceptual_form, opt.vgg_weights).to(self.device) \
            if opt.lambda_vgg > 0 else None
        if self.criterionVGG is not None:
            self.loss_names.append("G_VGG")
        if opt.use_vae:
            self.loss_names.append("KLD")
        # TTUR (Heusel et al. 2017) as SPADE sets it: G at lr / 2, D at 2 lr.
        g_lr, d_lr = (opt.lr, opt.lr) if opt.no_TTUR else (opt.lr / 2, opt.lr * 2)
        params = list(self.netG.parameters()) + (list(self.netE.parameters()) if opt.use_vae else [])
        self.optimizer_G = self.make_adam(params, lr=g_lr)
        self.optimizer_D = self.make_adam(self.netD.parameters(), lr=d_lr)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    @staticmethod
    def input_sizes(opt) -> tuple:
        """(multiple, smallest side): G's first grid is crop_size / 2**upsamplings, and at least 2x2
        (its batch norm needs more than one value per channel)."""
        multiple = 2 ** UPSAMPLINGS[opt.num_upsampling_layers]
        return multiple, 2 * multiple

    @classmethod
    def inference_generator(cls, opt, direction):
        raise UserError(cls.refused_doors["Translator"])

    @classmethod
    def build_generator(cls, opt, name: str):
        net = SPADEGenerator(semantic_channels(opt), opt.output_nc, opt.ngf, opt.crop_size, opt.num_upsampling_layers,
                             opt.z_dim if opt.use_vae else None, networks.get_norm_layer(opt.normG),
                             opt.spade_hidden, not opt.no_spectral_norm_G)
        return networks.init_weights(net, opt.init_type, opt.init_gain)

    @classmethod
    def generator_channels(cls, opt, name: str) -> tuple:
        return semantic_channels(opt), opt.output_nc

    # ----------------------------------------------------------------- data
    def set_input(self, input: dict) -> None:
        self.set_label_input(input, "spade", dontcare_255=self.opt.contain_dontcare_label)

    def style_code(self, compute_kld: bool):
        """z for G: the photo's (or --style_image's) encoded code, or None (G draws one)."""
        if not self.opt.use_vae:
            return None
        style = self.real_B
        if not self.isTrain and self.opt.style_image:
            if self.style is None:
                image = load_image(self.opt.style_image, self.opt.output_nc)
                unit = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
                self.style = self.to_device(unit[None] * 2.0 - 1.0)
            style = self.style.expand(self.label.shape[0], -1, -1, -1)
        if style is None:
            return None
        mu, logvar = self.netE(style)
        if compute_kld:
            self.loss_KLD = kl_divergence(mu.float(), logvar.float()) * self.opt.lambda_kld
        return reparameterize(mu, logvar)

    def forward(self) -> None:
        self.fake_B = self.netG(self.label, self.style_code(compute_kld=self.isTrain))

    # ----------------------------------------------------------------- losses
    def extra_generator_loss(self):
        return self.loss_KLD if self.opt.use_vae else 0.0

    def accumulation_phases(self):
        """``--grad_accum_mode exact``: D over the micro-batches, then G (and E) against the updated D."""
        return self.gan_phases(self.forward)

    def optimize_parameters(self) -> None:
        # SPADE's order: G's step, then D's against a fake of the updated G (made without gradients).
        self.forward()
        self.set_requires_grad(self.netD, False)
        self.backward_G()
        self.update(self.optimizer_G, self.loss_G)
        with torch.no_grad():
            self.fake_B = self.netG(self.label, self.style_code(compute_kld=False))
        self.set_requires_grad(self.netD, True)
        self.backward_D()
        self.update(self.optimizer_D, self.loss_D)
