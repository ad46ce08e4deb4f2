"""Apply a trained model to a test set and write an HTML gallery of the results.

    python test.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA
    # -> results/facades_pix2pix/test_latest/index.html

The architecture options (``--netG``, ``--norm``, ``--no_dropout``, ``--ngf``, ...) are
read from the training run's ``train_opt.json`` when it is there; flags given on the
command line win. Every image of the phase is processed unless ``--num_test`` says less.

``--metrics`` (default: the model's, e.g. l1,psnr,ssim,lpips for pix2pix) scores the
results: per-image scores in the gallery, means and std at its top, in ``metrics.json``
and on the console (docs/metrics.md). What cannot be computed here and now (no pairs, a
weights file not found; nothing is downloaded without ``--download_weights``) is skipped
with one line saying why; when nothing could be computed, no metrics.json is written.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch

from data import create_dataloader, create_dataset
from data.base_dataset import sample_unit
from data.codec import stem_of
from data.intensity import windows_of
from evaluation.evaluator import METRICS_FILE, Evaluator, translated_batches, write_json_atomic
from evaluation.metrics import parse_metric_names
from evaluation.results import ResultSaver, parse_channels
from models import MODELS, create_model
from options import parse_options
from reporting.html import Gallery
from reporting.progress import Progress
from reporting.scores import describe_unavailable, format_result, summary_line
from util.errors import UserError, report_user_error, user_error_from_os_error
from util.run_folder import RunLock
from util.util import ImageWriter, seed_everything


def results_folder(opt) -> Path:
    """``results/<name>/<phase>_<epoch>``; the single-generator test model gets its own folder
    so that its results never overwrite a full model's gallery of the same name."""
    tag = f"iter_{opt.load_iter}" if opt.load_iter > 0 else opt.epoch
    folder = f"{opt.phase}_{tag}"
    suffix = getattr(MODELS.get(opt.model), "results_folder_suffix", None)  # the plugin says
    if suffix is not None:
        folder += suffix(opt)
    return Path(opt.results_dir) / opt.name / folder


def run(opt) -> int:
    dataset = create_dataset(opt)
    loader = create_dataloader(opt, dataset, shuffle=False)
    model = create_model(opt)
    model.setup(opt)
    if model.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed image sizes: let cuDNN time and keep its fastest kernels
    if opt.eval:
        model.eval()
    names = parse_metric_names(opt.metrics)
    evaluator = Evaluator(model, names, opt.metrics_weights, opt.download_weights) if names else None
    for line in describe_unavailable(evaluator.unavailable if evaluator else {}):
        print(line)
    out_dir = results_folder(opt)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    gallery = Gallery(out_dir, title=f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}",
                      width=opt.display_winsize)
    total = len(dataset) if opt.num_test is None else min(opt.num_test, len(dataset))
    progress = Progress(total=total, desc="test", unit=sample_unit(dataset))
    done, start = 0, time.time()
    used_names = set()
    per_image: Dict[str, Dict[str, float]] = {}  # image name -> its paired scores, for metrics.json
    seed_everything(opt.seed)  # here, just before the first image: --seed fixes dropout as validation does
    with ImageWriter() as writer:  # PNGs are encoded while the next batch is translated
        # Results in the data's own type for the scientific modes, 8-bit PNGs otherwise.
        saver = ResultSaver(image_dir, writer, windows_of(opt), opt.save_dtype,
                            parse_channels(opt.display_channels), opt.aspect_ratio)
        for data, n in translated_batches(model, loader, limit=total):
            visuals = model.get_current_visuals()
            scores = evaluator.update(model, data, n) if evaluator else [{}] * n
            for i, path in enumerate(model.get_image_paths()[:n]):
                name = unique_stem(stem_of(path), used_names)
                row = []
                for label, image in visuals.items():
                    row += saver.save(label, image[i:i + 1], name, path)
                gallery.add_row(Path(path).name, row, scores[i])
                if scores[i]:
                    per_image[name] = scores[i]
                done += 1
                progress.update(1, None)
    progress.close()
    (out_dir / METRICS_FILE).unlink(missing_ok=True)  # not left from an earlier run
    if evaluator is not None:
        report_metrics(opt, evaluator, gallery, out_dir, done, per_image)
    gallery.save()
    elapsed = time.time() - start
    unit = sample_unit(dataset)
    print(f"processed {done} {unit} in {elapsed:.1f} s ({done / max(elapsed, 1e-9):.2f} {unit}/s); "
          f"gallery: {out_dir / 'index.html'}")
    return 0


def report_metrics(opt, evaluator: Evaluator, gallery: Gallery, out_dir: Path, images: int,
                   per_image: Dict[str, Dict[str, float]]) -> None:
    """Means (and std) in metrics.json, at the top of the gallery and in one console line;
    metrics.json also keeps each image's paired scores (``per_image``). Skipped metrics were
    named once (with the reason) and are left out of the console line; without one computed
    metric there is no metrics.json."""
    by_target = evaluator.compute_by_target()
    results = evaluator.flatten(by_target)
    for line in describe_unavailable(evaluator.later_unavailable(results)):
        print(line)
    if all("unavailable" in r for r in results.values()):
        print("no metric could be computed; no metrics.json written")
        return
    computed = {t: {n: r for n, r in by.items() if "unavailable" not in r} for t, by in by_target.items()}
    gallery.set_summary({"images": images, **{name: format_result(name, r) for name, r in results.items()}})
    write_json_atomic(out_dir / METRICS_FILE, {
        "name": opt.name, "model": opt.model, "phase": opt.phase, "epoch": opt.epoch, "images": images,
        "ground_truth_pairs": evaluator.pairs,
        "translations": {evaluator.suffix(t) or "-": evaluator.label(t) for t in evaluator.targets},
        "metrics": results, "per_image": per_image})
    line = summary_line(computed, evaluator.flatten(computed))
    print(f"metrics over {images} image(s): {line}  ({out_dir / METRICS_FILE})")


def unique_stem(stem: str, used: set) -> str:
    """Input files of the same stem in different folders must not overwrite each other."""
    name, k = stem, 1
    while name in used:
        k += 1
        name = f"{stem}_{k}"
    used.add(name)
    return name


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    try:
        opt = parse_options(argv, is_train=False)
        with RunLock(results_folder(opt), what="test.py run", option="--results_dir"):  # one writer per results folder
            return run(opt)
    except UserError as e:
        return report_user_error(e, verbose)
    except OSError as e:  # the file system failed (results folder not writable, disk full, ...)
        return report_user_error(user_error_from_os_error(e), verbose)


if __name__ == "__main__":
    sys.exit(main())
