"""The batch reading and losses that pix2pixHD and SPADE share, with their few differences as
class attributes.

Both judge (label map, image) pairs with a multi-scale D and train G with the GAN loss,
discriminator feature matching (``--lambda_feat``) and the VGG loss (``--lambda_vgg``). They
differ in how the scales and the D terms combine:

- pix2pixHD sums the scales' GAN losses and halves D's real + fake (NVIDIA/pix2pixHD
  models/networks.py ``GANLoss.__call__``; models/pix2pixHD_model.py ``loss_D_fake + loss_D_real``
  times 0.5 in train.py), feature matching weighted 1/num_D * 4/(n_layers_D + 1);
- SPADE averages the scales (NVlabs/SPADE models/networks/loss.py ``GANLoss.__call__``:
  ``loss / len(input)``) and sums D's terms, feature matching weighted 1/num_D.
"""

from __future__ import annotations

import torch

from models.label_maps import colour_labels, label_input, require_instances
from models.losses import feature_matching


class LabelGANLosses:
    """``backward_D`` / ``backward_G`` of a model with ``netD`` (multi-scale), ``label``,
    ``fake_B``, ``real_B``, ``criterionGAN`` and ``criterionVGG`` (None: off)."""

    average_scales = False  # SPADE: True
    d_loss_scale = 0.5  # SPADE: 1.0
    feat_weighting = "pix2pixhd"  # a models.losses.FEATURE_MATCHING_WEIGHTS name

    def set_label_input(self, input: dict, model: str, dontcare_255: bool = False) -> None:
        """``real_A`` (the label map, or the image with --label_nc 0), ``real_B`` (the photo, when
        the batch has one), ``inst``, G's input ``label``, the coloured map to look at, the paths.
        ``dontcare_255``: SPADE's datasets store dontcare as 255, which is class --label_nc."""
        opt = self.opt
        if not opt.no_instance:
            require_instances(input, model)
        self.inst = self.to_device(input["inst"]) if "inst" in input else None
        self.real_A = self.to_device(input["A"])
        if dontcare_255:
            self.real_A = self.real_A.masked_fill(self.real_A == 255, opt.label_nc)
        self.real_B = self.to_device(input["B"]) if "B" in input else None
        self.label = label_input(opt, self.real_A, self.inst)
        if opt.label_nc > 0:
            self.input_label = colour_labels(self.real_A)
        self.image_paths = input["A_paths"]

    def gan_loss(self, prediction, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        total = sum(self.criterionGAN(scale[-1].float(), target_is_real, for_discriminator) for scale in prediction)
        return total / len(prediction) if self.average_scales else total

    def backward_D(self) -> None:
        pred_fake = self.netD(torch.cat((self.label, self.fake_B.detach()), 1))
        pred_real = self.netD(torch.cat((self.label, self.real_B), 1))
        self.loss_D_fake = self.gan_loss(pred_fake, False)
        self.loss_D_real = self.gan_loss(pred_real, True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * self.d_loss_scale

    def extra_generator_loss(self):
        """A term of the model's own (SPADE's KL divergence); 0 by default."""
        return 0.0

    def backward_G(self) -> None:
        opt = self.opt
        pred_fake = self.netD(torch.cat((self.label, self.fake_B), 1))
        self.loss_G_GAN = self.gan_loss(pred_fake, True, for_discriminator=False)
        self.loss_G = self.loss_G_GAN + self.extra_generator_loss()
        if opt.lambda_feat > 0:
            with torch.no_grad():
                pred_real = self.netD(torch.cat((self.label, self.real_B), 1))
            self.loss_G_feat = feature_matching(pred_fake, pred_real, self.feat_weighting) * opt.lambda_feat
            self.loss_G = self.loss_G + self.loss_G_feat
        if self.criterionVGG is not None:
            self.loss_G_VGG = self.criterionVGG(self.fake_B, self.real_B)[0] * opt.lambda_vgg
            self.loss_G = self.loss_G + self.loss_G_VGG
