"""BicycleGAN: many plausible outputs per input, from paired data.

Zhu, Zhang, Pathak, Darrell, Efros, Wang and Shechtman, "Toward Multimodal Image-to-Image
Translation", NeurIPS 2017. G(A, z) is a U-Net with a latent code z (nz 8) at every level;
an encoder E maps a B image to a Gaussian over z. Each batch is split in two halves:

- cVAE-GAN (first half): z = E(B) sampled, G(A, z) must rebuild B (L1) and fool D; a KL
  term pulls E's Gaussian towards N(0, I);
- cLR-GAN: z ~ N(0, I), G(A, z) on the same A must fool D2 (whose real images are the
  second half's B), and E must find z again (L1 on E's mean). That term updates G only: E
  reads G's output with its weights held fixed.

Objective (Sec. 3.3): GAN(D, cVAE) + GAN(D2, cLR) + lambda_L1 L1 + lambda_kl KL + lambda_z
z-L1. The authors' step updates G and E first, then D and D2 on the same (detached) fakes.
Their code is junyanz/BicycleGAN (models/bicycle_gan_model.py); docs/models.md lists the
defaults taken from it.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from models import networks
from models.base_model import BaseModel
from models.losses import GANLoss
from models.networks.generators import UNET_SIDES
from models.networks.latent import ENCODER_BLOCKS, WHERE_ADD, LatentEncoder, LatentUnetGenerator
from models.registry import MODELS
from util.errors import UserError

UNETS = {f"unet_{side}": side.bit_length() - 1 for side in UNET_SIDES}


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the batch and z (the authors' sum)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


@MODELS.register("bicycle_gan")
class BicycleGANModel(BaseModel):
    metric_visuals = {"B": ("fake_B_encoded", "real_B")}
    samples_per_input = True  # test.py --n_samples
    # The halves of a batch must be equal: an epoch's short last batch is left out.
    drop_last_batch = True
    architecture_keys = BaseModel.architecture_keys + ("nz", "where_add", "netE", "nef")
    unused_options = {
        **{key: "BicycleGAN's generator is its own U-Net with z at every level (models/networks/latent.py)"
           for key in ("spectral_norm_G", "upsample", "attention")},
        "pool_size": "D and D2 judge the current fakes, there is no image pool (as in the BicycleGAN code)",
    }

    @classmethod
    def generator_refusal(cls, netG: str):
        if netG in UNETS:
            return None
        return f"--model bicycle_gan takes a U-Net generator (unet_N): z is added at each of its levels, not {netG}"

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        # The authors' defaults (options/base_options.py, train_options.py of their code).
        parser.set_defaults(norm="instance", netG="unet_256", dataset_mode="aligned", init_type="xavier",
                            no_dropout=True, num_D=2, metrics="l1,psnr,ssim,lpips")
        parser.add_argument("--nz", type=int, default=8, help="length of the latent code z")
        parser.add_argument("--where_add", default="all", choices=WHERE_ADD,
                            help="where G reads z: at every U-Net level (all), or with the input only")
        parser.add_argument("--netE", default="resnet_256", choices=list(ENCODER_BLOCKS),
                            help="the encoder E: a ResNet of 4 (resnet_128) or 5 (resnet_256) stages")
        parser.add_argument("--nef", type=int, default=64, help="# of encoder filters in its first conv layer")
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="lsgan", batch_size=2, best_metric="psnr")
            parser.add_argument("--lambda_L1", type=float, default=10.0, help="weight of |B - G(A, E(B))|")
            parser.add_argument("--lambda_GAN", type=float, default=1.0, help="weight of D's loss on G(A, E(B))")
            parser.add_argument("--lambda_GAN2", type=float, default=1.0, help="weight of D2's loss on G(A, z)")
            parser.add_argument("--lambda_z", type=float, default=0.5, help="weight of |E(G(A, z)) - z| (G only)")
            parser.add_argument("--lambda_kl", type=float, default=0.01, help="weight of the KL term of E")
            parser.add_argument("--use_same_D", action="store_true", help="one discriminator for both halves")
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt)
        if self.isTrain and opt.batch_size % 2:
            raise UserError(f"--model bicycle_gan splits each batch into a cVAE-GAN and a cLR-GAN half: "
                            f"--batch_size must be even, not {opt.batch_size}")
        self.n_samples = 1 if self.isTrain else opt.n_samples
        if self.n_samples < 1:
            raise UserError(f"--n_samples must be at least 1, not {self.n_samples}")
        self.netG = self.build_network(self.build_generator(opt, "G"))
        self.netE = self.build_network(self.build_generator(opt, "E"))
        self.model_names = ["G", "E"]
        self.visual_names = ["real_A", "real_B", "fake_B_encoded"] + self.sample_names()
        if not self.isTrain:
            return
        self.use_D2 = not opt.use_same_D
        self.loss_names = ["G_GAN", "G_GAN2", "D", "D2", "G_L1", "z_L1", "kl"]
        self.netD = self.define_discriminator(opt.output_nc, multiscale=True)
        self.model_names.append("D")
        d_params = list(self.netD.parameters())
        if self.use_D2:
            self.netD2 = self.define_discriminator(opt.output_nc, multiscale=True)
            self.model_names.append("D2")
            d_params += list(self.netD2.parameters())
        self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
        self.criterionL1 = torch.nn.L1Loss()
        # G and E: one Adam over both (Adam is per weight: the authors' two Adams take the same steps).
        self.optimizer_G = self.make_adam(list(self.netG.parameters()) + list(self.netE.parameters()))
        self.optimizer_D = self.make_adam(d_params, lr=opt.lr_D)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    def sample_names(self) -> list:
        return [f"fake_B_sample_{k}" for k in range(1, self.n_samples + 1)]

    @classmethod
    def build_generator(cls, opt, name: str):
        """``G`` (translate.py, export.py and the Translator run it with its ``latent``) or ``E``."""
        norm = networks.get_norm_layer(opt.normG)
        if name == "E":
            net = LatentEncoder(opt.output_nc, opt.nz, opt.nef, ENCODER_BLOCKS[opt.netE], norm)
        else:
            reason = cls.generator_refusal(opt.netG)
            if reason is not None:
                raise UserError(reason)
            net = LatentUnetGenerator(opt.input_nc, opt.output_nc, opt.nz, UNETS[opt.netG], opt.ngf, norm,
                                      not opt.no_dropout, opt.where_add)
        return networks.init_weights(net, opt.init_type, opt.init_gain)

    @classmethod
    def generator_channels(cls, opt, name: str) -> tuple:
        return (opt.output_nc, opt.nz) if name == "E" else (opt.input_nc, opt.output_nc)

    def set_input(self, input: dict) -> None:
        # The dataset applies --direction: "A" is always the input domain.
        self.real_A = self.to_device(input["A"])
        self.real_B = self.to_device(input["B"]) if "B" in input else None
        self.image_paths = input["A_paths"]

    def random_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.opt.nz, device=self.device)

    def encode(self, image: torch.Tensor):
        """z sampled from E's Gaussian (the reparameterization trick), with its mean and log-variance."""
        mu, logvar = self.netE(image)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return z, mu, logvar

    def sample_codes(self) -> torch.Tensor:
        """The ``n_samples`` codes of testing, n_samples x nz: drawn from N(0, I) with ``--seed``
        (0 without it), the same for every input, so that a gallery column is one code."""
        generator = torch.Generator().manual_seed(self.opt.seed or 0)
        return torch.randn(self.n_samples, self.opt.nz, generator=generator).to(self.device)

    def forward(self) -> None:
        """Testing: G(A, E(B)'s mean) where B is there, and ``n_samples`` outputs for z ~ N(0, I)."""
        if self.real_B is not None:
            self.fake_B_encoded = self.netG(self.real_A, self.netE(self.real_B)[0])
        n = self.real_A.shape[0]
        for name, z in zip(self.sample_names(), self.sample_codes()):
            setattr(self, name, self.netG(self.real_A, z.expand(n, -1)))

    def compute_visuals(self) -> None:
        """Pages show the full batch: the training step's tensors are half batches."""
        if self.isTrain:
            with torch.no_grad():
                self.forward()

    def forward_train(self) -> None:
        half = self.real_A.shape[0] // 2
        self.real_A_encoded, self.real_B_encoded = self.real_A[:half], self.real_B[:half]
        self.real_B_random = self.real_B[half:]
        self.z_encoded, self.mu, self.logvar = self.encode(self.real_B_encoded)
        self.z_random = self.random_z(half)
        self.fake_B_train_encoded = self.netG(self.real_A_encoded, self.z_encoded)
        self.fake_B_random = self.netG(self.real_A_encoded, self.z_random)

    def discriminator(self, second: bool):
        return self.netD2 if second and self.use_D2 else self.netD

    def gan_loss(self, prediction, target_is_real: bool) -> torch.Tensor:
        """LSGAN (or --gan_mode) summed over the discriminator's scales, as the authors' GANLoss."""
        return sum(self.criterionGAN(scale[-1].float(), target_is_real) for scale in prediction)

    def backward_G(self) -> None:
        opt = self.opt
        self.loss_G_GAN = self.gan_loss(self.netD(self.fake_B_train_encoded), True) * opt.lambda_GAN
        self.loss_G_GAN2 = self.gan_loss(self.discriminator(True)(self.fake_B_random), True) * opt.lambda_GAN2
        self.loss_kl = kl_divergence(self.mu.float(), self.logvar.float()) * opt.lambda_kl
        self.loss_G_L1 = self.criterionL1(self.fake_B_train_encoded.float(), self.real_B_encoded) * opt.lambda_L1
        # z-L1 updates G only: E reads G's output with its weights detached (the authors freeze E
        # for this term's backward pass).
        encoder = self.unwrap(self.netE)
        frozen = {name: p.detach() for name, p in encoder.named_parameters()}
        mu_random = functional_call(encoder, frozen, (self.fake_B_random,))[0]
        self.loss_z_L1 = torch.mean(torch.abs(mu_random.float() - self.z_random)) * opt.lambda_z
        self.loss_G = self.loss_G_GAN + self.loss_G_GAN2 + self.loss_G_L1 + self.loss_kl + self.loss_z_L1

    def backward_D(self) -> None:
        """D on (B, G(A, E(B))), D2 on (the other half's B, G(A, z)); the fakes detached."""
        pairs = ((False, self.real_B_encoded, self.fake_B_train_encoded), (True, self.real_B_random, self.fake_B_random))
        losses = [self.gan_loss(self.discriminator(second)(fake.detach()), False)
                  + self.gan_loss(self.discriminator(second)(real), True) for second, real, fake in pairs]
        self.loss_D, self.loss_D2 = losses
        self.loss_D_total = self.loss_D + self.loss_D2

    def accumulation_phases(self):
        """``--grad_accum_mode exact``: G and E over the micro-batches, then D and D2 on fakes of
        the updated G (drawn again, without gradients)."""
        def generator_phase() -> None:
            self.forward_train()
            self.set_requires_grad(self.discriminators(), False)
            self.backward_G()
            self.update(self.optimizer_G, self.loss_G)

        def discriminator_phase() -> None:
            with torch.no_grad():
                self.forward_train()
            self.set_requires_grad(self.discriminators(), True)
            self.backward_D()
            self.update(self.optimizer_D, self.loss_D_total)
        return [generator_phase, discriminator_phase]

    def discriminators(self) -> list:
        return [self.netD] + ([self.netD2] if self.use_D2 else [])

    def optimize_parameters(self) -> None:
        self.forward_train()
        # G and E step, D and D2 frozen
        self.set_requires_grad(self.discriminators(), False)
        self.backward_G()
        self.update(self.optimizer_G, self.loss_G)
        # D and D2 step, on the same fakes
        self.set_requires_grad(self.discriminators(), True)
        self.backward_D()
        self.update(self.optimizer_D, self.loss_D_total)

    # ----------------------------------------------------------------- inference doors
    @classmethod
    def condition_translator(cls, translator, seed=None, style=None) -> None:
        """``Translator.condition(seed=S)``: z drawn from N(0, I) with seed S; ``style=image``:
        z = E(image)'s mean (that image's look); neither: z = 0, the prior's mean."""
        from models.inference import InferenceModel

        if seed is not None and style is not None:
            raise UserError("give the Translator a seed or a style image, not both")
        net = translator.model.unwrap(translator.net)
        if style is not None:
            encoder = InferenceModel(translator.opt, cls, "E")
            encoder.setup(translator.opt)
            image = translator.read_image(style, translator.opt.output_nc)
            with torch.no_grad():
                code = encoder.netE(encoder.to_device(image[None]))[0]
        elif seed is not None:
            code = torch.randn(1, net.nz, generator=torch.Generator().manual_seed(int(seed)))
        else:
            code = torch.zeros(1, net.nz)
        net.latent = code.to(net.latent.device, net.latent.dtype)
