"""The contract every model plugin follows.

A model names its parts in four lists, and the generic code (logging, saving, loading,
the HTML pages) works from those names:

- ``loss_names``: ``loss_<name>`` attributes, shown and logged;
- ``visual_names``: image tensors shown on pages and saved by ``test.py``;
- ``model_names``: networks ``net<name>``, saved as ``<epoch>_net_<name>.pth``;
- ``optimizers``: optimizers whose learning rates the schedulers drive.

A plugin implements ``set_input``, ``forward`` and ``optimize_parameters`` (with
``self.update(optimizer, loss)`` for each gradient step) and may declare the class
attributes and class methods below. The machinery around it lives in the parts BaseModel
is made of, one concern each: ``models.placement`` (device, DataParallel/DDP, compile,
inference casting), ``models.training_step`` (the step: AMP, accumulation, clipping,
warm-up, EMA, ``make_adam``), ``models.schedulers`` (the schedulers, built once) and
``models.model_state`` (weight files and full checkpoints).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from models import networks
from models.colour_space import IMAGE, ColourSpace
from models.model_state import ModelState, checkpoint_path
from models.placement import Placement, distributed, distributed_wrapper, select_device
from models.schedulers import Schedule
from models.training_step import AMP_DTYPES, TrainingStep, WeightAverage
from util.errors import UserError
from util.hardware import resolve_amp
from util.saved_options import ARCHITECTURE_KEYS


class BaseModel(ModelState, Placement, TrainingStep, Schedule, ABC):
    """Base class of all models; see the module docstring for the contract."""

    # What test.py --metrics and train.py --val_freq score (evaluation/evaluator.py): target
    # domain ("A"/"B") -> (translated visual, real visual of that domain). Empty: nothing.
    metric_visuals: Dict[str, tuple] = {}
    # Options that define this model's networks: saved in train_opt.json, and taken from there
    # by test.py unless given on its command line. A plugin with flags of its own adds them.
    architecture_keys: tuple = ARCHITECTURE_KEYS
    # Shared options this model does not read, with the reason: given at a value other than
    # their default, they are an error (options/base_options.py), never silently ignored.
    unused_options: Dict[str, str] = {}
    # How the inference doors (translate.py, export.py, pix2cycle.Translator) turn images into
    # the generator's input and its output back into images; see also ``inference_generator``
    # and ``build_generator``, which they call on the class, from a run's saved options.
    colour_space: ColourSpace = IMAGE
    # Doors (and modes) of pix2cycle/compatibility.py this model cannot go through, with the
    # reason; the door refuses with it.
    refused_doors: Dict[str, str] = {}

    @classmethod
    def generator_refusal(cls, netG: str) -> Optional[str]:
        """Why this model cannot take ``--netG netG`` (None: it can); building it raises the same."""
        return None

    @classmethod
    def discriminator_refusal(cls, netD: str) -> Optional[str]:
        """Why this model cannot take ``--netD netD`` (None: it can)."""
        return None

    def __init__(self, opt) -> None:
        self.opt = opt
        self.isTrain = opt.isTrain
        self.gpu_ids = opt.gpu_ids
        self.device = select_device(opt.gpu_ids)
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        self.loss_names: List[str] = []
        self.model_names: List[str] = []
        self.visual_names: List[str] = []
        self.optimizers: List[torch.optim.Optimizer] = []
        self.schedulers: list = []  # built once: in setup, or by follow_schedule after a resume
        self.saved_schedulers: Optional[list] = None  # a checkpoint's, until follow_schedule reads them
        self.image_paths: List[str] = []
        self.metric: Optional[float] = None  # --lr_policy plateau's figure, set by validation
        # --amp auto becomes this device's choice (util/hardware.py); saved with the options.
        opt.amp_resolved = resolve_amp(opt.amp, self.device)
        self.amp_dtype = AMP_DTYPES[opt.amp_resolved]
        if self.amp_dtype is torch.float16 and self.device.type != "cuda":
            raise UserError("--amp fp16 needs a GPU; on the CPU use --amp auto (bf16 where the CPU has it natively)")
        self.channels_last = bool(opt.channels_last)
        self.scalers: Dict[int, torch.amp.GradScaler] = {}
        self._stepping: Optional[torch.optim.Optimizer] = None  # the optimizer update() is stepping
        self.base_lrs: Dict[int, float] = {}  # optimizer id -> its rate before the schedule (--lr, --lr_D)
        # Batches trained on; with --grad_accum_steps K the weights change every K-th.
        self.train_steps = 0
        self.accum_steps = opt.grad_accum_steps if self.isTrain else 1
        # --grad_accum_mode exact: the batches of the accumulation so far (saved in checkpoints).
        self.exact_accumulation = self.isTrain and self.accum_steps > 1 and opt.grad_accum_mode == "exact"
        self.pending_batches: List[dict] = []
        self.weight_average: Optional[WeightAverage] = None  # --ema_decay, made in setup()
        self.use_ema = not self.isTrain and opt.use_ema

    @staticmethod
    def modify_commandline_options(parser, is_train: bool):
        """Add model-specific flags and change defaults; return the parser."""
        return parser

    @abstractmethod
    def set_input(self, input: dict) -> None:
        """Unpack a batch from the data loader.

        The dataset has already applied ``--direction``: ``input["A"]`` is always the
        input domain and ``input["B"]`` the target, so models never swap them.
        """

    @abstractmethod
    def forward(self) -> None:
        """Run the forward pass; called by ``optimize_parameters`` and ``test``."""

    @abstractmethod
    def optimize_parameters(self) -> None:
        """One training step: losses, gradients, weight updates."""

    # ----------------------------------------------------------------- hooks of the step
    def accumulation_phases(self) -> Optional[List]:
        """``--grad_accum_mode exact``: the step split into phases, each run on every micro-batch
        before the next (e.g. [D's forward, backward and update; G's]); None: the model has none."""
        return None

    @classmethod
    def initializes_on_data(cls) -> bool:
        """Whether the plugin overrides ``data_dependent_initialize`` (only then is a first batch read)."""
        return cls.data_dependent_initialize is not BaseModel.data_dependent_initialize

    def data_dependent_initialize(self, data: dict) -> None:
        """Set-up that needs a first batch (e.g. layers sized by the generator's features),
        called once before ``setup``: before schedulers exist and before a resume loads the
        optimizers. Create optimizers for what is built here. Nothing by default."""

    # ----------------------------------------------------------------- inference doors
    @classmethod
    def inference_generator(cls, opt, direction: Optional[str]) -> str:
        """The network (a ``model_names`` entry) that translates in ``direction`` ("AtoB",
        "BtoA", None for the default). One generator: ``G``, trained in ``opt.direction`` only;
        a model with a generator per direction overrides this."""
        if direction is not None and direction != opt.direction:
            raise UserError(f"a --model {opt.model} run holds one generator, trained {opt.direction}; "
                            f"direction chooses only between the generators of a model with one per direction")
        return "G"

    @classmethod
    def generator_channels(cls, opt, name: str) -> tuple:
        """(input, output) channels of ``net<name>``."""
        return opt.input_nc, opt.output_nc

    @classmethod
    def build_generator(cls, opt, name: str) -> nn.Module:
        """``net<name>`` as the options describe it, initialized, not yet on the device: what
        the model trains and what the inference doors load a saved run's weights into."""
        return networks.generator_from_options(opt, *cls.generator_channels(opt, name))

    def define_generator(self, input_nc: int, output_nc: int) -> nn.Module:
        """The generator that the options describe (``--netG``, ``--normG``, ...), on the device."""
        return self.build_network(networks.generator_from_options(self.opt, input_nc, output_nc))

    def define_discriminator(self, input_nc: int, multiscale: bool = False) -> nn.Module:
        """The discriminator that the options describe (``--netD``, ``--normD``, ...), on the device;
        ``multiscale``: ``--num_D`` of them, returning every scale's features and prediction."""
        opt = self.opt
        return self.build_network(networks.define_D(
            input_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.normD, opt.init_type, opt.init_gain,
            spectral_norm=opt.spectral_norm_D, num_D=opt.num_D if multiscale else 0))

    def setup(self, opt) -> None:
        """Training: the schedulers of a new run (a resumed run builds them once, after loading,
        in ``follow_schedule``) and the weight averages. Testing: load, place and cast the weights."""
        if self.exact_accumulation and self.accumulation_phases() is None:
            raise UserError(f"--grad_accum_mode exact: --model {opt.model} does not split its step into phases "
                            "(accumulation_phases); use --grad_accum_mode interleaved")
        if self.isTrain:
            if not opt.continue_train:  # a resumed run builds them after loading (follow_schedule)
                self.start_schedule()
            if opt.ema_decay > 0:  # of the generators: the networks test.py runs
                self.weight_average = WeightAverage({name: self.unwrap(net) for name, net in self.networks().items()
                                                     if name.startswith("G")}, opt.ema_decay, opt.ema_rampup)
        if not self.isTrain:
            suffix = f"iter_{opt.load_iter}" if opt.load_iter > 0 else opt.epoch
            self.load_networks(suffix)
            for net in self.networks().values():  # results independent of --batch_size
                networks.per_image_batch_norm(self.unwrap(net))
            if self.amp_dtype is not None:
                self.cast_weights_for_inference()

    # ----------------------------------------------------------------- running
    def eval(self) -> None:
        for net in self.networks().values():
            net.eval()

    def train(self) -> None:
        for net in self.networks().values():
            net.train()

    def test(self) -> None:
        """Forward without gradients (under ``--amp``), for testing and evaluation."""
        with torch.no_grad(), self.autocast():
            self.forward()
            self.compute_visuals()

    def compute_visuals(self) -> None:
        """Extra visuals for pages; nothing by default."""

    def get_image_paths(self) -> List[str]:
        return self.image_paths

    def get_current_visuals(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict((name, getattr(self, name)) for name in self.visual_names
                           if isinstance(getattr(self, name, None), torch.Tensor))

    def get_current_losses(self) -> OrderedDict[str, float]:
        losses = OrderedDict()
        for name in self.loss_names:
            value = getattr(self, "loss_" + name)
            losses[name] = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        return losses

    @staticmethod
    def set_requires_grad(nets, requires_grad: bool = False) -> None:
        for net in nets if isinstance(nets, (list, tuple)) else [nets]:
            if net is not None:
                for p in net.parameters():
                    p.requires_grad_(requires_grad)

    # ----------------------------------------------------------------- networks
    def networks(self) -> Dict[str, nn.Module]:
        return {name: getattr(self, "net" + name) for name in self.model_names}

    def print_networks(self, verbose: bool = False) -> Dict[str, int]:
        counts = {}
        for name, net in self.networks().items():
            counts[name] = sum(p.numel() for p in net.parameters())
            if verbose:
                print(net)
        return counts


__all__ = ["BaseModel", "select_device", "checkpoint_path", "AMP_DTYPES", "distributed", "distributed_wrapper"]
