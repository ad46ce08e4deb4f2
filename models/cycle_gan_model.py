"""CycleGAN: unpaired image-to-image translation with cycle consistency.

Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017. G_A: A -> B, G_B: B -> A, D_A judges B images, D_B judges A images.
Objective: GAN(G_A, D_A) + GAN(G_B, D_B) + lambda_A * ||G_B(G_A(A)) - A||_1
+ lambda_B * ||G_A(G_B(B)) - B||_1, plus an optional identity loss
lambda_identity * (lambda_B * ||G_A(B) - B||_1 + lambda_A * ||G_B(A) - A||_1).
"""

from __future__ import annotations

import itertools
from typing import Optional

import torch

from models.base_model import BaseModel
from models.image_pool import ImagePool
from models.losses import GANLoss, gradient_penalty
from models.registry import MODELS
from util.errors import UserError


@MODELS.register("cycle_gan")
class CycleGANModel(BaseModel):
    unused_options = {"num_D": "CycleGAN's discriminators are single-scale PatchGANs (--num_D is pix2pix's)",
                      "grad_accum_mode": "CycleGAN steps G before D, against D before its update, and D on the "
                                         "fakes of that forward: --grad_accum_steps K already gives the gradients "
                                         "of a batch of K x batch_size"}
    # Both translations are scored; metric names get the target domain: fid_B is A -> B.
    metric_visuals = {"B": ("fake_B", "real_B"), "A": ("fake_A", "real_A")}
    # The generator of each direction, for translate.py, export.py and the Translator.
    generator_by_direction = {"AtoB": "G_A", "BtoA": "G_B"}

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        # Paper defaults: ResNet-9 generators with instance norm, no dropout, LSGAN, pool of 50.
        parser.set_defaults(no_dropout=True)
        # Unpaired: compare the distributions; paired metrics too where the data has pairs.
        parser.set_defaults(metrics="fid,kid,l1,psnr,ssim,lpips")
        if is_train:
            parser.set_defaults(best_metric="fid,psnr")
            parser.add_argument("--lambda_A", type=float, default=10.0, help="weight for cycle loss (A -> B -> A)")
            parser.add_argument("--lambda_B", type=float, default=10.0, help="weight for cycle loss (B -> A -> B)")
            parser.add_argument("--lambda_identity", type=float, default=0.5,
                                help="weight of the identity loss, relative to lambda_A/lambda_B; 0 turns it off")
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt)
        self.loss_names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
        visual_names_A = ["real_A", "fake_B", "rec_A"]
        visual_names_B = ["real_B", "fake_A", "rec_B"]
        self.use_identity = self.isTrain and opt.lambda_identity > 0.0
        if self.use_identity:
            if opt.input_nc != opt.output_nc:
                raise UserError(f"the identity loss needs --input_nc == --output_nc (got {opt.input_nc} "
                                f"and {opt.output_nc}); pass --lambda_identity 0")
            visual_names_A.append("idt_B")
            visual_names_B.append("idt_A")
        else:
            self.loss_names = [n for n in self.loss_names if not n.startswith("idt")]
        self.visual_names = visual_names_A + visual_names_B
        self.model_names = ["G_A", "G_B", "D_A", "D_B"] if self.isTrain else ["G_A", "G_B"]

        self.netG_A = self.build_network(self.build_generator(opt, "G_A"))
        self.netG_B = self.build_network(self.build_generator(opt, "G_B"))
        if self.isTrain:
            self.netD_A = self.define_discriminator(opt.output_nc)
            self.netD_B = self.define_discriminator(opt.input_nc)
            self.fake_A_pool = ImagePool(opt.pool_size)
            self.fake_B_pool = ImagePool(opt.pool_size)
            self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
            self.criterionCycle = torch.nn.L1Loss()
            self.criterionIdt = torch.nn.L1Loss()
            self.use_gp = opt.gan_mode == "wgangp"
            if self.use_gp:
                self.loss_names += ["D_A_gp", "D_B_gp"]
            self.optimizer_G = self.make_adam(itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()))
            self.optimizer_D = self.make_adam(itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()),
                                              lr=opt.lr_D)
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    @classmethod
    def inference_generator(cls, opt, direction: Optional[str]) -> str:
        return cls.generator_by_direction[direction or "AtoB"]

    @classmethod
    def generator_channels(cls, opt, name: str) -> tuple:
        return (opt.output_nc, opt.input_nc) if name == "G_B" else (opt.input_nc, opt.output_nc)

    def set_input(self, input: dict) -> None:
        # The dataset applies --direction: "A" is always the input domain.
        self.real_A = self.to_device(input["A"])
        self.real_B = self.to_device(input["B"])
        self.image_paths = input["A_paths"]

    def forward(self) -> None:
        self.fake_B = self.netG_A(self.real_A)  # G_A(A)
        self.rec_A = self.netG_B(self.fake_B)  # G_B(G_A(A))
        self.fake_A = self.netG_B(self.real_B)  # G_B(B)
        self.rec_B = self.netG_A(self.fake_A)  # G_A(G_B(B))

    def backward_D_basic(self, netD, real: torch.Tensor, fake: torch.Tensor, gp_name: str) -> torch.Tensor:
        """D's loss on one domain: real as real, (pooled, detached) fake as fake."""
        fake = fake.detach()
        pred_real = netD(real)
        pred_fake = netD(fake)
        loss_D = (self.criterionGAN(pred_real.float(), True) + self.criterionGAN(pred_fake.float(), False)) * 0.5
        if self.use_gp:
            penalty = gradient_penalty(netD, real, fake, lambda_gp=self.opt.lambda_gp)
            setattr(self, "loss_" + gp_name, penalty)
            loss_D = loss_D + penalty
        return loss_D

    def backward_D(self) -> None:
        fake_B = self.fake_B_pool.query(self.fake_B)
        fake_A = self.fake_A_pool.query(self.fake_A)
        self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, fake_B, "D_A_gp")
        self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, fake_A, "D_B_gp")

    def backward_G(self) -> None:
        lambda_idt = self.opt.lambda_identity
        lambda_A, lambda_B = self.opt.lambda_A, self.opt.lambda_B
        if self.use_identity:
            self.idt_A = self.netG_A(self.real_B)  # G_A should leave B images unchanged
            self.idt_B = self.netG_B(self.real_A)
        pred_A = self.netD_A(self.fake_B)
        pred_B = self.netD_B(self.fake_A)
        if self.use_identity:
            self.loss_idt_A = self.criterionIdt(self.idt_A.float(), self.real_B) * lambda_B * lambda_idt
            self.loss_idt_B = self.criterionIdt(self.idt_B.float(), self.real_A) * lambda_A * lambda_idt
        else:
            self.loss_idt_A = self.loss_idt_B = 0.0
        self.loss_G_A = self.criterionGAN(pred_A.float(), True, for_discriminator=False)
        self.loss_G_B = self.criterionGAN(pred_B.float(), True, for_discriminator=False)
        self.loss_cycle_A = self.criterionCycle(self.rec_A.float(), self.real_A) * lambda_A
        self.loss_cycle_B = self.criterionCycle(self.rec_B.float(), self.real_B) * lambda_B
        self.loss_G = (self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B
                       + self.loss_idt_A + self.loss_idt_B)

    def optimize_parameters(self) -> None:
        self.forward()
        # G_A and G_B step; the discriminators get no gradients here
        self.set_requires_grad([self.netD_A, self.netD_B], False)
        self.backward_G()
        self.update(self.optimizer_G, self.loss_G)
        # D_A and D_B step
        self.set_requires_grad([self.netD_A, self.netD_B], True)
        self.backward_D()
        self.update(self.optimizer_D, self.loss_D_A + self.loss_D_B)

    def extra_state(self) -> dict:
        return {"fake_A_pool": self.fake_A_pool.state_dict(), "fake_B_pool": self.fake_B_pool.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        if "fake_A_pool" in state:
            self.fake_A_pool.load_state_dict(state["fake_A_pool"])
            self.fake_B_pool.load_state_dict(state["fake_B_pool"])
