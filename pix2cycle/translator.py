"""``Translator``: one trained generator, applied to images of any kind and size."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from models import MODELS, generator_reader
from models.inference import InferenceModel
from models.networks import generator_min_size
from options import load_saved_options, parse_options
from options.base_options import refuse_saved_plugins
from pix2cycle.convert import read_input
from pix2cycle.tiling import translate_tiled
from util.errors import UserError

# Keyword arguments that describe the generator, for weights without a train_opt.json.
ARCHITECTURE_ARGS = ("netG", "norm", "ngf", "input_nc", "output_nc", "no_dropout")
DIRECTIONS = ("AtoB", "BtoA")


def _gpu_ids(device: Union[str, torch.device]) -> Optional[str]:
    """``--gpu_ids`` for ``device``: "auto" -> None (first GPU if any), "cpu" -> -1, "cuda:1" -> 1."""
    if str(device) == "auto":
        return None
    dev = torch.device(device)
    if dev.type == "cpu":
        return "-1"
    if dev.type != "cuda":
        raise UserError(f"device '{device}' is not supported; use auto, cpu, cuda or cuda:N")
    return str(dev.index or 0)


def _saved_plugin(folder: Path, saved: dict, architecture: dict, trusted: bool) -> str:
    """The model plugin that trained the run (the generator reader, ``--model test`` as in
    the reference, for weights without a train_opt.json); a dotted path only when ``trusted``."""
    reader = generator_reader()
    # Checked before the plugin is imported: naming it on --model below would allow it.
    refuse_saved_plugins(saved, folder, argparse.Namespace(model=reader, **architecture), set(architecture),
                         trusted)
    return saved.get("model") or reader


class Translator:
    """A trained generator that translates PIL images, arrays, tensors and files of any size.

    Build one with ``Translator.from_checkpoint``. Calling it returns what it was given:
    PIL in, PIL out; an array of the same dtype; a tensor in [-1, 1]; a PIL image for a
    file path; a list for a list (pix2cycle/convert.py has the table). Images of any size
    are padded (reflect, or replicate when the pad exceeds a side) on the right and bottom
    to what the generator needs, translated and cropped back.

    Test-time behaviour (``eval``, ``dropout``): by default batch norm normalizes each
    image with its own statistics, as the reference's test.py does without ``--eval``, and
    dropout is off, so the same input always gives the same output. ``eval=True`` uses the
    running statistics instead (test.py ``--eval``); ``dropout=True`` keeps dropout active
    (test.py's default for pix2pix: a different output at each call). Networks without
    batch norm or dropout (CycleGAN's) are unaffected. Running statistics are never updated.
    """

    def __init__(self, model, eval: bool = False, dropout: bool = False) -> None:
        self.model = model
        self.opt = model.opt
        self.net_name = model.model_names[0]
        self.net = getattr(model, "net" + self.net_name)
        # The plugin that trained the run declares the generator's channels and colour space.
        self.plugin = getattr(model, "plugin", type(model))
        self.colour_space = self.plugin.colour_space
        self.net_channels = tuple(self.plugin.generator_channels(self.opt, self.net_name))
        self.size_multiple = self.opt.size_multiple
        self.min_size = generator_min_size(self.opt.netG)
        self.set_mode(eval, dropout)

    @classmethod
    def from_checkpoint(cls, path: Union[str, Path], epoch: Union[str, int] = "latest", device="auto",
                        direction: Optional[str] = None, eval: bool = False, dropout: bool = False,
                        amp: str = "none", compile: bool = False, model_suffix: Optional[str] = None,
                        trust_remote_code: bool = False, use_ema: bool = False, **architecture: Any) -> Translator:
        """Load the generator of the run in folder ``path`` (or the weights file ``path``).

        The architecture comes from ``train_opt.json`` in that folder, and the generator is
        the one the run's model plugin builds (CUT's anti-aliased ResNet for a CUT run, ...);
        keyword arguments ``netG, norm, ngf, input_nc, output_nc, no_dropout`` override it,
        and describe bare weights that have none (default: the reference's ``--model test``,
        i.e. CycleGAN's resnet_9blocks, instance norm, no dropout). ``<epoch>_net_G.pth`` is
        loaded; for a model with a generator per direction (CycleGAN), ``direction`` "AtoB"
        (default) loads G_A and "BtoA" G_B; ``model_suffix`` names any other
        ``net_G<suffix>``. ``device``: "auto", "cpu", "cuda", "cuda:N"; ``amp``: "none",
        "auto", "bf16" or "fp16", as test.py's ``--amp``; ``use_ema``: the generator's weight
        average (``<epoch>_net_G_ema``, trained with ``--ema_decay``), as test.py's ``--use_ema``.

        A run whose ``train_opt.json`` names a plugin outside pix2cycle (a dotted path such as
        ``my_lab.nets.Generator``) is refused, and nothing of it imported, unless ``netG``
        names that plugin again or ``trust_remote_code=True``: a model folder from someone
        else must not run code on open. The weights are always read without unpickling code.
        """
        unknown = sorted(set(architecture) - set(ARCHITECTURE_ARGS))
        if unknown:
            raise TypeError(f"unknown argument(s) {', '.join(unknown)}; architecture arguments are "
                            f"{', '.join(ARCHITECTURE_ARGS)}")
        if direction is not None and direction not in DIRECTIONS:
            raise UserError(f"direction must be AtoB or BtoA, not '{direction}'")
        path = Path(path)
        weights = path if path.is_file() else None
        folder = path.parent if weights is not None else path
        if not folder.is_dir():
            raise UserError(f"no checkpoint folder at {folder}: train first, or check the path")
        epoch = str(epoch)
        plugin_name = _saved_plugin(folder, load_saved_options(folder) or {}, architecture, trust_remote_code)
        argv = ["--dataroot", str(folder), "--model", plugin_name, "--name", folder.resolve().name,
                "--checkpoints_dir", str(folder.resolve().parent), "--epoch", epoch, "--amp", amp,
                "--num_threads", "0"]
        gpu_ids = _gpu_ids(device)
        argv += ["--gpu_ids", gpu_ids] if gpu_ids is not None else []
        argv += ["--compile"] if compile else []
        argv += ["--use_ema"] if use_ema else []
        for key, value in architecture.items():
            if key != "no_dropout":
                argv += [f"--{key}", str(value)]
        opt = parse_options(argv, is_train=False, trust_remote_code=trust_remote_code)
        if "no_dropout" in architecture:
            opt.no_dropout = bool(architecture["no_dropout"])
        plugin = MODELS.get(plugin_name)
        net_name = "G" + model_suffix if model_suffix is not None else plugin.inference_generator(opt, direction)
        model = InferenceModel(opt, plugin, net_name)
        if weights is None:
            model.setup(opt)  # loads <epoch>_net_<net_name>.pth, casts weights for --amp
        else:
            model.load_network_file(net_name, weights)
            if model.amp_dtype is not None:
                model.cast_weights_for_inference()
        return cls(model, eval=eval, dropout=dropout)

    @classmethod
    def from_pretrained(cls, path_or_id: Union[str, Path], revision: Optional[str] = None, device="auto",
                        direction: Optional[str] = None, eval: bool = False, dropout: bool = False,
                        amp: str = "none", compile: bool = False, trust_remote_code: bool = False) -> Translator:
        """Load a model package (``export.py --format hub``): a local folder, or a Hugging Face
        Hub id ``user/name`` (``huggingface_hub.snapshot_download``, at ``revision``; with
        ``HF_HUB_OFFLINE=1`` from the local cache only).

        The generator is rebuilt from ``config.json`` exactly as ``from_checkpoint`` rebuilds
        the run's, and its weights read from ``model.safetensors`` (no pickle), so it
        translates bit for bit as the run did. ``direction``, when given, must be the one the
        package translates (it holds one generator); the other arguments are
        ``from_checkpoint``'s.
        """
        from pix2cycle.hub import WEIGHTS_FILE, read_config, resolve_package

        folder = resolve_package(path_or_id, revision)
        config = read_config(folder)
        if direction is not None and direction != config["direction"]:
            raise UserError(f"{path_or_id} translates {config['direction']} (net{config['generator']}), not "
                            f"{direction}: a package holds one generator; export the other direction")
        return cls.from_checkpoint(folder / WEIGHTS_FILE, device=device, eval=eval, dropout=dropout, amp=amp,
                                   compile=compile, model_suffix=config["generator"][1:],
                                   trust_remote_code=trust_remote_code)

    # ----------------------------------------------------------------- modes
    def set_mode(self, eval: bool = False, dropout: bool = False) -> None:
        """Batch norm statistics (``eval``: running, else per image) and dropout on or off."""
        self.eval, self.dropout = eval, dropout
        net = self.model.unwrap(self.net)
        net.eval()
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                # Training mode without tracking: the image's own statistics, buffers untouched.
                module.train(not eval)
                module.track_running_stats = eval
            elif isinstance(module, nn.Dropout):
                module.train(dropout and not eval)

    def condition(self, **choice: Any) -> Translator:
        """Choose which of the outputs of a model with many per input this one gives, and
        return the Translator: bicycle_gan ``seed=S`` (z ~ N(0, I) drawn with seed S) or
        ``style=image`` (z of that image); stargan_v2 ``target_domain=`` with ``seed=`` or
        ``reference=image``. The plugin's ``condition_translator`` says what it takes."""
        hook = getattr(self.plugin, "condition_translator", None)
        if hook is None:
            raise UserError(f"a --model {self.opt.model} run gives one output per input: there is nothing to "
                            f"choose with {', '.join(choice) or 'condition()'}")
        hook(self, **choice)
        return self

    @staticmethod
    def read_image(image: Any, nc: int) -> torch.Tensor:
        """``image`` (what ``__call__`` takes, one of it) as a C x H x W tensor in [-1, 1] with
        ``nc`` channels: for a plugin's ``condition_translator`` (a style or reference image)."""
        return read_input(image, nc)[0]

    # ----------------------------------------------------------------- running
    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def input_nc(self) -> int:
        """Channels of the images it reads (a colorization run: 3, RGB; its generator takes L)."""
        image_nc = self.colour_space.image_nc
        return image_nc[0] if image_nc else self.net_channels[0]

    @property
    def output_nc(self) -> int:
        """Channels of the images it gives."""
        image_nc = self.colour_space.image_nc
        return image_nc[1] if image_nc else self.net_channels[1]

    def padded_size(self, height: int, width: int) -> tuple:
        """The (height, width) the generator is run at for an image of this size."""
        m = self.size_multiple
        return tuple(max(self.min_size, -(-side // m) * m) for side in (height, width))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """1 x C x H x W image in [-1, 1], any size -> 1 x C' x H x W image in [-1, 1] (float32,
        on the device), through the run's colour space (identity for most models)."""
        height, width = image.shape[2:]
        ph, pw = (p - s for p, s in zip(self.padded_size(height, width), (height, width)))
        if ph or pw:
            mode = "reflect" if ph < height and pw < width else "replicate"
            image = F.pad(image, (0, pw, 0, ph), mode=mode)
        with torch.no_grad():
            net_input = self.model.to_device(self.colour_space.encode(image))
            with self.model.autocast():
                result = self.net(net_input)
            result = self.colour_space.decode(net_input, result.float())
        return result[:, :, :height, :width].float()

    def translate_tensor(self, image: torch.Tensor, tile: Optional[int] = None, tile_overlap: int = 32,
                         ramp: str = "cosine") -> torch.Tensor:
        """1 x C x H x W in [-1, 1] -> the translation; tiled when ``tile`` is given (see tiling.py)."""
        if tile is None:
            return self.forward(image)
        tile = max(self.min_size, -(-tile // self.size_multiple) * self.size_multiple)
        return translate_tiled(self.forward, image, tile, tile_overlap, self.size_multiple, ramp)

    def __call__(self, image: Any, tile: Optional[int] = None, tile_overlap: int = 32) -> Any:
        """Translate ``image`` (or each image of a list, or of an N x C x H x W tensor)."""
        if isinstance(image, (list, tuple)):
            return [self(item, tile, tile_overlap) for item in image]
        if isinstance(image, torch.Tensor) and image.dim() == 4:
            # One image at a time: per-image statistics, as test.py's batch size 1.
            return torch.stack([self(item, tile, tile_overlap) for item in image])
        tensor, write = read_input(image, self.input_nc)
        return write(self.translate_tensor(tensor[None], tile, tile_overlap))
