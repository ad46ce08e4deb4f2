"""Saving and loading a model: its weight files (the reference's ``<epoch>_net_<name>.pth``)
and the training state that a full checkpoint holds for an exact resume.

``ModelState`` is a part of ``BaseModel``; it reads what BaseModel sets up: ``model_names``,
``networks()``, ``unwrap()``, ``save_dir``, ``opt``, ``device``, ``optimizers``,
``schedulers``, ``scalers``, ``weight_average``, ``use_ema``, ``train_steps`` and
``accum_steps``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import torch

from models import networks
from models.registry import MODELS
from models.training_step import optimizer_parameters
from util.errors import UserError
from util.saved_options import load_saved_options
from util.weights import load_weights, save_weights, weights_file


class ModelState:
    """Weight files and full training state of a model (see the module docstring)."""

    def network_state(self) -> Dict[str, dict]:
        """CPU copies of every network's weights, in the reference's plain layout."""
        return {name: {k: v.detach().cpu() for k, v in self.unwrap(net).state_dict().items()}
                for name, net in self.networks().items()}

    def save_networks(self, epoch) -> None:
        """Write ``<epoch>_net_<name>.pth`` for every network (the reference's files), and
        ``<epoch>_net_<name>_ema.pth`` for the weight averages of ``--ema_decay``; each also
        as ``.safetensors`` (the same tensors, readable without unpickling)."""
        states = self.network_state()
        if self.weight_average is not None:
            states.update({name + "_ema": state for name, state in self.weight_average.state_dict().items()})
        for name, state in states.items():
            save_weights(state, self.network_file(epoch, name))

    def weight_file_names(self) -> List[str]:
        """The ``<name>`` of every ``<epoch>_net_<name>.pth`` that ``save_networks`` writes."""
        averaged = list(self.weight_average.networks()) if self.weight_average is not None else []
        return list(self.model_names) + [name + "_ema" for name in averaged]

    def network_file(self, epoch, name: str) -> Path:
        return self.save_dir / f"{epoch}_net_{name}.pth"

    def load_networks(self, epoch) -> None:
        """Load ``<epoch>_net_<name>.safetensors`` (else ``.pth``) into every network; clear
        errors when missing or different."""
        for name in self.model_names:
            # test.py --use_ema: the generators' weight averages (--ema_decay) instead.
            ema = "_ema" if self.use_ema and name.startswith("G") else ""
            path = weights_file(self.save_dir, f"{epoch}_net_{name}{ema}")
            if path is None:
                raise UserError(f"no weights at {self.network_file(epoch, name + ema)}: train first, or check "
                                f"--name, --checkpoints_dir and --epoch (files there: {_list_weights(self.save_dir)})")
            self.load_network_file(name, path)
        if self.weight_average is not None:
            # A weights-only --continue_train: each average goes on from its own file where the
            # run wrote one, else from the weights just loaded (not from the initialisation).
            # The update count is not in weight files: the ramp-up, which only keeps an average
            # from holding the initial weights, is off, or the first update would erase the average.
            self.weight_average.rampup = 0.0
            for name, average in self.weight_average.networks().items():
                path = weights_file(self.save_dir, f"{epoch}_net_{name}_ema")
                state = load_weights(path, map_location=self.device) if path is not None else \
                    self.unwrap(getattr(self, "net" + name)).state_dict()
                networks.load_network_weights(average, state)

    def load_network_file(self, name: str, path: Path) -> None:
        state = load_weights(path, map_location=self.device)
        if isinstance(state, dict) and "networks" in state:  # a full training checkpoint
            state = state["networks"][name]
        self.load_network_state(name, state, source=path)

    def load_network_state(self, name: str, state: dict, source="checkpoint",
                           saved_options: Optional[dict] = None) -> None:
        net = self.unwrap(getattr(self, "net" + name))
        try:
            networks.load_network_weights(net, state)
        except RuntimeError as e:
            raise UserError(architecture_mismatch_message(name, source, self.save_dir, self.opt, e,
                                                          saved_options)) from e

    # ----------------------------------------------------------------- resume
    def extra_state(self) -> dict:
        """Model state beyond networks and optimizers (image pools, ...) for full checkpoints."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what ``extra_state`` returned."""

    def training_state(self) -> dict:
        """Everything of the model a resumed run needs, in plain containers and tensors."""
        return {
            "networks": self.network_state(),
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "scalers": [self.scalers[id(o)].state_dict() if id(o) in self.scalers else None
                        for o in self.optimizers],
            "extra": self.extra_state(),
            "train_steps": self.train_steps,
            "weight_average": self.weight_average.state_dict() if self.weight_average is not None else {},
            # Saved inside an accumulation (--grad_accum_steps): the gradients summed so far.
            "gradients": [[p.grad.detach().cpu() if p.grad is not None else None
                           for p in optimizer_parameters(o)] for o in self.optimizers]
            if self.train_steps % self.accum_steps else [],
            "pending_batches": list(self.pending_batches),  # --grad_accum_mode exact
        }

    def load_training_state(self, state: dict, source="checkpoint", saved_options: Optional[dict] = None) -> None:
        """Restore ``training_state()``; ``saved_options`` (the checkpoint's) name what differs on a mismatch."""
        missing = [name for name in self.model_names if name not in state["networks"]]
        if missing:
            raise UserError(f"{source} has no {', '.join('net' + n for n in missing)} (it holds "
                            f"{', '.join('net' + n for n in state['networks']) or 'no networks'}): it was "
                            f"written by another --model; use that model or another --name")
        for name in self.model_names:
            self.load_network_state(name, state["networks"][name], source=source, saved_options=saved_options)
        for optimizer, opt_state in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(_keep_implementation(optimizer, opt_state))
        # A resumed run builds its schedulers after this (follow_schedule), from these states.
        self.saved_schedulers = list(state["schedulers"])
        for scheduler, sched_state in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(sched_state)
        for optimizer, scaler_state in zip(self.optimizers, state.get("scalers", [])):
            if scaler_state is not None and id(optimizer) in self.scalers:
                self.scalers[id(optimizer)].load_state_dict(scaler_state)
        self.load_extra_state(state.get("extra", {}))
        self.train_steps = state.get("train_steps", 0)
        if self.weight_average is not None:
            self.weight_average.load_state_dict(state.get("weight_average") or state["networks"])
        self.pending_batches = list(state.get("pending_batches", []))
        for optimizer, grads in zip(self.optimizers, state.get("gradients", [])):
            for p, g in zip(optimizer_parameters(optimizer), grads):
                p.grad = None if g is None else g.to(p.device, p.dtype)


def _keep_implementation(optimizer: torch.optim.Optimizer, saved: dict) -> dict:
    """``saved`` with this run's fused/foreach choice: a checkpoint's param groups would
    otherwise bring back the implementation of the run that wrote it."""
    groups = [dict(g, **{k: cur[k] for k in ("fused", "foreach") if k in cur})
              for g, cur in zip(saved["param_groups"], optimizer.param_groups)]
    return dict(saved, param_groups=groups)


def _list_weights(folder: Path) -> str:
    files = sorted(p.name for suffix in ("pth", "safetensors") for p in Path(folder).glob(f"*.{suffix}")) \
        if Path(folder).is_dir() else []
    return ", ".join(files[:10]) + (" ..." if len(files) > 10 else "") if files else "none"


def architecture_mismatch_message(name: str, source, save_dir: Path, opt, error: Exception,
                                  saved: Optional[dict] = None) -> str:
    """Name the options that differ from the run that wrote the weights, when that is known:
    from ``saved`` (the options stored in a full checkpoint), else the run's ``train_opt.json``."""
    saved = saved or load_saved_options(save_dir) or {}
    keys = MODELS.get(opt.model).architecture_keys
    differ = [f"--{k} {saved[k]} (saved) vs {getattr(opt, k)} (now)" for k in keys
              if k in saved and hasattr(opt, k) and saved[k] != getattr(opt, k)]
    if differ:
        return f"weights {source} do not fit net{name}: options differ from the saved run: " + "; ".join(differ)
    first = str(error).strip().splitlines()
    detail = next((line.strip() for line in first if "size mismatch" in line or "Missing" in line
                   or "Unexpected" in line), first[0] if first else "")
    return (f"weights {source} do not fit net{name} built from the current options "
            f"(--netG/--netD/--ngf/--ndf/--norm/--input_nc/--output_nc/--no_dropout?): {detail[:300]}")


def checkpoint_path(save_dir: Path, tag: str = "latest") -> Path:
    return Path(save_dir) / f"{tag}_checkpoint.pth"
