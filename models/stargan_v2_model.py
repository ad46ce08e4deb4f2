"""StarGAN v2: one model for many domains, with styles from noise or from a reference image.

Choi, Uh, Yoo and Ha, "StarGAN v2: Diverse Image Synthesis for Multiple Domains", CVPR 2020,
written from the paper (Sec. 2, 4 and Appendix A); the networks are in
models/networks/stargan.py. Data: ``--dataset_mode multidomain``, one folder per domain.

Per batch (x of domain y, a target domain y~ with references x_ref, x_ref2, codes z, z2):
- D step: non-saturating adversarial loss of D(x, y) (real) against D(G(x, s~), y~) for a
  latent-guided s~ = F(z, y~) and a reference-guided s~ = E(x_ref, y~), plus R1 on the reals
  (``--lambda_reg``); the paper's two D steps (latent, reference) as one on their sum;
- G step: for both kinds of s~, the adversarial loss, style reconstruction |s~ - E(G(x, s~), y~)|
  (``--lambda_sty``), diversity sensitive loss -|G(x, s~) - G(x, s~2)| (``--lambda_ds``,
  decayed linearly to 0 over ``--ds_iter`` updates) and cycle |x - G(G(x, s~), E(x, y))|
  (``--lambda_cyc``). The latent-guided terms train G, F and E, the reference-guided ones G
  only (E is read with its weights detached there), as the paper's two G steps.
F and E are saved as ``net_G_mapping`` and ``net_G_style``: with ``--ema_decay`` (0.999 here,
the paper's) all three of G, F and E have weight averages, and ``test.py --use_ema`` runs them.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch.func import functional_call

from data.image_folder import load_image, make_dataset, to_unit_float
from data.multidomain_dataset import domain_folders
from models import networks
from models.base_model import BaseModel
from models.networks.stargan import MappingNetwork, MultiTaskDiscriminator, StyleEncoder, StyleGenerator
from models.registry import MODELS
from util.errors import UserError

MAPPING_GROUP = 2  # optimizer_G's parameter groups: G, E, F (F at --f_lr)


def sides(img_size: int) -> tuple:
    """Halvings of G (to a 16 px bottleneck at 256 px, at least 1) and of E/D's trunk (to 4 px)."""
    k = int(math.log2(img_size))
    return max(k - 4, 1), k - 2


def adversarial(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), float(real)))


def r1_penalty(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """0.5 E[||grad_x D(x)||^2] on real images (Mescheder et al. 2018)."""
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return 0.5 * grad.float().pow(2).flatten(1).sum(1).mean()


@MODELS.register("stargan_v2")
class StarGANv2Model(BaseModel):
    samples_per_input = True  # test.py --n_samples
    architecture_keys = BaseModel.architecture_keys + ("latent_dim", "style_dim", "mapping_hidden", "img_size",
                                                       "domains")
    unused_options = {
        **{key: "StarGAN v2's networks are its own (models/networks/stargan.py): --ngf/--ndf set their widths"
           for key in ("netG", "netD", "norm", "normG", "normD", "n_layers_D", "num_D", "spectral_norm_G",
                       "spectral_norm_D", "upsample", "attention", "no_dropout")},
        "pool_size": "D judges the current fakes, there is no image pool",
        "gan_mode": "StarGAN v2's adversarial loss is the non-saturating one with R1 (--lambda_reg)",
    }
    refused_doors = {"validation": "StarGAN v2's outputs have no paired targets to score (its data are domains, "
                                   "not pairs): validate by looking at the training pages, or test.py's gallery"}

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        # The paper's settings (Appendix A): 256 px, batch 8, Adam(0, 0.99), lr 1e-4 (F: 1e-6),
        # weight decay 1e-4, all lambdas 1, R1 gamma 1, EMA 0.999, 100K iterations.
        parser.set_defaults(dataset_mode="multidomain", init_type="kaiming", load_size=256, crop_size=256)
        parser.add_argument("--latent_dim", type=int, default=16, help="length of the latent code z")
        parser.add_argument("--style_dim", type=int, default=64, help="length of the style code s")
        parser.add_argument("--mapping_hidden", type=int, default=512, help="width of the mapping network F")
        parser.add_argument("--img_size", type=int, default=0,
                            help="the image side the networks are built for (default: --crop_size)")
        if is_train:
            parser.set_defaults(pool_size=0, batch_size=8, lr=1e-4, beta1=0.0, beta2=0.99, n_epochs_decay=0,
                                ema_decay=0.999, ema_rampup=0.0)
            parser.add_argument("--f_lr", type=float, default=1e-6, help="learning rate of the mapping network F")
            parser.add_argument("--weight_decay", type=float, default=1e-4, help="Adam's L2 weight decay")
            parser.add_argument("--lambda_reg", type=float, default=1.0, help="weight of R1 on real images")
            parser.add_argument("--lambda_sty", type=float, default=1.0, help="weight of style reconstruction")
            parser.add_argument("--lambda_ds", type=float, default=1.0,
                                help="initial weight of the diversity sensitive loss")
            parser.add_argument("--ds_iter", type=int, default=100000,
                                help="updates over which --lambda_ds decays linearly to 0")
            parser.add_argument("--lambda_cyc", type=float, default=1.0, help="weight of the cycle loss")
        else:
            parser.add_argument("--target_domain", default="",
                                help="test.py: translate into this domain only (default: every domain)")
            parser.add_argument("--ref_dir", default="",
                                help="test.py: the references of the reference-guided output, styles in "
                                     "--target_domain: input i takes image i of DIR (sorted, cycled)")
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt)
        if not opt.domains:  # before the dataset is built, or a run without train_opt.json: the folders
            opt.domains = ",".join(domain_folders(os.path.join(opt.dataroot, opt.phase)))
        if len(opt.domains.split(",")) < 2:
            raise UserError("--model stargan_v2 needs the domains: --dataset_mode multidomain reads them from "
                            "<dataroot>/<phase>/<domain>/ (or give --domains a,b)")
        self.domains = opt.domains.split(",")
        if not opt.img_size:
            opt.img_size = opt.crop_size  # saved with the run: the size the networks are built for
        if opt.img_size < 16 or opt.img_size & (opt.img_size - 1):
            raise UserError(f"--model stargan_v2 builds its networks for a power-of-two side of at least 16 "
                            f"(--img_size / --crop_size), not {opt.img_size}")
        self.n_samples = 1 if self.isTrain else opt.n_samples
        if self.n_samples < 1:
            raise UserError(f"--n_samples must be at least 1, not {self.n_samples}")
        self.targets = self.target_domains(opt)
        self.references = self.chosen_references(opt)
        self.netG = self.build_network(self.build_generator(opt, "G"))
        self.netG_mapping = self.build_network(self.build_generator(opt, "G_mapping"))
        self.netG_style = self.build_network(self.build_generator(opt, "G_style"))
        self.model_names = ["G", "G_mapping", "G_style"]
        self.visual_names = ["real", "ref", "fake_ref"] + self.sample_names()
        if not self.isTrain:
            return
        self.netD = self.build_network(networks.init_weights(
            MultiTaskDiscriminator(opt.input_nc, opt.ndf, sides(opt.img_size)[1], len(self.domains)),
            opt.init_type, opt.init_gain))
        self.model_names.append("D")
        self.loss_names = ["D_real", "D_fake", "D_reg", "G_adv", "G_sty", "G_ds", "G_cyc"]
        self.optimizer_G = self.make_adam([{"params": self.netG.parameters()}, {"params": self.netG_style.parameters()},
                                           {"params": self.netG_mapping.parameters(), "lr": opt.f_lr}])
        self.optimizer_D = self.make_adam(self.netD.parameters(), lr=opt.lr_D)
        self.optimizers = [self.optimizer_G, self.optimizer_D]
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["weight_decay"] = opt.weight_decay

    def target_domains(self, opt) -> list:
        if self.isTrain or not opt.target_domain:
            return list(self.domains)
        if opt.target_domain not in self.domains:
            raise UserError(f"--target_domain {opt.target_domain}: the run's domains are {', '.join(self.domains)}")
        return [opt.target_domain]

    def chosen_references(self, opt) -> list:
        """--ref_dir's images, sorted (the dataset's random references without it)."""
        if self.isTrain or not opt.ref_dir:
            return []
        if not opt.target_domain:
            raise UserError("--ref_dir needs --target_domain: the domain whose style the references give")
        references = make_dataset(opt.ref_dir) if os.path.isdir(opt.ref_dir) else []
        if not references:
            raise UserError(f"--ref_dir {opt.ref_dir}: no images there")
        self.tested = 0  # inputs seen: input i takes reference i (cycled)
        return references

    def sample_names(self) -> list:
        return [f"fake_{domain}_{k}" for domain in self.targets for k in range(1, self.n_samples + 1)]

    @classmethod
    def build_generator(cls, opt, name: str):
        """``G`` (the inference doors run it with its ``style``), ``G_mapping`` (F) or ``G_style`` (E)."""
        num_domains = len(opt.domains.split(","))
        g_down, trunk_down = sides(opt.img_size or opt.crop_size)
        if name == "G_mapping":
            net = MappingNetwork(opt.latent_dim, opt.style_dim, num_domains, opt.mapping_hidden)
        elif name == "G_style":
            net = StyleEncoder(opt.input_nc, opt.ngf, trunk_down, opt.style_dim, num_domains)  # --ngf: testing builds it
        else:
            net = StyleGenerator(opt.input_nc, opt.output_nc, opt.ngf, opt.style_dim, g_down)
        return networks.init_weights(net, opt.init_type, opt.init_gain)

    # ----------------------------------------------------------------- data
    def set_input(self, input: dict) -> None:
        self.real = self.to_device(input["A"])
        self.y_org = torch.as_tensor(input["A_label"], device=self.device)
        self.ref, self.ref2 = self.to_device(input["ref"]), self.to_device(input["ref2"])
        self.y_trg = torch.as_tensor(input["ref_label"], device=self.device)
        self.image_paths = input["A_paths"]
        if self.references:
            n, size = self.real.shape[0], (self.opt.img_size, self.opt.img_size)
            paths = [self.references[(self.tested + i) % len(self.references)] for i in range(n)]
            self.tested += n
            images = [F.interpolate(to_unit_float(load_image(path, self.opt.input_nc))[None] * 2 - 1, size=size,
                                    mode="bilinear", align_corners=False) for path in paths]
            self.ref = self.to_device(torch.cat(images))
            self.y_trg = torch.full((n,), self.domains.index(self.opt.target_domain), device=self.device)

    def style_of(self, image: torch.Tensor, y: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """E(image, y), at the side E is built for; ``frozen``: E's weights detached (G only learns)."""
        size = self.opt.img_size
        if image.shape[-2:] != (size, size):
            image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)
        if not frozen:
            return self.netG_style(image, y)
        encoder = self.unwrap(self.netG_style)
        return functional_call(encoder, {n: p.detach() for n, p in encoder.named_parameters()}, (image, y))

    def sample_codes(self) -> torch.Tensor:
        """Testing's ``n_samples`` latent codes, from ``--seed`` (0 without it), the same for every input."""
        generator = torch.Generator().manual_seed(self.opt.seed or 0)
        return torch.randn(self.n_samples, self.opt.latent_dim, generator=generator).to(self.device)

    def forward(self) -> None:
        """Testing: reference-guided (the item's reference, into its domain) and, for each target
        domain, ``n_samples`` latent-guided outputs."""
        n = self.real.shape[0]
        self.fake_ref = self.netG(self.real, self.style_of(self.ref, self.y_trg))
        for domain in self.targets:
            y = torch.full((n,), self.domains.index(domain), device=self.device, dtype=torch.long)
            for k, z in enumerate(self.sample_codes(), start=1):
                setattr(self, f"fake_{domain}_{k}", self.netG(self.real, self.netG_mapping(z.expand(n, -1), y)))

    def compute_visuals(self) -> None:
        if self.isTrain:
            with torch.no_grad():
                self.forward()

    # ----------------------------------------------------------------- training
    def lambda_ds(self) -> float:
        """--lambda_ds, decayed linearly to 0 over --ds_iter weight updates."""
        done = self.train_steps // self.accum_steps
        return self.opt.lambda_ds * max(0.0, 1.0 - done / max(self.opt.ds_iter, 1))

    def draw_codes(self) -> None:
        n = self.real.shape[0]
        self.z_trg, self.z_trg2 = self.random_z(n), self.random_z(n)

    def random_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.opt.latent_dim, device=self.device)

    def backward_D(self) -> None:
        with torch.no_grad():
            fakes = [self.netG(self.real, self.netG_mapping(self.z_trg, self.y_trg)),
                     self.netG(self.real, self.style_of(self.ref, self.y_trg))]
        real = self.real.detach().requires_grad_(True)
        logits = self.netD(real, self.y_org)
        self.loss_D_real = adversarial(logits, True)
        self.loss_D_reg = r1_penalty(logits, real) * self.opt.lambda_reg
        self.loss_D_fake = sum(adversarial(self.netD(fake, self.y_trg), False) for fake in fakes)
        self.loss_D = 2 * (self.loss_D_real + self.loss_D_reg) + self.loss_D_fake

    def generator_terms(self, s_trg, s_trg2, frozen: bool) -> tuple:
        """(adversarial, style reconstruction, diversity, cycle) for target styles s_trg and s_trg2."""
        fake = self.netG(self.real, s_trg)
        adv = adversarial(self.netD(fake, self.y_trg), True)
        sty = torch.mean(torch.abs(s_trg.float() - self.style_of(fake, self.y_trg, frozen).float()))
        ds = torch.mean(torch.abs(fake.float() - self.netG(self.real, s_trg2).detach().float()))
        rec = self.netG(fake, self.style_of(self.real, self.y_org, frozen))
        cyc = torch.mean(torch.abs(rec.float() - self.real))
        return adv, sty, ds, cyc

    def backward_G(self) -> None:
        opt = self.opt
        latent = self.generator_terms(self.netG_mapping(self.z_trg, self.y_trg),
                                      self.netG_mapping(self.z_trg2, self.y_trg), frozen=False)
        reference = self.generator_terms(self.style_of(self.ref, self.y_trg, frozen=True),
                                         self.style_of(self.ref2, self.y_trg, frozen=True), frozen=True)
        adv, sty, ds, cyc = (a + b for a, b in zip(latent, reference))
        self.loss_G_adv, self.loss_G_sty = adv, sty * opt.lambda_sty
        self.loss_G_ds, self.loss_G_cyc = ds * self.lambda_ds(), cyc * opt.lambda_cyc
        self.loss_G = self.loss_G_adv + self.loss_G_sty - self.loss_G_ds + self.loss_G_cyc

    def step_D(self) -> None:
        self.set_requires_grad(self.netD, True)
        self.backward_D()
        self.update(self.optimizer_D, self.loss_D)

    def step_G(self) -> None:
        """G, E and F, with D frozen."""
        self.set_requires_grad(self.netD, False)
        self.backward_G()
        self.update(self.optimizer_G, self.loss_G)

    def accumulation_phases(self):
        """``--grad_accum_mode exact``: D over the micro-batches, then G against the updated D
        (each phase draws its own codes)."""
        return [lambda: (self.draw_codes(), self.step_D()), lambda: (self.draw_codes(), self.step_G())]

    def optimize_parameters(self) -> None:
        # One set of codes for both steps: D step, then G step.
        self.draw_codes()
        self.step_D()
        self.step_G()

    def follow_schedule(self, epoch: int) -> float:
        """The schedule sets every group to --lr; F's group keeps its --f_lr ratio."""
        lr = super().follow_schedule(epoch)
        ratio = self.opt.f_lr / self.opt.lr
        group = self.optimizer_G.param_groups[MAPPING_GROUP]
        group["lr"] *= ratio
        group["initial_lr"] = group.get("initial_lr", self.opt.lr) * ratio
        scheduler = self.schedulers[0]
        if hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs[MAPPING_GROUP] = group["initial_lr"]
        return lr

    # ----------------------------------------------------------------- inference doors
    @classmethod
    def condition_translator(cls, translator, target_domain=None, seed=None, reference=None) -> None:
        """``Translator.condition(target_domain=d, seed=S)``: the style F(z, d), z drawn with seed
        S (0 without one); ``reference=image``: E(image, d), that image's style in domain d."""
        from models.inference import InferenceModel

        opt = translator.opt
        domains = opt.domains.split(",")
        if target_domain not in domains:
            raise UserError(f"give the Translator a target_domain, one of {', '.join(domains)}")
        if seed is not None and reference is not None:
            raise UserError("give the Translator a seed or a reference image, not both")
        y = torch.tensor([domains.index(target_domain)])
        helper = InferenceModel(opt, cls, "G_style" if reference is not None else "G_mapping")
        helper.setup(opt)
        net = getattr(helper, "net" + helper.model_names[0])
        with torch.no_grad():
            if reference is not None:
                image = translator.read_image(reference, opt.input_nc)
                size = opt.img_size
                image = F.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False)
                style = net(helper.to_device(image), y.to(helper.device))
            else:
                z = torch.randn(1, opt.latent_dim, generator=torch.Generator().manual_seed(int(seed or 0)))
                style = net(helper.to_device(z), y.to(helper.device))
        generator = translator.model.unwrap(translator.net)
        generator.style = style.to(generator.style.device, generator.style.dtype)
