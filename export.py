"""Export a trained generator to ONNX or a ``torch.export`` program, and check it; or
package it for sharing (``--format hub``).

    python export.py --name horse2zebra --format onnx --out horse2zebra.onnx
    python export.py --name facades_pix2pix --format exported_program --out facades.pt2
    python export.py --name facades_pix2pix --format hub --out facades_package/ [--push_to_hub USER/NAME]

``--format hub`` writes a folder in the Hugging Face Hub's layout (pix2cycle/hub.py):
``config.json``, ``model.safetensors`` (the generator the Translator runs: the weight
average where the run has one) and ``README.md``, a model card written from the run (its
options, test.py's last metrics, validation's best, samples from the gallery under
``--results_dir``). ``Translator.from_pretrained`` and ``translate.py --model_dir`` load it;
``--push_to_hub`` then uploads it with huggingface_hub (needs a token and the network).

Height and width stay dynamic (any multiple of the generator's size multiple: 4 for the
ResNets, 256 for unet_256). After exporting, the exported model is run (onnxruntime, or
``torch.export.load(...).module()``) on a random input of another size than the training
size and compared with PyTorch; the largest difference is printed, and one above 1e-4 is
an error (the file is then not kept). ONNX needs the optional packages of
``requirements-export.txt``. Only this script's lines are printed; ``--verbose`` adds the
exporter's own progress (``[torch.onnx] ...``).

Batch norm (pix2pix): ``--bn_stats image`` (default) exports what test.py and translate.py
do by default, each image normalized by its own statistics (the layer becomes an instance
norm with the batch norm's scale and shift: the same numbers at batch size 1, and per image
in a batch); ``--bn_stats running`` freezes it to its running statistics, as test.py and
translate.py ``--eval``. Dropout is always off in the export.

The graph is the generator alone: for a model with a colour space (colorization), x and y
are what its generator takes and gives (L and ab), and a ``note:`` line says how to convert.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import torch
from torch import nn

from pix2cycle import Translator
from pix2cycle.cli import changed_flags, load_translator, make_parser, run_main
from util.errors import UserError
from util.registry import Registry

TOLERANCE = 1e-4
EXPORT_EXTRAS = ("onnx", "onnxscript", "onnxruntime")
PIP_HINT = "pip install -r requirements-export.txt"


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("Export a trained pix2cycle generator.")
    parser.add_argument("--format", required=True, choices=EXPORTERS.names(), help="what to write")
    parser.add_argument("--out", required=True, help="the file to write (.onnx, .pt2), or the folder (hub)")
    parser.add_argument("--bn_stats", choices=["image", "running"], default=None,
                        help="batch norm: each image's own statistics (test.py, translate.py; the default) or the "
                             "running statistics (their --eval); onnx and exported_program only")
    g = parser.add_argument_group("--format hub")
    g.add_argument("--results_dir", default=None, help="where test.py wrote the run's results (default ./results): "
                                                       "the card's metrics and samples")
    g.add_argument("--push_to_hub", default=None, metavar="USER/NAME",
                   help="upload the package to this Hugging Face Hub repository (needs a token)")
    g.add_argument("--private", action="store_true", help="with --push_to_hub: a private repository")
    return parser


class ImageStatsNorm(nn.InstanceNorm2d):
    """A batch norm layer that uses each image's own statistics (test.py without --eval)."""

    @classmethod
    def from_batch_norm(cls, bn: nn.BatchNorm2d) -> ImageStatsNorm:
        norm = cls(bn.num_features, eps=bn.eps, affine=True, track_running_stats=False)
        with torch.no_grad():
            norm.weight.copy_(bn.weight)
            norm.bias.copy_(bn.bias)
        return norm


def _replace_batch_norms(net: nn.Module) -> int:
    count = 0
    for parent in list(net.modules()):
        for key, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, key, ImageStatsNorm.from_batch_norm(child))
                count += 1
    return count


def plain_generator(translator: Translator, bn_stats: str) -> nn.Module:
    """The translator's generator as the plain layers its plugin builds (no CPU fast paths,
    whose Python shape tests would be baked into the graph), on the CPU in eval mode."""
    net = translator.plugin.build_generator(translator.opt, translator.net_name)  # its weights are loaded below
    source = translator.model.unwrap(translator.net)
    net.load_state_dict({k: v.float().cpu() for k, v in source.state_dict().items()})
    n_bn = _replace_batch_norms(net) if bn_stats == "image" else sum(
        isinstance(m, nn.BatchNorm2d) for m in net.modules())
    if n_bn:
        how = "each image's own statistics, as test.py and translate.py (--bn_stats running: their --eval)" \
            if bn_stats == "image" else "its running statistics, as test.py and translate.py --eval"
        print(f"note: {n_bn} batch norm layer(s) exported with {how}")
    return net.eval()


def _dynamic_shapes(translator: Translator) -> dict:
    m = translator.size_multiple
    low = max(1, translator.min_size // m)
    # Height and width are multiples of the size multiple; the U-Net's skips need exactly that.
    rows, cols = torch.export.Dim("rows", min=low, max=4096), torch.export.Dim("cols", min=low, max=4096)
    return {"x": {2: m * rows, 3: m * cols}}


def _example(translator: Translator, height: int, width: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, translator.net_channels[0], height, width, generator=generator) * 2 - 1


def export_program(net: nn.Module, example: torch.Tensor, dynamic: dict, out: Path, verbose: bool = False) -> Callable:
    program = torch.export.export(net, (example,), dynamic_shapes=dynamic)
    torch.export.save(program, out)
    loaded = torch.export.load(out).module()
    return lambda x: loaded(x)


def export_onnx(net: nn.Module, example: torch.Tensor, dynamic: dict, out: Path, verbose: bool = False) -> Callable:
    """Export with torch.onnx (its ``[torch.onnx]`` progress lines only with ``verbose``)."""
    missing = [name for name in EXPORT_EXTRAS if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"ONNX export needs {', '.join(missing)}, not installed here: {PIP_HINT}")
    import onnxruntime

    torch.onnx.export(net, (example,), str(out), dynamo=True, dynamic_shapes=dynamic,
                      input_names=["x"], output_names=["y"], external_data=False, verbose=verbose)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"x": x.numpy()})[0])




def check_size(translator: Translator) -> tuple:
    """A (height, width) other than the training size: one and two size multiples more."""
    m = translator.size_multiple
    base = max(translator.min_size, getattr(translator.opt, "crop_size", m) // m * m)
    return base + m, base + 2 * m


def run(args: argparse.Namespace) -> int:
    return EXPORTERS.get(args.format).run(args)


def _refuse(args: argparse.Namespace, flags: Dict[str, object], why: str) -> None:
    given = changed_flags(args, flags)
    if given:
        raise UserError(f"{', '.join(given)}: not used with --format {args.format}: {why}")


def run_hub(args: argparse.Namespace) -> int:
    """Write the package (pix2cycle/hub.py), then upload it when asked."""
    from pix2cycle import hub
    from pix2cycle.model_card import describe

    _refuse(args, {"bn_stats": None}, "the package keeps the running statistics and the reader chooses "
                                      "(Translator.from_pretrained(..., eval=True), translate.py --eval)")
    _refuse(args, {"model_dir": None}, "it is a package already: copy its folder")
    token = hub.check_push_target(args.push_to_hub) if args.push_to_hub else None
    if args.name is None:
        raise UserError("give --name: the run to package")
    run_folder = Path(args.checkpoints_dir) / args.name
    ema = any(run_folder.glob(f"{args.epoch}_net_G*_ema.*"))
    translator = load_translator(args, device="cpu", use_ema=ema)
    out = hub.write_package(translator, Path(args.out), run_folder, Path(args.results_dir or "results"),
                            args.epoch, ema)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    size = sum((out / f).stat().st_size for f in files) / 1e6
    print(f"wrote {out} (hub package, {size:.1f} MB: {', '.join(files)}); {describe(hub.read_config(out))}"
          + ("; the weight average (EMA)" if ema else ""))
    if args.push_to_hub:
        print(f"uploaded to {hub.push_package(out, args.push_to_hub, token, args.private)}")
    return 0


def run_graph(args: argparse.Namespace) -> int:
    _refuse(args, {"results_dir": None, "push_to_hub": None, "private": False}, "for --format hub only")
    args.bn_stats = args.bn_stats or "image"
    translator = load_translator(args, device="cpu")
    net = plain_generator(translator, args.bn_stats)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    exporter = EXPORTERS.get(args.format)
    tmp = out.with_name(f".{out.name}.tmp{exporter.suffix}")
    try:
        with torch.no_grad():
            exported = exporter.write(net, _example(translator, *check_size(translator)[::-1], seed=0),
                                              _dynamic_shapes(translator), tmp, verbose=args.verbose)
            height, width = check_size(translator)
            x = _example(translator, height, width, seed=1)
            diff = (exported(x).float() - net(x)).abs().max().item()
        print(f"parity at {height}x{width} (training size {translator.opt.crop_size}): "
              f"largest difference to PyTorch {diff:.3g}")
        if not diff <= TOLERANCE:
            print(f"error: the exported model differs from PyTorch by {diff:.3g} (> {TOLERANCE:g}); "
                  f"{out} was not written", file=sys.stderr)
            return 1
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    nc_in, nc_out = translator.net_channels
    print(f"wrote {out} ({args.format}, {out.stat().st_size / 1e6:.1f} MB; input x: 1 x {nc_in} x H x W in [-1, 1], "
          f"H and W multiples of {translator.size_multiple}; output y: 1 x {nc_out} x H x W)")
    if translator.colour_space.graph:  # the generator alone: the conversion is the caller's
        print(f"note: the graph is the generator without its colour conversion: {translator.colour_space.graph}")
    return 0


@dataclass(frozen=True)
class Exporter:
    """A --format: the door that writes it; for a graph, its writer and the suffix the writer needs
    (torch.export.load wants .pt2). hub is a folder for sharing, not a graph."""

    run: Callable
    write: Optional[Callable] = None
    suffix: str = ""


EXPORTERS = Registry("--format")
EXPORTERS.add("onnx", Exporter(run_graph, export_onnx, ".onnx"))
EXPORTERS.add("exported_program", Exporter(run_graph, export_program, ".pt2"))
EXPORTERS.add("hub", Exporter(run_hub))


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
