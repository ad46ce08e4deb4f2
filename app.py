"""A local demo page: upload an image, see its translation beside it, download it.

    python app.py --name maps_pix2pix                  # a run under ./checkpoints
    python app.py --model_dir maps_package/ --port 7861  # a package (export.py --format hub)

The page (Gradio, optional: ``pip install -r requirements-app.txt``) serves on
``--host`` (default 127.0.0.1: this machine only) and ``--port``. Images of any size are
translated whole, as the Translator pads them (``--tile`` for large ones); a model with a
generator per direction (CycleGAN) gets a choice of direction. The translation is shown
as a PNG, and the download button gives the same PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence

from pix2cycle import Translator
from pix2cycle.cli import load_translator, make_parser, run_label, run_main
from util.errors import UserError

APP_HINT = "pip install -r requirements-app.txt"
# No fonts from a CDN: the page works with no network.
LOCAL_FONTS = {"font": ["system-ui", "sans-serif"], "font_mono": ["ui-monospace", "monospace"]}


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("A local web page that translates uploaded images with a trained pix2cycle model.")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on")
    parser.add_argument("--gpu_ids", default=None, help="GPU to use, e.g. 0; -1 for the CPU (default: auto)")
    parser.add_argument("--tile", type=int, default=None, help="translate in tiles of this many pixels")
    parser.add_argument("--tile_overlap", type=int, default=32, help="overlap of neighbouring tiles, pixels")
    return parser


def import_gradio():
    """gradio, or a one-line error saying how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise UserError(f"the demo page needs gradio, not installed here: {APP_HINT}") from None
    return gradio


def load_translators(args: argparse.Namespace) -> Dict[str, Translator]:
    """Direction -> its translator: both of a model with a generator per direction (unless
    --direction picks one), else the one generator."""
    device = "auto" if args.gpu_ids is None else "cpu" if args.gpu_ids.strip().startswith("-") \
        else f"cuda:{args.gpu_ids.split(',')[0].strip()}"
    first = load_translator(args, device=device)
    both = getattr(first.plugin, "generator_by_direction", None)
    if args.model_dir is not None or args.direction is not None or not both:
        return {args.direction or first.opt.direction: first}
    other = argparse.Namespace(**{**vars(args), "direction": "BtoA"})
    return {"AtoB": first, "BtoA": load_translator(other, device=device)}


def translate_image(translators: Dict[str, Translator], image, direction: Optional[str], tile: Optional[int],
                    tile_overlap: int, out_dir: Path):
    """The translation of ``image`` (a PIL image) and a PNG file of it, for the download button."""
    if image is None:
        raise ValueError("upload an image first")
    translator = translators[direction or next(iter(translators))]
    result = translator(image.convert("L" if translator.input_nc == 1 else "RGB"), tile, tile_overlap)
    fd, name = tempfile.mkstemp(suffix=".png", prefix="translated_", dir=out_dir)
    os.close(fd)
    result.save(name)
    return result, name


def build_demo(args: argparse.Namespace, translators: Dict[str, Translator]):
    """The page: input and translation side by side, a direction where there are two, a download."""
    gr = import_gradio()
    first = next(iter(translators.values()))
    out_dir = Path(tempfile.mkdtemp(prefix="pix2cycle_app_"))
    mode = "L" if first.input_nc == 1 else "RGB"
    with gr.Blocks(title=f"pix2cycle: {run_label(args)}") as demo:
        gr.Markdown(f"## {run_label(args)}\n{first.opt.model}, {first.opt.netG}: upload an image of any size.")
        direction = gr.Radio(list(translators), value=next(iter(translators)), label="direction",
                             visible=len(translators) > 1)
        with gr.Row():
            source = gr.Image(type="pil", image_mode=mode, label="input", sources=["upload"], elem_id="input")
            result = gr.Image(type="pil", format="png", label="translation", interactive=False,
                              buttons=["download"], elem_id="translation")
        button = gr.Button("Translate", variant="primary", elem_id="translate")
        download = gr.File(label="download (PNG)", interactive=False, elem_id="download")
        button.click(lambda image, d: translate_image(translators, image, d, args.tile, args.tile_overlap, out_dir),
                     inputs=[source, direction], outputs=[result, download])
    return demo


def launch(demo, args: argparse.Namespace, block: bool = True):
    gr = import_gradio()
    return demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=not block, quiet=not block,
                       theme=gr.themes.Default(**LOCAL_FONTS), footer_links=[])


def run(args: argparse.Namespace) -> int:
    import_gradio()  # before loading the model: the missing package is the first error
    translators = load_translators(args)
    print(f"serving http://{args.host}:{args.port} ({', '.join(translators)}); Ctrl-C to stop")
    launch(build_demo(args, translators), args)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
