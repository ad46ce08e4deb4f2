"""``Translator``: one trained generator, applied to images of any kind and size."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from models import create_model
from models.networks import generator_min_size
from options import load_saved_options, parse_options
from pix2cycle.convert import read_input
from pix2cycle.tiling import translate_tiled
from util.errors import UserError

# Keyword arguments that describe the generator, for weights without a train_opt.json.
ARCHITECTURE_ARGS = ("netG", "norm", "ngf", "input_nc", "output_nc", "no_dropout")
DIRECTIONS = ("AtoB", "BtoA")
# Models whose run holds two generators; direction picks one (suffix of net<G>).
TWO_GENERATORS = {"cycle_gan": {"AtoB": "_A", "BtoA": "_B"}}


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


def _generator_suffix(folder: Path, epoch: str, saved: dict, direction: Optional[str]) -> str:
    """Which ``net_G<suffix>`` of the run to use."""
    if direction is not None and direction not in DIRECTIONS:
        raise UserError(f"direction must be AtoB or BtoA, not '{direction}'")
    model = saved.get("model")
    if model is None and not (folder / f"{epoch}_net_G.pth").exists() \
            and (folder / f"{epoch}_net_G_A.pth").exists():
        model = "cycle_gan"  # bare CycleGAN weights: G_A and G_B
    if model in TWO_GENERATORS:
        return TWO_GENERATORS[model][direction or "AtoB"]
    trained = saved.get("direction", "AtoB")
    if direction is not None and direction != trained:
        raise UserError(f"{folder} holds one generator, trained {trained}; direction only chooses between "
                        f"a CycleGAN's G_A (AtoB) and G_B (BtoA)")
    return saved.get("model_suffix", "") if model == "test" else ""


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
        self.size_multiple = self.opt.size_multiple
        self.min_size = generator_min_size(self.opt.netG)
        self.set_mode(eval, dropout)

    @classmethod
    def from_checkpoint(cls, path: Union[str, Path], epoch: Union[str, int] = "latest", device="auto",
                        direction: Optional[str] = None, eval: bool = False, dropout: bool = False,
                        amp: str = "none", compile: bool = False, model_suffix: Optional[str] = None,
                        trust_remote_code: bool = False, **architecture: Any) -> Translator:
        """Load the generator of the run in folder ``path`` (or the weights file ``path``).

        The architecture comes from ``train_opt.json`` in that folder; keyword arguments
        ``netG, norm, ngf, input_nc, output_nc, no_dropout`` override it, and describe bare
        weights that have none (default: the reference's ``--model test``, i.e. CycleGAN's
        resnet_9blocks, instance norm, no dropout). ``<epoch>_net_G.pth`` is loaded; for a
        CycleGAN, ``direction`` "AtoB" (default) loads G_A and "BtoA" G_B; ``model_suffix``
        names any other ``net_G<suffix>``. ``device``: "auto", "cpu", "cuda", "cuda:N";
        ``amp``: "none", "auto", "bf16" or "fp16", as test.py's ``--amp``.

        A run whose ``train_opt.json`` names a plugin outside pix2cycle (a dotted path such as
        ``my_lab.nets.Generator``) is refused, and nothing of it imported, unless ``netG``
        names that plugin again or ``trust_remote_code=True``: a model folder from someone
        else must not run code on open. The weights are always read without unpickling code.
        """
        unknown = sorted(set(architecture) - set(ARCHITECTURE_ARGS))
        if unknown:
            raise TypeError(f"unknown argument(s) {', '.join(unknown)}; architecture arguments are "
                            f"{', '.join(ARCHITECTURE_ARGS)}")
        path = Path(path)
        weights = path if path.is_file() else None
        folder = path.parent if weights is not None else path
        if not folder.is_dir():
            raise UserError(f"no checkpoint folder at {folder}: train first, or check the path")
        epoch = str(epoch)
        saved = load_saved_options(folder) or {}
        suffix = model_suffix if model_suffix is not None else \
            "" if weights is not None else _generator_suffix(folder, epoch, saved, direction)
        argv = ["--dataroot", str(folder), "--model", "test", "--name", folder.resolve().name,
                "--checkpoints_dir", str(folder.resolve().parent), "--epoch", epoch,
                "--model_suffix", suffix, "--amp", amp, "--num_threads", "0"]
        gpu_ids = _gpu_ids(device)
        argv += ["--gpu_ids", gpu_ids] if gpu_ids is not None else []
        argv += ["--compile"] if compile else []
        for key, value in architecture.items():
            if key != "no_dropout":
                argv += [f"--{key}", str(value)]
        opt = parse_options(argv, is_train=False, trust_remote_code=trust_remote_code)
        if "no_dropout" in architecture:
            opt.no_dropout = bool(architecture["no_dropout"])
        model = create_model(opt)
        if weights is None:
            model.setup(opt)  # loads <epoch>_net_G<suffix>.pth, casts weights for --amp
        else:
            model.load_network_file(model.model_names[0], weights)
            if model.amp_dtype is not None:
                model.cast_weights_for_inference()
        return cls(model, eval=eval, dropout=dropout)

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

    # ----------------------------------------------------------------- running
    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def input_nc(self) -> int:
        return self.opt.input_nc

    @property
    def output_nc(self) -> int:
        return self.opt.output_nc

    def padded_size(self, height: int, width: int) -> tuple:
        """The (height, width) the generator is run at for an image of this size."""
        m = self.size_multiple
        return tuple(max(self.min_size, -(-side // m) * m) for side in (height, width))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """1 x C x H x W in [-1, 1], any size -> 1 x C' x H x W in [-1, 1] (float32, on the device)."""
        height, width = image.shape[2:]
        ph, pw = (p - s for p, s in zip(self.padded_size(height, width), (height, width)))
        if ph or pw:
            mode = "reflect" if ph < height and pw < width else "replicate"
            image = F.pad(image, (0, pw, 0, ph), mode=mode)
        image = self.model.to_device(image)
        with torch.no_grad(), self.model.autocast():
            result = self.net(image)
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
