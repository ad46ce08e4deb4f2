"""CUT and FastCUT: unpaired translation with patchwise contrastive learning.

Park, Efros, Zhang and Zhu, "Contrastive Learning for Unpaired Image-to-Image Translation",
ECCV 2020. One generator G: A -> B and one discriminator D of B images. Besides the GAN
loss, PatchNCE (models/patchnce.py) makes each patch of G(A) closer, in G's encoder
features, to the patch of A at the same place than to the other patches of A. CUT adds the
same loss on G(B) against B (``--nce_idt``) as an identity term; FastCUT drops it, weights
PatchNCE by 10 and asks G to commute with horizontal flips (``--flip_equivariance``).
Objective: lambda_GAN * GAN(G, D) + lambda_NCE * PatchNCE(G(A), A) [+ ... (G(B), B)] / 2.

netF (the patch MLPs) is sized by G's features, so it is built from the first batch
(``data_dependent_initialize``) and trained with G (a parameter group of G's Adam: the
CUT code's separate Adam with the same settings takes the same steps); test.py loads G only.

As in the CUT code, D is its anti-aliased PatchGAN (``AntialiasNLayerDiscriminator``, stride-2
convs with ``--no_antialias``), the epochs after ``--n_epochs`` load images at ``--crop_size``
(no resize-and-crop jitter while the rate decays; ``--decay_jitter`` keeps it) and an epoch's
short last batch is left out. A run of the CUT repository (``latest_net_G/F/D.pth``)
continues here with ``--continue_train``.
"""

from __future__ import annotations

import argparse

import torch

from models import networks
from models.base_model import BaseModel
from models.losses import GANLoss
from models.networks.antialias import AntialiasNLayerDiscriminator, AntialiasResnetGenerator
from models.patchnce import PatchSampleF, patchnce_loss
from models.registry import MODELS
from util.errors import UserError
from util.registry import Registry

# Defaults of each --CUT_mode, from the CUT code (FastCUT's epochs included).
CUT_MODES = Registry("CUT mode")
CUT_MODES.add("cut", dict(nce_idt=True, lambda_NCE=1.0, flip_equivariance=False, n_epochs=200, n_epochs_decay=200))
CUT_MODES.add("fastcut", dict(nce_idt=False, lambda_NCE=10.0, flip_equivariance=True, n_epochs=150,
                              n_epochs_decay=50))
# PatchNCE reads the encoder layers of a ResNet generator: n_blocks by --netG.
RESNET_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}
NET_F = {"mlp_sample": True, "sample": False}  # --netF -> with MLPs


def cut_mode(value: str) -> str:
    try:  # --CUT_mode CUT and FastCUT, as the CUT code spells them
        CUT_MODES.get(value.lower())
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value.lower()


def str2bool(value: str) -> bool:
    """``--flag``, ``--flag true`` and ``--flag false`` (CUT's boolean flags take a value)."""
    table = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if value.lower() not in table:
        raise argparse.ArgumentTypeError(f"'{value}' is not a boolean (true or false)")
    return table[value.lower()]


def define_cut_G(input_nc: int, output_nc: int, ngf: int, netG: str, norm: str, use_dropout: bool,
                 antialias: bool, antialias_up: bool, init_type: str, init_gain: float):
    """CUT's generator (models/networks/antialias.py), built and initialized."""
    reason = CUTModel.generator_refusal(netG)
    if reason is not None:
        raise UserError(reason)
    net = AntialiasResnetGenerator(input_nc, output_nc, ngf, networks.get_norm_layer(norm), use_dropout,
                                   RESNET_BLOCKS[netG], antialias, antialias_up)
    return networks.init_weights(net, init_type, init_gain)


def define_cut_D(input_nc: int, ndf: int, netD: str, n_layers_D: int, norm: str, init_type: str, init_gain: float,
                 antialias: bool, spectral_norm) -> torch.nn.Module:
    """CUT's discriminator: the PatchGANs (``basic``, ``n_layers``) anti-aliased as in the CUT
    code unless ``--no_antialias``; ``pixel`` and outside classes as everywhere else."""
    if not antialias or netD not in ("basic", "n_layers"):
        return networks.define_D(input_nc, ndf, netD, n_layers_D, norm, init_type, init_gain, spectral_norm)
    net = AntialiasNLayerDiscriminator(input_nc, ndf, 3 if netD == "basic" else n_layers_D,
                                       networks.get_norm_layer(norm))
    place = networks.SPECTRAL_NORM_PLACEMENTS.get(networks.spectral_norm_placement(spectral_norm))
    return place(networks.init_weights(net, init_type, init_gain))


@MODELS.register("cut")
class CUTModel(BaseModel):
    metric_visuals = {"B": ("fake_B", "real_B")}
    # The CUT code trains on full batches only (data/__init__.py: drop_last=True if opt.isTrain).
    drop_last_batch = True
    architecture_keys = BaseModel.architecture_keys + ("no_antialias", "no_antialias_up")
    unused_options = {
        **{key: "CUT's generator is its own anti-aliased ResNet (models/networks/antialias.py), without it"
           for key in ("spectral_norm_G", "upsample", "attention")},
        "num_D": "CUT has one single-scale discriminator (--num_D is pix2pix's)",
        "pool_size": "CUT's D judges the current fakes, there is no image pool (as in the CUT code)",
    }

    @classmethod
    def generator_refusal(cls, netG: str):
        if netG in RESNET_BLOCKS:
            return None
        return (f"--model cut needs a ResNet generator, --netG {' or '.join(RESNET_BLOCKS)}: PatchNCE reads "
                "its encoder layers")

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        # CUT's defaults: ResNet-9 with instance norm, no dropout, xavier init, LSGAN, no pool.
        parser.set_defaults(no_dropout=True, init_type="xavier", metrics="fid,kid,l1,psnr,ssim,lpips")
        parser.add_argument("--CUT_mode", type=cut_mode, default="cut",
                            help="CUT or FastCUT: chooses --nce_idt, --lambda_NCE, --flip_equivariance and the epochs")
        parser.add_argument("--no_antialias", action="store_true",
                            help="stride-2 convs instead of anti-aliased downsampling in G and D")
        parser.add_argument("--no_antialias_up", action="store_true",
                            help="transposed convs instead of anti-aliased upsampling in G")
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="lsgan", best_metric="fid,psnr")
            parser.add_argument("--lambda_GAN", type=float, default=1.0, help="weight of the GAN loss")
            parser.add_argument("--lambda_NCE", type=float, default=1.0, help="weight of PatchNCE (10 for FastCUT)")
            parser.add_argument("--nce_idt", type=str2bool, nargs="?", const=True, default=True,
                                help="PatchNCE on G(B) against B too (CUT: on, FastCUT: off)")
            parser.add_argument("--nce_layers", default="0,4,8,12,16", help="G layers whose features PatchNCE compares")
            parser.add_argument("--nce_includes_all_negatives_from_minibatch", type=str2bool, nargs="?", const=True,
                                default=False, help="negatives from every image of the batch, not only the same one")
            parser.add_argument("--netF", default="mlp_sample", choices=list(NET_F),
                                help="patch features: sampled and projected by MLPs, or only sampled")
            parser.add_argument("--netF_nc", type=int, default=256, help="width of netF's MLPs")
            parser.add_argument("--nce_T", type=float, default=0.07, help="temperature of PatchNCE")
            parser.add_argument("--num_patches", type=int, default=256, help="patches sampled per layer")
            parser.add_argument("--decay_jitter", action="store_true",
                                help="keep the resize-and-crop jitter (--load_size) in the --n_epochs_decay epochs; "
                                     "without it they load at --crop_size, CUT's fine-tuning phase")
            parser.add_argument("--flip_equivariance", type=str2bool, nargs="?", const=True, default=False,
                                help="flip the input at random and ask G's features to follow (FastCUT)")
        return parser

    @staticmethod
    def mode_defaults(parser, known, is_train: bool) -> None:
        """Defaults that depend on ``--CUT_mode`` (options/base_options.py calls this)."""
        if is_train:
            parser.set_defaults(**CUT_MODES[known.CUT_mode])

    def __init__(self, opt) -> None:
        super().__init__(opt)
        self.nce_idt = self.isTrain and opt.nce_idt
        self.flip_equivariance = self.isTrain and opt.flip_equivariance
        self.loss_names = ["G_GAN", "D_real", "D_fake", "G", "NCE"] + (["NCE_Y"] if self.nce_idt else [])
        self.visual_names = ["real_A", "fake_B", "real_B"] + (["idt_B"] if self.nce_idt else [])
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        if not self.isTrain and opt.dataset_mode == "single":
            self.metric_visuals = {}  # A images only: nothing to compare the translations with
        self.netG = self.build_network(self.build_generator(opt, "G"))
        self.flipped = False
        if self.isTrain:
            try:
                self.nce_layers = [int(i) for i in opt.nce_layers.split(",")]
            except ValueError:
                raise UserError(f"--nce_layers takes layer numbers separated by commas, not '{opt.nce_layers}'") from None
            if self.nce_idt and opt.input_nc != opt.output_nc:
                raise UserError(f"--nce_idt needs --input_nc == --output_nc (got {opt.input_nc} and "
                                f"{opt.output_nc}); pass --nce_idt false")
            self.netD = self.build_network(define_cut_D(
                opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.normD, opt.init_type, opt.init_gain,
                not opt.no_antialias, opt.spectral_norm_D))
            self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
            self.optimizer_G = self.make_adam(self.netG.parameters())
            self.optimizer_D = self.make_adam(self.netD.parameters(), lr=opt.lr_D)
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    @classmethod
    def build_generator(cls, opt, name: str):
        """CUT's anti-aliased ResNet (also what translate.py, export.py and the Translator load)."""
        return define_cut_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.normG, not opt.no_dropout,
                            not opt.no_antialias, not opt.no_antialias_up, opt.init_type, opt.init_gain)

    def data_dependent_initialize(self, data: dict) -> None:
        """Build netF from G's features on the first batch and train it with G."""
        if not self.isTrain or self.opt.lambda_NCE <= 0.0:
            return
        if "A" not in data:
            raise UserError(f"no readable image in {self.opt.dataroot} to set up netF with")
        self.set_input(data)
        with torch.no_grad():
            feats = self.netG(self.real_A[:1], self.nce_layers, encode_only=True)
        if len(feats) != len(self.nce_layers):
            raise UserError(f"--nce_layers {self.opt.nce_layers}: G has layers 0 to "
                            f"{len(self.unwrap(self.netG).model) - 1}")
        netF = PatchSampleF(use_mlp=NET_F[self.opt.netF], nc=self.opt.netF_nc)
        netF.create_mlps([f.shape[1] for f in feats])
        self.netF = self.build_network(networks.init_weights(netF, self.opt.init_type, self.opt.init_gain))
        if any(True for _ in self.netF.parameters()):
            self.model_names.insert(1, "F")
            self.optimizer_G.add_param_group({"params": list(self.netF.parameters())})

    def set_input(self, input: dict) -> None:
        # The dataset applies --direction: "A" is always the input domain.
        self.real_A = self.to_device(input["A"])
        self.real_B = self.to_device(input["B"]) if "B" in input else None
        self.image_paths = input["A_paths"]

    def forward(self) -> None:
        self.fake_B = self.netG(self.real_A)

    def forward_train(self) -> None:
        """The training step's forward: G(A) with G(B) for the identity term, flipped at random."""
        real = torch.cat((self.real_A, self.real_B), 0) if self.nce_idt else self.real_A
        # The draw comes from torch's generator, saved in checkpoints: resumes repeat it.
        self.flipped = self.flip_equivariance and bool(torch.rand(()) < 0.5)
        if self.flipped:
            real = real.flip(3)
        fake = self.netG(real)
        n = self.real_A.shape[0]
        self.fake_B = fake[:n]
        if self.nce_idt:
            self.idt_B = fake[n:]

    def backward_D(self) -> None:
        pred_fake = self.netD(self.fake_B.detach())
        pred_real = self.netD(self.real_B)
        self.loss_D_fake = self.criterionGAN(pred_fake.float(), False)
        self.loss_D_real = self.criterionGAN(pred_real.float(), True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5

    def nce_loss(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """PatchNCE of G(src) = ``tgt`` against ``src``, averaged over --nce_layers."""
        opt = self.opt
        feat_q = self.netG(tgt, self.nce_layers, encode_only=True)
        if self.flipped:  # tgt came from the flipped input: flip its features back onto src's
            feat_q = [f.flip(3) for f in feat_q]
        with torch.no_grad():  # keys are targets: PatchNCE sends no gradient through them
            feat_k = self.netG(src, self.nce_layers, encode_only=True)
            k_pool, patch_ids = self.netF(feat_k, opt.num_patches, None)
        q_pool, _ = self.netF(feat_q, opt.num_patches, patch_ids)
        total = 0.0
        for q, k in zip(q_pool, k_pool):
            total = total + patchnce_loss(q, k, src.shape[0], opt.nce_T,
                                          opt.nce_includes_all_negatives_from_minibatch).mean() * opt.lambda_NCE
        return total / len(self.nce_layers)

    def backward_G(self) -> None:
        opt = self.opt
        if opt.lambda_GAN > 0.0:
            pred_fake = self.netD(self.fake_B)
            self.loss_G_GAN = self.criterionGAN(pred_fake.float(), True, for_discriminator=False) * opt.lambda_GAN
        else:
            self.loss_G_GAN = 0.0
        self.loss_NCE = self.nce_loss(self.real_A, self.fake_B) if opt.lambda_NCE > 0.0 else 0.0
        if self.nce_idt and opt.lambda_NCE > 0.0:
            self.loss_NCE_Y = self.nce_loss(self.real_B, self.idt_B)
            nce = (self.loss_NCE + self.loss_NCE_Y) * 0.5
        else:
            nce = self.loss_NCE
        self.loss_G = self.loss_G_GAN + nce

    def accumulation_phases(self):
        """``--grad_accum_mode exact``: D over the micro-batches, then G (and netF) against the updated D.
        FastCUT's flip is drawn again in G's phase."""
        return self.gan_phases(self.forward_train)

    def optimize_parameters(self) -> None:
        self.forward_train()
        self.gan_step()  # D, then G and netF against D frozen
