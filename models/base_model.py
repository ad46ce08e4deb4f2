"""The contract every model plugin follows.

A model names its parts in four lists, and the generic code (logging, saving, loading,
the HTML pages) works from those names:

- ``loss_names``: ``loss_<name>`` attributes, shown and logged;
- ``visual_names``: image tensors shown on pages and saved by ``test.py``;
- ``model_names``: networks ``net<name>``, saved as ``<epoch>_net_<name>.pth``;
- ``optimizers``: optimizers whose learning rates the schedulers drive.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from models import networks
from models.colour_space import IMAGE, ColourSpace
from models.model_state import ModelState, checkpoint_path
from models.networks.fast_layers import use_fast_layers
from models.schedulers import get_scheduler, schedule_at
from models.training_step import WeightAverage, clip_gradients, optimizer_parameters, scaled_lr, warmup_factor
from util.errors import UserError
from util.hardware import resolve_amp
from util.saved_options import ARCHITECTURE_KEYS

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# Devices with a fused Adam kernel (CPU since torch 2.4); elsewhere --adam_impl fused uses foreach.
FUSED_ADAM_DEVICES = ("cpu", "cuda", "xpu", "mps")
# torch.compile's CPU code is C++ built by one of these (Inductor honours $CXX first).
CXX_COMPILERS = (os.environ.get("CXX"), "g++", "clang++", "c++")


def distributed() -> bool:
    """Whether this process is one of several launched by ``torchrun`` (engine/distributed.py)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


def select_device(gpu_ids: Optional[List[int]]) -> torch.device:
    """``None`` picks the first GPU when there is one; ``[]`` is the CPU. Under ``torchrun``
    each process takes the GPU of its ``LOCAL_RANK`` (or the CPU without CUDA)."""
    if distributed():
        gloo = torch.distributed.get_backend() == "gloo"  # --gpu_ids -1, or no CUDA
        return torch.device("cpu") if gloo else torch.device("cuda", torch.cuda.current_device())
    if gpu_ids is None:
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if not gpu_ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"--gpu_ids {','.join(map(str, gpu_ids))} asks for a GPU, but CUDA is not "
                        "available here; use --gpu_ids -1 for the CPU")
    if max(gpu_ids) >= torch.cuda.device_count():
        raise UserError(f"--gpu_ids {','.join(map(str, gpu_ids))}: only {torch.cuda.device_count()} GPU(s) here")
    return torch.device(f"cuda:{gpu_ids[0]}")


class SyncedNetwork(nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that steps aside while its network is frozen.

    A forward pass through a network whose weights take no gradients (D in G's step, frozen
    by ``set_requires_grad``) runs on the plain module. Through DDP it would leave DDP
    waiting for gradients that never come, and DDP would then all-reduce the next step's
    gradients even inside ``no_sync`` (an accumulating step of ``--grad_accum_steps``)."""

    def forward(self, *args, **kwargs):
        if not any(p.requires_grad for p in self.module.parameters()):
            return self.module(*args, **kwargs)
        return super().forward(*args, **kwargs)


def distributed_wrapper(net: nn.Module) -> Optional[nn.parallel.DistributedDataParallel]:
    """The DistributedDataParallel module of ``net``, also under ``torch.compile``'s wrapper
    (a compiled DDP module is no DDP instance itself); None for a network without one."""
    while True:
        if isinstance(net, nn.parallel.DistributedDataParallel):
            return net
        if not hasattr(net, "_orig_mod"):
            return None
        net = net._orig_mod


class BaseModel(ModelState, ABC):
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
        self.schedulers: list = []
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

    # ----------------------------------------------------------------- building
    def build_network(self, net: nn.Module) -> nn.Module:
        """Move a freshly built network to the device (and the chosen memory format)."""
        net = net.to(self.device)
        # Same parameters and outputs, faster layer implementations (models/networks/fast_layers.py).
        use_fast_layers(net, gemm_convs=self.device.type == "cpu" and self.opt.conv_impl == "auto",
                        autocast_pads=self.amp_dtype is not None)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        if distributed() and self.device.type == "cpu" and any(isinstance(m, nn.SyncBatchNorm) for m in net.modules()):
            raise UserError("--norm syncbatch synchronises batch statistics between GPUs (NCCL) and cannot run on "
                            "CPU processes; use --norm batch (each process normalises its own batch) or instance")
        if self.isTrain and distributed() and any(p.requires_grad for p in net.parameters()):
            # One process per GPU (or CPU): gradients are averaged over the processes.
            net = SyncedNetwork(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        elif self.gpu_ids and len(self.gpu_ids) > 1:
            net = nn.DataParallel(net, self.gpu_ids)
        if self.opt.compile:
            if self.opt.compile_backend == "inductor" and self.device.type == "cpu" \
                    and not any(shutil.which(c) for c in CXX_COMPILERS if c):
                raise UserError("--compile on the CPU needs a C++ compiler (g++ or clang++, or $CXX), "
                                "and none was found; install one (e.g. apt install g++) or drop --compile")
            # Weights are constants when testing: Inductor then folds them into the graph
            # and keeps oneDNN's packed copies (bf16 unet_256 on a CPU: 38 ms per image
            # against 86 ms compiled without it and 55 ms eager). Passed per network, the
            # setting applies to this network's compiles only, never to later ones.
            inductor = self.opt.compile_backend == "inductor"
            net = torch.compile(net, backend=self.opt.compile_backend,
                                options=None if self.isTrain or not inductor else {"freezing": True})
        return net

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device, non_blocking=True)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def autocast(self):
        """Mixed precision for forward passes when ``--amp`` asks for it. ``train_step`` and
        ``test`` enter it; a plugin does not."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, data: dict) -> None:
        """One training step on a batch: ``set_input``, then ``optimize_parameters`` under ``--amp``.

        With ``--grad_accum_steps K`` only every K-th step changes the weights; under
        ``torchrun`` the others run without DDP's gradient sync (forward and backward).
        """
        if self.exact_accumulation:
            self._exact_accumulation_step(data)
            return
        self.set_input(data)
        with self.autocast(), self._no_sync_unless_stepping():
            self.optimize_parameters()
        self.train_steps += 1

    def accumulation_phases(self) -> Optional[List]:
        """``--grad_accum_mode exact``: the step split into phases, each run on every micro-batch
        before the next (e.g. [D's forward, backward and update; G's]); None: the model has none."""
        return None

    def gan_phases(self, forward) -> List:
        """The two phases of a model with one ``netD`` and one G step, in the reference's names
        (``backward_D``/``loss_D``/``optimizer_D``, ``backward_G``/``loss_G``/``optimizer_G``):
        D's (``forward`` without gradients, D's loss and update), then G's (``forward`` again, with
        gradients, against D frozen after its update)."""
        def discriminator_phase() -> None:
            with torch.no_grad():  # G's output is D's input only; G's phase recomputes it
                forward()
            self.set_requires_grad(self.netD, True)
            self.backward_D()
            self.update(self.optimizer_D, self.loss_D)

        def generator_phase() -> None:
            forward()
            self.set_requires_grad(getattr(self, "netD", None), False)
            self.backward_G()
            self.update(self.optimizer_G, self.loss_G)
        return [discriminator_phase, generator_phase]

    def _exact_accumulation_step(self, data: dict) -> None:
        """StudioGAN's order (POSTECH-CVLab/PyTorch-StudioGAN src/worker.py, train_discriminator /
        train_generator: D's loss over the accumulation's micro-batches, D's step, then G's
        forward and loss over them again, against the updated D, and G's step): the K batches
        are kept until the K-th, then each phase runs over all of them."""
        self.pending_batches.append(data)
        if len(self.pending_batches) < self.accum_steps:
            self.train_steps += 1
            # Nothing is computed until the K-th batch: the losses shown are the last update's
            # (0 before the first), the visuals those of its last batch.
            for name in self.loss_names:
                if not hasattr(self, "loss_" + name):
                    setattr(self, "loss_" + name, 0.0)
            return
        batches, self.pending_batches = self.pending_batches, []
        first = self.train_steps - (self.accum_steps - 1)
        for phase in self.accumulation_phases():
            for i, batch in enumerate(batches):
                self.train_steps = first + i  # update() zeroes at the first, steps at the last
                self.set_input(batch)
                with self.autocast(), self._no_sync_unless_stepping():
                    phase()
        self.train_steps = first + self.accum_steps

    def _accumulating(self) -> bool:
        """Whether this step only adds gradients (the update comes at a later step)."""
        return self.train_steps % self.accum_steps != self.accum_steps - 1

    def _no_sync_unless_stepping(self):
        stack = contextlib.ExitStack()
        if self._accumulating():
            for net in self.networks().values():
                ddp = distributed_wrapper(net)
                if ddp is not None:
                    stack.enter_context(ddp.no_sync())
        return stack

    def update(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """The gradient step of ``optimizer`` on ``loss``: zero the gradients, backward, step.

        Mixed precision lives here: the backward pass runs outside autocast, fp16 losses are
        scaled (one gradient scaler per optimizer) and the step is skipped when the scaled
        gradients overflowed. Plugins call this instead of ``loss.backward()`` and
        ``optimizer.step()``; an optimizer of ``make_adam`` refuses a step from elsewhere.
        """
        scaler = self.scalers.get(id(optimizer))
        if self.train_steps % self.accum_steps == 0:  # the first step of an accumulation
            optimizer.zero_grad(set_to_none=True)
        if self.accum_steps > 1:  # the sum of K mean losses / K: the mean over K batches
            loss = loss / self.accum_steps
        with torch.autocast(self.device.type, enabled=False):
            (scaler.scale(loss) if scaler is not None else loss).backward()
        if self._accumulating():
            return
        if self.opt.max_grad_norm > 0:
            clip_gradients(optimizer, self.opt.max_grad_norm, scaler)
        self._stepping = optimizer
        try:
            with scaled_lr(optimizer, warmup_factor(self.train_steps // self.accum_steps, self.opt.lr_warmup_iters)):
                if scaler is None:
                    optimizer.step()
                    stepped = True
                else:
                    scale = scaler.get_scale()
                    scaler.step(optimizer)
                    scaler.update()
                    # update() lowers the scale exactly when step() skipped on inf/NaN gradients.
                    stepped = scaler.get_scale() >= scale
        finally:
            self._stepping = None
        if stepped:  # the weights did not change on a skipped fp16 step: neither does their average
            self._update_weight_average(optimizer)

    def _update_weight_average(self, optimizer: torch.optim.Optimizer) -> None:
        """After ``optimizer`` stepped: move the averages of the networks it trains."""
        if self.weight_average is None:
            return
        stepped = {id(p) for p in optimizer_parameters(optimizer)}
        for name in self.weight_average.networks():
            net = self.unwrap(getattr(self, "net" + name))
            if id(next(net.parameters())) in stepped:
                self.weight_average.update(name, net, self.train_steps // self.accum_steps)

    def _check_step(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        # Under fp16 a step outside update() would apply scaled (or overflowed) gradients.
        if id(optimizer) in self.scalers and self._stepping is not optimizer:
            raise RuntimeError(f"{type(self).__name__}: an optimizer stepped outside BaseModel.update() under "
                               "--amp fp16; call self.update(optimizer, loss), which scales the gradients")

    @contextlib.contextmanager
    def plain_networks(self):
        """The networks without their DistributedDataParallel wrappers (and, where DDP is
        inside ``torch.compile``'s wrapper, without that too), for work outside the training
        step (validation): DDP starts no gradient or buffer sync there."""
        wrapped = {name: net for name, net in self.networks().items() if distributed_wrapper(net) is not None}
        for name, net in wrapped.items():
            setattr(self, "net" + name, self.unwrap(net))
        try:
            yield
        finally:
            for name, net in wrapped.items():
                setattr(self, "net" + name, net)

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

    def make_adam(self, params, lr: Optional[float] = None) -> torch.optim.Optimizer:
        """Adam with ``--beta1``/``--beta2`` at ``lr`` (default ``--lr``; the schedule scales it)."""
        # Fused Adam reads and writes each parameter, gradient and moment once per step; on a
        # CPU it is 4-5x faster than foreach, which matters for unet_256's 54 M weights.
        impl = self.opt.adam_impl
        if impl == "fused" and self.device.type not in FUSED_ADAM_DEVICES:
            impl = "foreach"
        kwargs = {"fused": {"fused": True}, "foreach": {"foreach": True}}.get(impl, {"foreach": False})
        lr = self.opt.lr if lr is None else lr
        optimizer = torch.optim.Adam(params, lr=lr, betas=(self.opt.beta1, self.opt.beta2), **kwargs)
        self.base_lrs[id(optimizer)] = lr
        optimizer.register_step_pre_hook(self._check_step)
        if self.amp_dtype is torch.float16:
            self.scalers[id(optimizer)] = torch.amp.GradScaler(self.device.type)
        return optimizer

    def setup(self, opt) -> None:
        """Create schedulers; load weights for testing or ``--continue_train`` from weights."""
        if self.exact_accumulation and self.accumulation_phases() is None:
            raise UserError(f"--grad_accum_mode exact: --model {opt.model} does not split its step into phases "
                            "(accumulation_phases); use --grad_accum_mode interleaved")
        if self.isTrain:
            self.schedulers = [self.make_scheduler(o) for o in self.optimizers]
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

    def make_scheduler(self, optimizer: torch.optim.Optimizer):
        opt = self.opt
        return get_scheduler(optimizer, opt.lr_policy, opt.n_epochs, opt.n_epochs_decay, opt.epoch_count,
                             opt.lr_decay_iters)

    def follow_schedule(self, epoch: int) -> float:
        """After ``load_training_state``: set the learning rates that this run's schedule
        options give at ``epoch`` (the epoch about to run); returns the rate.

        The saved schedulers followed the options of the run that wrote the checkpoint; a
        resumed run may extend or change them. ``plateau`` depends on the metrics seen, so
        it keeps its state, its rate scaled by a changed ``--lr``.
        """
        opt = self.opt
        for i, optimizer in enumerate(self.optimizers):
            base = self.base_lrs.get(id(optimizer), opt.lr)  # --lr, or --lr_D for a discriminator
            if opt.lr_policy == "plateau":
                for group in optimizer.param_groups:
                    group["lr"] *= base / group.get("initial_lr", base)
                    group["initial_lr"] = base
                continue
            lr, state = schedule_at(opt.lr_policy, base, opt.n_epochs, opt.n_epochs_decay, opt.epoch_count,
                                    opt.lr_decay_iters, epoch - opt.epoch_count)
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] = base
            self.schedulers[i] = scheduler = self.make_scheduler(optimizer)
            n = len(optimizer.param_groups)  # the replay had one group: one entry per group here
            scheduler.load_state_dict({k: v * n if isinstance(v, list) and len(v) == 1 else v
                                       for k, v in state.items()})
            for group in optimizer.param_groups:
                group["lr"] = lr
        return self.optimizers[0].param_groups[0]["lr"] if self.optimizers else 0.0

    def cast_weights_for_inference(self) -> None:
        """Store conv and linear weights in the ``--amp`` dtype, for testing only.

        Autocast would convert them from fp32 at every forward pass (54 M weights for
        unet_256: more time than the bf16 convolutions themselves on a CPU); the values are
        the ones autocast computes with, so outputs are the same. Norm layers stay fp32.
        """
        for net in self.networks().values():
            for module in net.modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    module.to(self.amp_dtype)

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

    def update_learning_rate(self) -> float:
        """Step every scheduler once (called at the end of each epoch); return the new lr."""
        for scheduler in self.schedulers:
            if self.opt.lr_policy != "plateau":
                scheduler.step()
            elif self.metric is not None:  # plateau steps on epochs with a validation figure
                scheduler.step(self.metric)
        self.metric = None
        return self.optimizers[0].param_groups[0]["lr"] if self.optimizers else 0.0

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

    @staticmethod
    def unwrap(net: nn.Module) -> nn.Module:
        """The plain module under DataParallel / DDP / torch.compile wrappers."""
        while True:
            if isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
                net = net.module
            elif hasattr(net, "_orig_mod"):
                net = net._orig_mod
            else:
                return net

    def print_networks(self, verbose: bool = False) -> Dict[str, int]:
        counts = {}
        for name, net in self.networks().items():
            counts[name] = sum(p.numel() for p in net.parameters())
            if verbose:
                print(net)
        return counts


__all__ = ["BaseModel", "select_device", "checkpoint_path", "AMP_DTYPES"]
