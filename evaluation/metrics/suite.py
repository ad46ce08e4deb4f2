"""``MetricSuite``: accumulate scores and features over batches, then compute the results."""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Dict, Iterator, List, Optional, Union

import torch
from torch import Tensor, nn

from evaluation.metrics import distribution
from evaluation.metrics.registry import LPIPS_BACKBONES, METRICS, parse_metric_names
from evaluation.metrics.weights import WeightsUnavailable, build_inception, build_lpips, obtain_weights


@contextlib.contextmanager
def _rng_untouched(device: torch.device) -> Iterator[None]:
    """Evaluation inside training must not shift the training random stream."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield


class MetricSuite:
    """Accumulates per-image scores and features over batches; ``compute()`` gives the results.

    Images are (B, C, H, W) tensors in [-1, 1]. ``real`` passed to ``update`` is the ground
    truth of ``fake`` (so also a target-domain sample); ``add_target_domain`` adds reals that
    have no fake partner (CycleGAN's testB). Metrics whose weights cannot be had are listed
    in ``unavailable`` (name -> one-line reason, the longer story in ``unavailable_detail``)
    and reported as unavailable; all others still work.
    """

    def __init__(self, names: List[str], device: Union[str, torch.device] = "cpu", weights_dir: Optional[str] = None,
                 feature_extractor: Optional[nn.Module] = None, lpips_net: Optional[nn.Module] = None,
                 lpips_backbone: str = "alex", download: bool = False) -> None:
        if isinstance(names, str):  # "psnr,ssim" straight from the command line
            names = parse_metric_names(names)
        for name in names:
            METRICS.get(name)  # an unknown name is refused, listing the known ones
        LPIPS_BACKBONES.get(lpips_backbone)
        self.names = list(dict.fromkeys(names))
        self.device = torch.device(device)
        self.unavailable: Dict[str, str] = {}
        self.unavailable_detail: Dict[str, str] = {}
        wanted_distribution = [n for n in self.names if METRICS[n].kind == "distribution"]
        with _rng_untouched(self.device):  # building networks draws random initial weights
            self._lpips = lpips_net
            wanted_lpips = [n for n in self.names if METRICS[n].network == "lpips"]
            if lpips_net is None and wanted_lpips:
                self._lpips = self._load(wanted_lpips, lpips_backbone, weights_dir, download,
                                         lambda sd: build_lpips(lpips_backbone, sd))
            self._extractor = feature_extractor
            if feature_extractor is None and wanted_distribution:
                self._extractor = self._load(wanted_distribution, "inception", weights_dir, download,
                                             lambda sd: distribution.InceptionFeatures(build_inception(sd)))
        for net in (self._lpips, self._extractor):
            if net is not None:  # eval: no dropout, frozen batch-norm statistics
                net.to(self.device).eval()
        self.reset()

    def _load(self, metric_names: List[str], key: str, weights_dir: Optional[str], download: bool,
              build: Callable[[Dict[str, Tensor]], nn.Module]) -> Optional[nn.Module]:
        """Build a pretrained network, or record why ``metric_names`` are unavailable."""
        try:
            net = build(obtain_weights(key, weights_dir, download))
        except WeightsUnavailable as e:
            reason, detail = str(e), e.detail
        except (ImportError, RuntimeError, OSError) as e:  # missing library, weights of another shape
            detail = " ".join(str(e).split()) or type(e).__name__
            reason = f"cannot build the {key} network: {detail[:300]}"
        else:
            return net
        for name in metric_names:
            self.unavailable[name] = reason
            if detail and detail not in reason:
                self.unavailable_detail[name] = detail
        return None

    def reset(self) -> None:
        """Forget everything accumulated since construction or the last reset."""
        self._scores: Dict[str, List[float]] = {n: [] for n in self.names if METRICS[n].per_image}
        self._skipped: Dict[str, str] = {}  # why a paired metric got no score (size, shape)
        self._fake_features: List[Tensor] = []
        self._real_features: List[Tensor] = []

    @property
    def _paired_names(self) -> List[str]:
        return [n for n in self._scores if n not in self.unavailable]

    @property
    def _collects_features(self) -> bool:
        return self._extractor is not None and any(
            METRICS[n].kind == "distribution" and n not in self.unavailable for n in self.names)

    def _prepare(self, images: Tensor) -> Tensor:
        if images.dim() != 4:
            raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
        return images.detach().to(self.device, torch.float32)

    def _paired_scores(self, name: str, fake: Tensor, real: Tensor) -> Optional[Tensor]:
        spec = METRICS[name]
        networks = {"lpips": self._lpips}
        try:
            return spec.compute(*([networks[spec.network]] if spec.network else []), fake, real)
        except (ValueError, RuntimeError) as e:  # e.g. images too small for the window/backbone
            self._skipped[name] = f"not computed on images of size {tuple(fake.shape[-2:])}: {e}"
            return None

    def update(self, fake: Tensor, real: Optional[Tensor] = None,
               target_domain: Optional[Tensor] = None) -> List[Dict[str, float]]:
        """Score a batch; returns one dict of paired scores per image (empty without ``real``)."""
        with torch.no_grad(), _rng_untouched(self.device):
            fake = self._prepare(fake)
            per_image: List[Dict[str, float]] = [{} for _ in range(fake.shape[0])]
            if real is not None:
                real = self._prepare(real)
                if real.shape != fake.shape:
                    for name in self._paired_names:
                        self._skipped[name] = (f"real images {tuple(real.shape)} do not match "
                                               f"fake images {tuple(fake.shape)}")
                else:
                    for name in self._paired_names:
                        scores = self._paired_scores(name, fake, real)
                        if scores is None:
                            continue
                        values = scores.double().cpu().tolist()
                        self._scores[name].extend(values)
                        for row, value in zip(per_image, values):
                            row[name] = value
            if self._collects_features:
                self._fake_features.append(distribution.extract_features(self._extractor, fake))
                reals = target_domain if target_domain is not None else real
                if reals is not None:
                    self._add_real_features(self._prepare(reals))
        return per_image

    def add_target_domain(self, images: Tensor) -> None:
        """Add real target-domain images that have no paired fake (for FID/KID only)."""
        if not self._collects_features:
            return
        with torch.no_grad(), _rng_untouched(self.device):
            self._add_real_features(self._prepare(images))

    def _add_real_features(self, images: Tensor) -> None:
        self._real_features.append(distribution.extract_features(self._extractor, images))

    def compute(self) -> Dict[str, dict]:
        """Results by metric name; unavailable ones are ``{"unavailable": reason}`` (and
        ``"detail"`` when there is more to say, e.g. the folders searched for weights)."""
        results: Dict[str, dict] = {}
        with _rng_untouched(self.device):
            for name in self.names:
                if name in self.unavailable:
                    detail = self.unavailable_detail.get(name)
                    results[name] = {"unavailable": self.unavailable[name], **({"detail": detail} if detail else {})}
                elif METRICS[name].per_image:
                    results[name] = self._per_image_result(name)
                else:
                    results[name] = self._set_result(name)
        return results

    def _per_image_result(self, name: str) -> dict:
        values = self._scores[name]
        if not values:
            reason = self._skipped.get(name, "no (fake, real) image pairs were given")
            return {"unavailable": reason}
        mean = math.fsum(values) / len(values)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))  # population std
        return {"mean": mean, "std": std, "n": len(values)}

    def _set_result(self, name: str) -> dict:
        n_fake = sum(len(f) for f in self._fake_features)
        n_real = sum(len(f) for f in self._real_features)
        if n_fake < 2 or n_real < 2:
            return {"unavailable": f"{name} needs at least 2 translated and 2 target-domain images, "
                                   f"got {n_fake} and {n_real}"}
        fake_features = torch.cat(self._fake_features)
        real_features = torch.cat(self._real_features)
        return METRICS[name].compute(fake_features, real_features) | {"n_fake": n_fake, "n_real": n_real}

