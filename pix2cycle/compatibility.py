"""What works with what: every registered model through every door and in every mode.

The table is computed from the registries and from what each model plugin declares, so a new
plugin is in it the day it is registered:

- ``BaseModel.refused_doors``: door -> why the model cannot go through it;
- ``BaseModel.unused_options`` (and a dataset mode's): an option the model does not read, so
  a mode that is only that option is refused (options/base_options.py enforces it);
- ``BaseModel.generator_refusal(netG)`` / ``discriminator_refusal(netD)``: the networks a
  model cannot take (the model raises the same reason when built with one);
- facts of the machine kind the table is for (``syncbatch`` needs NCCL, so GPUs).

``cell(model, column)`` is None where the cell works and the reason where it is refused.
``tests/test_compatibility.py`` runs every cell that works and checks what it produces,
and checks that every refused cell fails before any work with one ``error:`` line naming
the option or door and the model; ``docs/compatibility.md`` is ``markdown_table()``
(``python scripts/compatibility_table.py`` writes it), and a test fails when they differ.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Tuple


class Column(NamedTuple):
    group: str  # "door", "mode", "norm", "netG", "netD"
    name: str
    flags: Tuple[str, ...]  # train.py flags of a mode (empty for a door)
    meaning: str


DOORS = {
    "train": "train.py",
    "resume": "train.py --continue_train from a full checkpoint (exact)",
    "resume weights": "train.py --continue_train from <epoch>_net_*.pth alone (a fresh optimizer)",
    "resume auto": "train.py --continue_train auto on a run folder with a checkpoint (as torchrun's restarts do)",
    "test.py": "test.py on the run: the gallery, the results and the metrics",
    "translate.py": "translate.py on image files",
    "Translator": "pix2cycle.Translator.from_checkpoint, called on a PIL image",
    "export onnx": "export.py --format onnx, with its parity check",
    "export exported_program": "export.py --format exported_program, with its parity check",
    "export hub": "export.py --format hub (a model package), then Translator.from_pretrained on it",
    "ablate": "scripts/ablate.py: a grid trained and tested, its page",
}
MODES = {
    "torchrun": ((), "torchrun --nproc_per_node 2 (gloo on CPUs, NCCL on GPUs)"),
    "compile": (("--compile",), "--compile (tested with --compile_backend eager; inductor under torchrun)"),
    "amp": (("--amp", "bf16"), "--amp bf16 (native where the CPU has AVX512_BF16/AMX, else warned)"),
    "accumulation": (("--grad_accum_steps", "2"), "--grad_accum_steps 2"),
    "exact accumulation": (("--grad_accum_mode", "exact", "--grad_accum_steps", "2"),
                           "--grad_accum_steps 2 --grad_accum_mode exact (D over both batches, its step, then G "
                           "against the updated D)"),
    "ema": (("--ema_decay", "0.9"), "--ema_decay 0.9, then test.py --use_ema"),
    "validation": (("--val_freq", "1", "--lr_policy", "plateau"),
                   "--val_freq 1 --lr_policy plateau, scored by l1, psnr and ssim (FID, KID and LPIPS need "
                   "their pretrained weights: tests/test_eval_integration.py runs them with stand-in features)"),
    "cache_images": (("--cache_images",), "--cache_images"),
    "webdataset": (("--dataset_mode", "webdataset"), "--dataset_mode webdataset: the model's data as WebDataset shards "
                   "(scripts/make_shards.py), read with its own dataset mode's rules"),
}
# Doors built on another: refused where that one is (a package is loaded by the Translator; auto
# is the full resume, found by itself).
BUILT_ON = {"export hub": "Translator", "resume auto": "resume"}
# Machine facts: (column group, name) -> the reason it is refused on CPU processes.
CPU_REFUSALS = {("torchrun", "syncbatch"): "SyncBatchNorm synchronises over NCCL (GPUs); on CPU processes "
                                           "torchrun refuses --norm syncbatch"}


def columns() -> List[Column]:
    """Every column of the table, from the registries: doors, modes, norms, generators, discriminators."""
    from models.networks import DISCRIMINATORS, GENERATORS, NORM_LAYERS

    out = [Column("door", name, (), meaning) for name, meaning in DOORS.items()]
    out += [Column("mode", name, flags, meaning) for name, (flags, meaning) in MODES.items()]
    out += [Column("norm", name, ("--norm", name), f"--norm {name}") for name in NORM_LAYERS.names()]
    out += [Column("netG", name, ("--netG", name), f"--netG {name}") for name in GENERATORS.names()]
    out += [Column("netD", name, ("--netD", name), f"--netD {name}") for name in DISCRIMINATORS.names()]
    return out


def models() -> List[str]:
    from models import MODELS

    return MODELS.names()


def dataset_mode(model: str) -> str:
    """The dataset mode ``model`` reads by default."""
    return _parser(model).get_default("dataset_mode")


def _parser(model: str):
    from options.base_options import build_parser
    from util.errors import UserError

    try:
        return build_parser(True, ["--model", model])
    except UserError:  # a model for testing only
        return build_parser(False, ["--model", model])


def _unused(model_cls, flags: Tuple[str, ...]) -> Optional[str]:
    """The refusal of options/base_options.py's refuse_unused_options for these flags, if any
    (an option at its default is accepted, read or not)."""
    from options.base_options import unused_option_reason

    model = model_cls.registered_name
    parser = _parser(model)
    key = flags[0].lstrip("-") if flags else None
    if key is None or (len(flags) > 1 and str(parser.get_default(key)) == flags[1]):
        return None
    return unused_option_reason(model, parser.get_default("dataset_mode"), key)


def _dataset_refusal(model: str, flags: Tuple[str, ...]) -> Optional[str]:
    """For a mode that is another dataset mode: why it cannot hold the data of the model's own
    (the mode's ``model_refusal``, which it raises itself), if it cannot."""
    from data import DATASETS

    if flags[:1] != ("--dataset_mode",):
        return None
    refusal = getattr(DATASETS.get(flags[1]), "model_refusal", None)
    return refusal(model, dataset_mode(model)) if refusal else None


def cell(model: str, column: Column) -> Optional[str]:
    """None where ``model`` works through ``column``; else why it is refused."""
    from models import MODELS

    cls = MODELS.get(model)
    if column.group in ("door", "mode"):
        for name in (column.name, BUILT_ON.get(column.name)):
            if name in cls.refused_doors:
                return cls.refused_doors[name]
    if column.group == "mode":
        return _unused(cls, column.flags) or _dataset_refusal(model, column.flags)
    if column.group == "netG":
        return _unused(cls, column.flags) or cls.generator_refusal(column.name)
    if column.group == "norm":
        return _unused(cls, column.flags)
    if column.group == "netD":
        return _unused(cls, column.flags) or cls.discriminator_refusal(column.name)
    return None


def torchrun_cell(model: str, column: Column) -> Optional[str]:
    """The cell under torchrun with 2 CPU processes (norm columns only: the torchrun mode)."""
    return CPU_REFUSALS.get(("torchrun", column.name)) or cell(model, column)


def table() -> Dict[str, Dict[str, Optional[str]]]:
    """model -> "group name" -> None (works) or the reason it is refused."""
    return {model: {f"{c.group} {c.name}": cell(model, c) for c in columns()} for model in models()}


def markdown_table() -> str:
    """docs/compatibility.md: one table per column group, then every refusal with its reason."""
    cols = columns()
    names = models()
    cells = table()
    lines = ["# Compatibility: every model through every door and in every mode", "",
             "Written by `python scripts/compatibility_table.py` from `pix2cycle/compatibility.py`; "
             "`tests/test_compatibility.py` runs every cell marked **works** (tiny networks, one or two "
             "steps, on the CPU) and checks what it produces, checks that every cell marked **refused** "
             "stops before any work with one `error:` line, and fails when this page differs from the "
             "table it computes. A model added to the registry is in the table, and in the test, at once.",
             "", "Works: **yes**. Refused: **no** and a number, whose reason is listed below the tables.", ""]
    reasons: List[str] = []

    def mark(reason: Optional[str]) -> str:
        if reason is None:
            return "yes"
        if reason not in reasons:
            reasons.append(reason)
        return f"no ({reasons.index(reason) + 1})"

    for group, title in (("door", "Doors"), ("mode", "Modes"), ("norm", "Norms (--norm)"),
                         ("netG", "Generators (--netG)"), ("netD", "Discriminators (--netD)")):
        chosen = [c for c in cols if c.group == group]
        lines += [f"## {title}", ""]
        if group in ("door", "mode"):
            lines += [f"- `{c.name}`: {c.meaning}" for c in chosen] + [""]
        lines.append("| model | " + " | ".join(f"`{c.name}`" for c in chosen) + " |")
        lines.append("|---|" + "---|" * len(chosen))
        for model in names:
            lines.append(f"| {model} | " + " | ".join(mark(cells[model][f'{c.group} {c.name}']) for c in chosen) + " |")
        if group == "norm":
            lines += ["", "Under `torchrun` on CPU processes (gloo): "
                      + "; ".join(f"`{c.name}` {mark(torchrun_cell(names[0], c)) if torchrun_cell(names[0], c) else 'as above'}"
                                  for c in chosen if CPU_REFUSALS.get(("torchrun", c.name))) + "."]
        lines.append("")
    lines += ["## Why a cell is refused", ""]
    lines += [f"{i}. {reason}" for i, reason in enumerate(reasons, 1)]
    return "\n".join(lines) + "\n"
