"""pix2pixHD: label maps (or images) to photos at high resolution.

Wang, Liu, Zhu, Tao, Kautz and Catanzaro, "High-Resolution Image Synthesis and Semantic
Manipulation with Conditional GANs", CVPR 2018. G is the global generator G1 or, with
``--n_local_enhancers N`` (pix2pixHD's ``--netG local``), G1 inside N local enhancers
(models/networks/hd.py); ``--niter_fix_global K`` trains only the outermost enhancer for the
first K epochs. D is ``--num_D`` (2) PatchGANs at halving scales on (input, image) pairs,
with LSGAN and discriminator feature matching; plus pix2pixHD's VGG-19 loss. Objective:
GAN + lambda_feat * FM(D) + lambda_vgg * VGG (both 10, as pix2pixHD weights them).

The input is ``--label_nc`` one-hot channels from ``--dataset_mode label`` (class-id maps),
plus the boundary map of the instance maps (unless ``--no_instance``), plus, with
``--instance_feat`` / ``--label_feat``, ``--feat_num`` channels from the feature encoder E,
averaged over each instance (or class region). ``--label_nc 0`` takes images as they are
(``--dataset_mode aligned --no_instance``: RGB to RGB). At test time E's features come from
``scripts/encode_features.py``'s k-means clusters (``features_clustered.npz`` in the run)
when it is there, else from the photo of the test pair.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models import networks
from models.base_model import BaseModel
from models.label_gan import LabelGANLosses
from models.losses import GANLoss
from models.networks.hd import FeatureEncoder, GlobalGenerator, LocalEnhancer
from models.perceptual import PERCEPTUAL_FORMS, VGG_FILES, vgg_loss
from models.registry import MODELS
from util.errors import UserError

CLUSTERS_FILE = "features_clustered.npz"  # scripts/encode_features.py writes it in the run
LABEL_DOORS = ("translate.py", "Translator", "export onnx", "export exported_program")
HD_KEYS = ("label_nc", "no_instance", "instance_feat", "label_feat", "feat_num", "nef", "n_downsample_E",
           "n_downsample_global", "n_blocks_global", "n_local_enhancers", "n_blocks_local")


def input_channels(opt) -> int:
    """G's input channels: one-hot labels (or the image), the boundary map, E's features."""
    base = opt.label_nc + int(getattr(opt, "contain_dontcare_label", False)) if opt.label_nc > 0 else opt.input_nc
    features = opt.feat_num if opt.instance_feat or opt.label_feat else 0
    return base + (0 if opt.no_instance else 1) + features


def check_label_options(opt, model: str) -> None:
    """Combinations that cannot work, refused before any work."""
    if opt.label_nc < 0:
        raise UserError(f"--label_nc must be 0 (images in) or the number of classes, not {opt.label_nc}")
    if opt.label_nc > 0 and opt.dataset_mode != "label":
        raise UserError(f"--label_nc {opt.label_nc} reads class-id maps (--dataset_mode label); "
                        f"for images in --dataset_mode {opt.dataset_mode} pass --label_nc 0")
    if opt.label_nc == 0 and opt.dataset_mode == "label":
        raise UserError("--dataset_mode label holds class-id maps: pass --label_nc (their number of classes)")
    if not opt.no_instance and opt.dataset_mode != "label":
        raise UserError(f"--model {model} reads instance maps from --dataset_mode label; pass --no_instance "
                        f"with --dataset_mode {opt.dataset_mode}")


@MODELS.register("pix2pixhd")
class Pix2PixHDModel(LabelGANLosses, BaseModel):
    metric_visuals = {"B": ("fake_B", "real_B")}
    architecture_keys = BaseModel.architecture_keys + HD_KEYS
    unused_options = {
        "netG": "pix2pixHD's generator is G1 (--n_local_enhancers 0) or G1 in local enhancers "
                "(--n_local_enhancers N), models/networks/hd.py",
        **{key: "pix2pixHD's generator is its own (models/networks/hd.py), without it"
           for key in ("spectral_norm_G", "upsample", "attention", "no_dropout")},
        "pool_size": "pix2pixHD's D judges the current fakes (its --pool_size default 0; no pool here)",
    }
    refused_doors = {door: "pix2pixHD's input is a label map (one-hot classes, instance boundaries, encoded "
                           "features); this door takes photos only: use test.py on --dataset_mode label data"
                     for door in LABEL_DOORS}

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        # pix2pixHD's defaults (NVIDIA/pix2pixHD options/base_options.py, train_options.py).
        parser.set_defaults(dataset_mode="label", norm="instance", num_D=2, metrics="l1,psnr,ssim,lpips")
        parser.add_argument("--label_nc", type=int, default=35,
                            help="classes of the label maps (one-hot input channels); 0: images in (RGB to RGB)")
        parser.add_argument("--no_instance", action="store_true", help="no instance boundary channel")
        parser.add_argument("--instance_feat", action="store_true",
                            help="add the feature encoder's features, averaged per instance, to the input")
        parser.add_argument("--label_feat", action="store_true",
                            help="add the feature encoder's features, averaged per class region, to the input")
        parser.add_argument("--feat_num", type=int, default=3, help="channels of the encoded features")
        parser.add_argument("--nef", type=int, default=16, help="filters of the encoder's first conv")
        parser.add_argument("--n_downsample_E", type=int, default=4, help="downsamplings of the encoder")
        parser.add_argument("--n_clusters", type=int, default=10,
                            help="k-means clusters per class of scripts/encode_features.py")
        parser.add_argument("--n_downsample_global", type=int, default=4, help="downsamplings of G1")
        parser.add_argument("--n_blocks_global", type=int, default=9, help="residual blocks of G1")
        parser.add_argument("--n_local_enhancers", type=int, default=0,
                            help="local enhancers around G1 (pix2pixHD's --netG local: 1); 0: G1 alone (--netG global)")
        parser.add_argument("--n_blocks_local", type=int, default=3, help="residual blocks of each enhancer")
        if is_train:
            parser.set_defaults(gan_mode="lsgan", pool_size=0, n_epochs=100, n_epochs_decay=100, best_metric="psnr")
            parser.add_argument("--niter_fix_global", type=int, default=0,
                                help="epochs that train only the outermost local enhancer (G1 fixed)")
            parser.add_argument("--lambda_feat", type=float, default=10.0,
                                help="weight of discriminator feature matching; 0: off (--no_ganFeat_loss)")
            parser.add_argument("--lambda_vgg", type=float, default=10.0,
                                help="weight of the VGG loss; 0: off (--no_vgg_loss; pix2pixHD weights it by "
                                     "lambda_feat)")
            parser.add_argument("--perceptual_form", default="pix2pixhd", choices=PERCEPTUAL_FORMS.names(),
                                help="whose VGG loss (see --model pix2pix)")
            parser.add_argument("--vgg_weights", default=None,
                                help=f"the VGG weights (default: the torch hub cache's {VGG_FILES['vgg19']})")
        return parser

    def __init__(self, opt) -> None:
        super().__init__(opt)
        check_label_options(opt, "pix2pixhd")
        self.use_features = opt.instance_feat or opt.label_feat
        self.loss_names = ["G_GAN", "D_real", "D_fake"]
        self.visual_names = ["input_label" if opt.label_nc > 0 else "real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D", "E"] if self.isTrain else ["G", "E"]
        if not self.use_features:
            self.model_names.remove("E")
        self.netG = self.build_network(self.build_generator(opt, "G"))
        if self.use_features:
            self.netE = self.build_network(networks.init_weights(
                FeatureEncoder(opt.output_nc, opt.feat_num, opt.nef, opt.n_downsample_E,
                               networks.get_norm_layer(opt.normG)), opt.init_type, opt.init_gain))
        if not self.isTrain:
            return
        if opt.niter_fix_global > 0 and opt.n_local_enhancers == 0:
            raise UserError("--niter_fix_global fixes G1 while the local enhancers train: it needs --n_local_enhancers")
        if opt.niter_fix_global > 0 and opt.lr_policy == "plateau":
            raise UserError("--niter_fix_global counts epochs through the schedule; use --lr_policy linear or step")
        self.netD = self.define_discriminator(input_channels(opt) - (opt.feat_num if self.use_features else 0)
                                              + opt.output_nc, multiscale=True)
        self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
        if opt.lambda_feat > 0:
            self.loss_names.append("G_feat")
        self.criterionVGG = vgg_loss(opt.perceptual_form, opt.vgg_weights).to(self.device) \
            if opt.lambda_vgg > 0 else None
        if self.criterionVGG is not None:
            self.loss_names.append("G_VGG")
        # pix2pixHD trains E with G, in G's Adam.
        params = list(self.netG.parameters()) + (list(self.netE.parameters()) if self.use_features else [])
        self.optimizer_G = self.make_adam(params)
        self.optimizer_D = self.make_adam(self.netD.parameters(), lr=opt.lr_D)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    @staticmethod
    def input_sizes(opt) -> tuple:
        """(multiple, smallest side): G1 halves the image --n_downsample_global times, below each enhancer."""
        multiple = 2 ** (opt.n_downsample_global + opt.n_local_enhancers)
        return multiple, multiple

    @classmethod
    def inference_generator(cls, opt, direction):
        raise UserError(cls.refused_doors["Translator"])

    @classmethod
    def build_generator(cls, opt, name: str):
        norm = networks.get_norm_layer(opt.normG)
        if opt.n_local_enhancers > 0:
            net = LocalEnhancer(input_channels(opt), opt.output_nc, opt.ngf, opt.n_downsample_global,
                                opt.n_blocks_global, opt.n_local_enhancers, opt.n_blocks_local, norm)
        else:
            net = GlobalGenerator(input_channels(opt), opt.output_nc, opt.ngf, opt.n_downsample_global,
                                  opt.n_blocks_global, norm)
        return networks.init_weights(net, opt.init_type, opt.init_gain)

    @classmethod
    def generator_channels(cls, opt, name: str) -> tuple:
        return input_channels(opt), opt.output_nc

    # ----------------------------------------------------------------- data
    def set_input(self, input: dict) -> None:
        self.set_label_input(input, "pix2pixhd")

    def feature_regions(self) -> torch.Tensor:
        """What E's features are averaged over: instances (--instance_feat) or class regions."""
        return self.inst if self.opt.instance_feat else self.real_A

    def features(self) -> torch.Tensor:
        """E's features of the target photo (training), or sampled from the clusters (testing)."""
        if not self.isTrain:
            clustered = Path(self.opt.checkpoints_dir) / self.opt.name / CLUSTERS_FILE
            if clustered.is_file():
                return self.sampled_features(clustered)
            if self.real_B is None:
                raise UserError(f"--instance_feat/--label_feat at test time needs the photos or {clustered} "
                                "(python scripts/encode_features.py --name ...)")
        return self.netE(self.real_B, self.feature_regions())

    def sampled_features(self, path: Path) -> torch.Tensor:
        """One cluster centre of its class per region (pix2pixHD's ``sample_features``), drawn from
        a generator seeded by the image's name so that a test is repeatable."""
        centres = np.load(path)
        regions = self.feature_regions()
        out = torch.zeros(regions.shape[0], self.opt.feat_num, *regions.shape[2:], device=regions.device)
        for b in range(regions.shape[0]):
            name = str(self.image_paths[b] if isinstance(self.image_paths, (list, tuple)) else self.image_paths)
            rng = np.random.default_rng(sum(name.encode()))
            for region in torch.unique(regions[b]):
                mask = regions[b, 0] == region
                cls = int(self.real_A[b, 0][mask][0])
                key = f"class_{cls}"
                if key in centres.files and len(centres[key]):
                    centre = centres[key][rng.integers(len(centres[key]))]
                    out[b, :, mask] = torch.as_tensor(centre, dtype=out.dtype, device=out.device)[:, None]
        return out

    def forward(self) -> None:
        x = self.label
        if self.use_features:
            x = torch.cat((x, self.features()), 1)
        self.fake_B = self.netG(x)

    # ----------------------------------------------------------------- steps
    def fix_global(self) -> None:
        """The first ``--niter_fix_global`` epochs train only the outermost enhancer: G1 and the
        inner enhancers take no gradients (Adam leaves parameters without gradients unchanged)."""
        if self.opt.niter_fix_global <= 0:
            return
        epochs_done = self.schedulers[0].last_epoch if self.schedulers else 0
        fixed = epochs_done < self.opt.niter_fix_global
        netG = self.unwrap(self.netG)
        outer = {id(p) for p in netG.outermost_parameters()}
        for p in netG.parameters():
            p.requires_grad_(not fixed or id(p) in outer)

    def accumulation_phases(self):
        """``--grad_accum_mode exact``: D over the micro-batches, then G (and E) against the updated D."""
        return self.gan_phases(self.forward)

    def optimize_parameters(self) -> None:
        self.fix_global()
        self.forward()
        self.gan_step()  # D, then G and E against D frozen
