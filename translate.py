"""Translate image files with a trained model: no dataset layout, any image size.

    python translate.py photo.jpg shots/ "more/**/*.png" --name horse2zebra --out translated/
    python translate.py big_map.tif --name maps_pix2pix --tile 512 --tile_overlap 64
    python translate.py photo.jpg --model_dir maps_package/ --out translated/   # export.py --format hub

Inputs are files, folders (searched recursively) and glob patterns. Each output keeps its
input's name, extension and size (folders keep their subfolders) where the format holds the
result: 8-bit PNG, JPEG (quality 95), TIFF, BMP, WebP (lossless), PPM/PGM; else test.py's
format for the result (a PNG for gray and RGB). 16-bit sources give 16-bit results as test.py
writes them: 16-bit PNGs, TIFFs for TIFF sources. The architecture comes from the run's
``train_opt.json``; ``--netG --norm --ngf --input_nc --output_nc --no_dropout`` describe
bare weights without one. ``--tile`` translates large images in overlapping tiles
(docs/inference.md says what that changes for each norm). An unreadable file among
others is skipped with a warning.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from data.image_folder import UnreadableImageError, is_image_file, load_image, make_dataset, to_unit_float
from pix2cycle.cli import load_translator, make_parser, run_label, run_main
from pix2cycle.io import output_path, source_bit_depth, write_result
from pix2cycle.tiling import RAMPS
from reporting.progress import Progress, echo
from util.errors import UserError
from util.hardware import AMP_CHOICES


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("Translate images with a trained pix2cycle model.")
    parser.add_argument("inputs", nargs="+", help="image files, folders (recursive) and glob patterns")
    parser.add_argument("--out", default=None, help="output folder (default: results/<name>/translated)")
    parser.add_argument("--gpu_ids", default=None, help="GPU to use, e.g. 0; -1 for the CPU (default: auto)")
    parser.add_argument("--amp", default="none", choices=AMP_CHOICES,
                        help="mixed precision, as test.py (auto: the fastest that keeps quality on this device)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the generator")
    parser.add_argument("--eval", action="store_true",
                        help="batch norm with running statistics (default: each image's own, as test.py)")
    parser.add_argument("--dropout", action="store_true", help="keep dropout on (random results, as test.py)")
    parser.add_argument("--tile", type=int, default=None, help="translate in tiles of this many pixels")
    parser.add_argument("--tile_overlap", type=int, default=32, help="overlap of neighbouring tiles, pixels")
    parser.add_argument("--ramp", default="cosine", choices=RAMPS.names(), help="blending across tile overlaps")
    return parser


def collect_inputs(patterns: Sequence[str]) -> List[Tuple[Path, Path]]:
    """(image file, its output path relative to --out) for every input, in order, once each."""
    found: List[Tuple[Path, Path]] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            matches = [pattern]
        elif os.path.isfile(pattern):
            matches = [pattern]
        else:
            matches = sorted(glob.glob(pattern, recursive=True))
        before = len(found)
        for match in matches:
            if os.path.isdir(match):
                found += [(Path(p), Path(os.path.relpath(p, match))) for p in make_dataset(match)]
            elif is_image_file(match) or match == pattern:
                found.append((Path(match), Path(Path(match).name)))
        if len(found) == before:
            raise UserError(f"no images match '{pattern}'")
    return _unique(found)


def _unique(found: List[Tuple[Path, Path]]) -> List[Tuple[Path, Path]]:
    """Drop repeated inputs; number outputs that would share a name (a/x.png, b/x.png -> x, x_2)."""
    seen, used, result = set(), set(), []
    for source, relative in found:
        if source.resolve() in seen:
            continue
        seen.add(source.resolve())
        stem, k = relative.with_suffix(""), 1
        while str(stem).lower() in used:
            k += 1
            stem = relative.with_suffix("").with_name(f"{relative.stem}_{k}")
        used.add(str(stem).lower())
        result.append((source, stem.with_suffix(relative.suffix)))
    return result


def run(args: argparse.Namespace) -> int:
    inputs = collect_inputs(args.inputs)
    first_gpu = None if args.gpu_ids is None else args.gpu_ids.split(",")[0].strip()
    device = "auto" if first_gpu is None else "cpu" if first_gpu.startswith("-") else f"cuda:{first_gpu}"
    translator = load_translator(args, device=device, eval=args.eval, dropout=args.dropout, amp=args.amp,
                                 compile=args.compile)
    out = Path(args.out) if args.out else Path("results") / run_label(args) / "translated"
    progress = Progress(total=len(inputs), desc="translate", stream=sys.stderr)
    done, skipped, start = 0, [], time.time()
    for source, relative in inputs:
        try:
            image = load_image(source, translator.input_nc)
        except UnreadableImageError as e:
            if len(inputs) == 1:
                raise UserError(f"cannot read {source}: {e.reason}") from e
            echo(f"warning: skipping {source}: {e.reason}", sys.stderr)
            skipped.append(source)
            progress.update(1)
            continue
        depth = source_bit_depth(source)
        result = translator.translate_tensor(to_unit_float(image)[None] * 2.0 - 1.0, args.tile, args.tile_overlap, args.ramp)
        write_result(result, output_path(out / relative, depth, source, result), depth)
        done += 1
        progress.update(1)
    progress.close()
    if not done:
        raise UserError(f"none of the {len(inputs)} input(s) could be read")
    elapsed = time.time() - start
    print(f"translated {done} image(s) in {elapsed:.1f} s into {out}"
          + (f"; skipped {len(skipped)} unreadable file(s)" if skipped else ""))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
