"""pix2pix: paired image-to-image translation with a conditional GAN.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017.
The generator G maps A to B; the discriminator D judges (A, B) pairs, real or fake.
Objective: lambda_GAN * GAN(G, D) + lambda_L1 * ||B - G(A)||_1. The paper's ablation
trains with L1 only (``--lambda_GAN 0``: no D at all) and with the cGAN only (``--lambda_L1 0``).
"""

from __future__ import annotations

import torch

from models.base_model import BaseModel
from models.losses import FEATURE_MATCHING_WEIGHTS, GANLoss, feature_matching, gradient_penalty
from models.perceptual import PERCEPTUAL_FORMS, VGG_FILES, vgg_loss
from models.registry import MODELS
from util.errors import UserError


@MODELS.register("pix2pix")
class Pix2PixModel(BaseModel):
    unused_options = {"pool_size": "D judges the current fakes, there is no image pool (the reference's pix2pix)"}
    metric_visuals = {"B": ("fake_B", "real_B")}

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        # Paper defaults: U-Net 256, batch norm, aligned pairs; vanilla GAN and no image pool.
        parser.set_defaults(norm="batch", netG="unet_256", dataset_mode="aligned")
        # Paired data: each output is compared with its target (docs/metrics.md).
        parser.set_defaults(metrics="l1,psnr,ssim,lpips")
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="vanilla", best_metric="psnr")
            parser.add_argument("--lambda_L1", type=float, default=100.0, help="weight for the L1 loss; 0: cGAN only")
            parser.add_argument("--lambda_GAN", type=float, default=1.0,
                                help="weight of the adversarial loss; 0: L1 only, no discriminator is built or trained")
            parser.add_argument("--lambda_perceptual", type=float, default=0.0,
                                help="weight of the VGG feature loss of --perceptual_form; 0: off (pix2pixHD, SPADE: 10)")
            parser.add_argument("--lambda_style", type=float, default=0.0,
                                help="weight of the Gram-matrix (style) loss on the same VGG's features; 0: off")
            parser.add_argument("--perceptual_form", default="pix2pixhd", choices=PERCEPTUAL_FORMS.names(),
                                help="whose VGG loss: pix2pixhd = VGG-19 relu1_1..relu5_1 weighted 1/32..1, L1 "
                                     "(pix2pixHD, SPADE); johnson = VGG-16 relu3_3, squared L2 (Johnson et al. "
                                     "2016); vgg16_l1 = VGG-16 relu1_2..relu4_3, L1 (this project's earlier form)")
            parser.add_argument("--vgg_weights", default=None,
                                help=f"the VGG weights for those losses (default: the torch hub cache's "
                                     f"{VGG_FILES['vgg19']}, or {VGG_FILES['vgg16']} for the VGG-16 forms)")
            parser.add_argument("--lambda_feat", type=float, default=0.0,
                                help="weight of discriminator feature matching (pix2pixHD): L1 between D's features "
                                     "of the real and the fake pair, weighted by --feat_weighting; 0: off (the "
                                     "papers: 10)")
            parser.add_argument("--feat_weighting", default="pix2pixhd", choices=FEATURE_MATCHING_WEIGHTS.names(),
                                help="weight of each (scale, layer) term of --lambda_feat: pix2pixhd = 1/num_D * "
                                     "4/(n_layers_D+1) (pix2pixHD), spade = 1/num_D (SPADE)")
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt)
        self.use_gan = self.isTrain and opt.lambda_GAN > 0
        self.loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"] if self.use_gan else ["G_L1"]
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.use_gan else ["G"]
        self.netG = self.define_generator(opt.input_nc, opt.output_nc)
        if self.isTrain:
            self.criterionL1 = torch.nn.L1Loss()
            self.use_vgg = opt.lambda_perceptual > 0 or opt.lambda_style > 0
            if self.use_vgg:
                self.criterionVGG = vgg_loss(opt.perceptual_form, opt.vgg_weights).to(self.device)
                self.loss_names += ["G_perceptual", "G_style"]
            self.optimizer_G = self.make_adam(self.netG.parameters())
            self.optimizers = [self.optimizer_G]
        if self.use_gan:
            # D sees the input and the output together: a conditional GAN.
            # Several scales, or D's features for feature matching: D returns lists (pix2pixHD).
            self.multiscale = opt.num_D > 1 or opt.lambda_feat > 0
            self.netD = self.define_discriminator(opt.input_nc + opt.output_nc, multiscale=self.multiscale)
            self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
            self.use_gp = opt.gan_mode == "wgangp"
            if self.use_gp and self.multiscale:
                raise UserError("--gan_mode wgangp takes one discriminator: drop --num_D / --lambda_feat")
            if opt.lambda_feat > 0:
                self.loss_names.append("G_feat")
            if self.use_gp:
                self.loss_names.append("D_gp")
            self.optimizer_D = self.make_adam(self.netD.parameters(), lr=opt.lr_D)
            self.optimizers.append(self.optimizer_D)

    def set_input(self, input: dict) -> None:
        # The dataset applies --direction: "A" is always the input domain.
        self.real_A = self.to_device(input["A"])
        self.real_B = self.to_device(input["B"])
        self.image_paths = input["A_paths"]

    def forward(self) -> None:
        self.fake_B = self.netG(self.real_A)

    def backward_D(self) -> None:
        # Detach the fake pair: this step updates D only.
        fake_AB = torch.cat((self.real_A, self.fake_B.detach()), 1)
        real_AB = torch.cat((self.real_A, self.real_B), 1)
        pred_fake = self.netD(fake_AB)
        pred_real = self.netD(real_AB)
        self.loss_D_fake = self.gan_loss(pred_fake, False)
        self.loss_D_real = self.gan_loss(pred_real, True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        if self.use_gp:
            self.loss_D_gp = gradient_penalty(self.netD, real_AB, fake_AB, lambda_gp=self.opt.lambda_gp)
            self.loss_D = self.loss_D + self.loss_D_gp

    def backward_G(self) -> None:
        if self.use_gan:
            pred_fake = self.netD(torch.cat((self.real_A, self.fake_B), 1))
            self.loss_G_GAN = self.gan_loss(pred_fake, True, for_discriminator=False) * self.opt.lambda_GAN
            if self.opt.lambda_feat > 0:
                with torch.no_grad():
                    pred_real = self.netD(torch.cat((self.real_A, self.real_B), 1))
                self.loss_G_feat = feature_matching(pred_fake, pred_real, self.opt.feat_weighting) * self.opt.lambda_feat
        else:
            self.loss_G_GAN = 0.0
        self.loss_G_L1 = self.criterionL1(self.fake_B.float(), self.real_B) * self.opt.lambda_L1
        self.loss_G = self.loss_G_GAN + self.loss_G_L1
        if self.use_vgg:
            perceptual, style = self.criterionVGG(self.fake_B, self.real_B)
            self.loss_G_perceptual = perceptual * self.opt.lambda_perceptual
            self.loss_G_style = style * self.opt.lambda_style
            self.loss_G = self.loss_G + self.loss_G_perceptual + self.loss_G_style
        if self.use_gan and self.opt.lambda_feat > 0:
            self.loss_G = self.loss_G + self.loss_G_feat

    def gan_loss(self, prediction, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        """The GAN loss of D's output; with several scales, their sum."""
        if not self.multiscale:
            return self.criterionGAN(prediction.float(), target_is_real, for_discriminator)
        return sum(self.criterionGAN(scale[-1].float(), target_is_real, for_discriminator) for scale in prediction)

    def accumulation_phases(self):
        """``--grad_accum_mode exact``: D over the micro-batches, then G against the updated D."""
        phases = self.gan_phases(self.forward)
        return phases if self.use_gan else phases[1:]

    def optimize_parameters(self) -> None:
        self.forward()
        self.gan_step(with_discriminator=self.use_gan)
