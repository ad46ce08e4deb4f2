"""Faster execution of the same layers on CPUs: same weights, same state_dict, same function.

``use_fast_layers(net)`` swaps, in place, the class of some layers for a subclass that
computes the same function faster; parameters, buffers and ``state_dict`` keys are untouched,
so checkpoints and the reference's weight files are unaffected. The GEMM convolutions sum in
another order than oneDNN, so results agree up to floating-point rounding, not bit for bit
(``--conv_impl native`` gives the reference's arithmetic; tests/test_golden_step.py measures
what the rounding does to one training step).

* ``GemmConv2d`` / ``GemmConvTranspose2d``: a convolution whose matrix multiply has few
  columns (the U-Net's inner layers: a 512x512 or 1024x512 4x4 kernel applied to a 1x1 to
  16x16 image) runs as one GEMM plus ``unfold``/``fold``. oneDNN's kernels spend most of their
  time re-laying out the large weight for such shapes (a 2x2-input transposed conv with 8.4 M
  weights: ~50 ms forward + backward in fp32 on one core, ~20 ms as a GEMM); larger images
  keep the framework's convolution, which is faster there. Under autocast the transposed
  one sums its overlapping patches and adds its bias in fp32, rounding once, as oneDNN does.
* ``BatchStatsInstanceNorm2d``: instance norm of one image computed by the batch-norm kernel
  it calls anyway, minus a reshape that turns channels-last activations back into NCHW.
* ``AutocastPad``: reflection/replication padding keep the input's dtype under autocast.
  CPU autocast runs these pads in fp32, so each ResNet block converted its bf16 activations
  to fp32 and back around every pad; padding copies values, so the result is identical.

Measured per layer in docs/benchmarks.md; ``scripts/benchmark.py`` switches them with
``--conv_impl native``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# A convolution runs as a GEMM when batch x (columns of its GEMM per image) is at most this:
# output pixels for a convolution, input pixels for a transposed one. Measured crossover on
# AVX-512 cores, fp32 and bf16, batch 1 and 4: oneDNN wins from about 256 columns on.
GEMM_MAX_COLUMNS = 128
# A transposed convolution with at most this many output values per input pixel
# (C_out x kh x kw, e.g. the U-Net's last layer, 3 x 4 x 4) runs as a GEMM at any size:
# oneDNN is slow with so few output channels (128->3 at 128x128: 36 ms vs 22 ms in fp32).
GEMM_MAX_TRANSPOSED_OUTPUTS = 64


def _plain(module: nn.Module) -> bool:
    return module.groups == 1 and module.padding_mode == "zeros" and not isinstance(module.padding, str)


def _fold_in_fp32(cols: torch.Tensor, bias, fold) -> torch.Tensor:
    """``fold(cols) + bias`` summed in (at least) fp32 and rounded once to ``cols``' dtype.

    Under autocast the GEMM gives bf16/fp16 columns. oneDNN's transposed convolution adds
    the overlapping patches and the bias in fp32 and rounds once; ``F.fold`` in bf16 would
    round at every addition: 25 % more error (tests/test_speed_paths.py,
    test_gemm_conv_transpose_sums_bf16_in_fp32).
    """
    wide = torch.promote_types(cols.dtype, torch.float32)
    with torch.autocast(cols.device.type, enabled=False):
        out = fold(cols.to(wide))
        if bias is not None:
            out = out + bias.to(wide).view(1, -1, 1, 1)
    return out.to(cols.dtype)


class _StandardLayoutWeight:
    """Mixin: the weight stays in the standard (contiguous) layout when the network moves to
    channels-last. A GEMM reads it as a matrix; a channels-last weight would be copied into
    that order at every call (26 ms per forward for a 1024x512x4x4 bf16 weight), while
    oneDNN's convolution re-lays out either layout alike."""

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        if not self.weight.is_contiguous():
            self.weight.data = self.weight.data.contiguous()
        return self


class GemmConv2d(_StandardLayoutWeight, nn.Conv2d):
    """``nn.Conv2d`` computed as ``weight @ unfold(x)`` when the output has few pixels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or not _plain(self):
            return super().forward(x)
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if n * ho * wo > GEMM_MAX_COLUMNS or ho < 1 or wo < 1:
            return super().forward(x)
        cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
        out = (self.weight.reshape(self.out_channels, -1) @ cols).reshape(n, self.out_channels, ho, wo)
        return out if self.bias is None else out + self.bias.to(out.dtype).view(1, -1, 1, 1)


class GemmConvTranspose2d(_StandardLayoutWeight, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` computed as ``fold(weight^T @ x)`` when the input has few pixels
    or the output few channels."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if output_size is not None or x.dim() != 4 or not _plain(self):
            return super().forward(x, output_size)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        if n * h * w > GEMM_MAX_COLUMNS and self.out_channels * kh * kw > GEMM_MAX_TRANSPOSED_OUTPUTS:
            return super().forward(x, output_size)
        oph, opw = self.output_padding
        ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
        wo = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
        cols = self.weight.reshape(c, -1).t() @ x.reshape(n, c, h * w)  # N x (C_out*kh*kw) x HW
        return _fold_in_fp32(cols, self.bias, lambda t: F.fold(
            t, (ho, wo), (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw)))


class BatchStatsInstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` of a single image as the batch norm it is: the same statistics
    (per channel, over H x W) and the same kernel, without instance norm's reshape, which
    copies a channels-last input to NCHW (and so undoes ``--channels_last`` after every
    norm layer of a ResNet generator). Other batch sizes take the usual path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[0] != 1 or self.track_running_stats:
            return super().forward(x)
        return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)


class AutocastPad(nn.Module):
    """Mixin: run the pad outside autocast, so a bf16/fp16 input stays in its dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x)


class AutocastReflectionPad2d(AutocastPad, nn.ReflectionPad2d):
    pass


class AutocastReplicationPad2d(AutocastPad, nn.ReplicationPad2d):
    pass


# exact class -> faster subclass with the same parameters and state_dict.
_GEMM_LAYERS = {nn.Conv2d: GemmConv2d, nn.ConvTranspose2d: GemmConvTranspose2d}
_PAD_LAYERS = {nn.ReflectionPad2d: AutocastReflectionPad2d, nn.ReplicationPad2d: AutocastReplicationPad2d}
_NORM_LAYERS = {nn.InstanceNorm2d: BatchStatsInstanceNorm2d}


def use_fast_layers(net: nn.Module, gemm_convs: bool = True, autocast_pads: bool = True,
                    instance_norms: bool = True) -> nn.Module:
    """Swap layer classes of ``net`` in place (see the module docstring); returns ``net``."""
    table = {**(_GEMM_LAYERS if gemm_convs else {}), **(_PAD_LAYERS if autocast_pads else {}),
             **(_NORM_LAYERS if instance_norms else {})}
    for module in net.modules():
        faster = table.get(type(module))
        if faster is not None:
            module.__class__ = faster
    return net


__all__ = ["GEMM_MAX_COLUMNS", "GEMM_MAX_TRANSPOSED_OUTPUTS", "GemmConv2d", "GemmConvTranspose2d",
           "AutocastReflectionPad2d", "AutocastReplicationPad2d", "BatchStatsInstanceNorm2d", "use_fast_layers"]
