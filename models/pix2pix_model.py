"""pix2pix: paired image-to-image translation with a conditional GAN.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017.
The generator G maps A to B; the discriminator D judges (A, B) pairs, real or fake.
Objective: GAN(G, D) + lambda_L1 * ||B - G(A)||_1.
"""

from __future__ import annotations

import torch

from models import MODELS, networks
from models.base_model import BaseModel
from models.losses import GANLoss, gradient_penalty


@MODELS.register("pix2pix")
class Pix2PixModel(BaseModel):
    metric_visuals = {"B": ("fake_B", "real_B")}

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        # Paper defaults: U-Net 256, batch norm, aligned pairs; vanilla GAN and no image pool.
        parser.set_defaults(norm="batch", netG="unet_256", dataset_mode="aligned")
        # Paired data: each output is compared with its target (docs/metrics.md).
        parser.set_defaults(metrics="l1,psnr,ssim,lpips")
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="vanilla", best_metric="psnr")
            parser.add_argument("--lambda_L1", type=float, default=100.0, help="weight for the L1 loss")
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt)
        self.loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"]
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        self.netG = self.build_network(self.define_generator(opt))
        if self.isTrain:
            # D sees the input and the output together: a conditional GAN.
            self.netD = self.build_network(self.define_discriminator(opt))
            self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
            self.criterionL1 = torch.nn.L1Loss()
            self.use_gp = opt.gan_mode == "wgangp"
            if self.use_gp:
                self.loss_names.append("D_gp")
            self.optimizer_G = self.make_adam(self.netG.parameters())
            self.optimizer_D = self.make_adam(self.netD.parameters())
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    def define_generator(self, opt):
        return networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm, not opt.no_dropout,
                                 opt.init_type, opt.init_gain)

    def define_discriminator(self, opt):
        return networks.define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                                 opt.init_type, opt.init_gain)

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
        self.loss_D_fake = self.criterionGAN(pred_fake.float(), False)
        self.loss_D_real = self.criterionGAN(pred_real.float(), True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        if self.use_gp:
            self.loss_D_gp = gradient_penalty(self.netD, real_AB, fake_AB, lambda_gp=self.opt.lambda_gp)
            self.loss_D = self.loss_D + self.loss_D_gp

    def backward_G(self) -> None:
        pred_fake = self.netD(torch.cat((self.real_A, self.fake_B), 1))
        self.loss_G_GAN = self.criterionGAN(pred_fake.float(), True, for_discriminator=False)
        self.loss_G_L1 = self.criterionL1(self.fake_B.float(), self.real_B) * self.opt.lambda_L1
        self.loss_G = self.loss_G_GAN + self.loss_G_L1

    def optimize_parameters(self) -> None:
        self.forward()
        # D step
        self.set_requires_grad(self.netD, True)
        self.backward_D()
        self.update(self.optimizer_D, self.loss_D)
        # G step; D's weights get no gradients here
        self.set_requires_grad(self.netD, False)
        self.backward_G()
        self.update(self.optimizer_G, self.loss_G)
