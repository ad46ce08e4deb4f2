"""Networks outside the tree, selected by dotted path (--netG / --netD package.module.Class)."""

from torch import nn


class TinyGenerator(nn.Module):
    size_multiple = 4

    def __init__(self, input_nc, output_nc, ngf, norm_layer, use_dropout):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(input_nc, ngf, 3, padding=1), norm_layer(ngf), nn.ReLU(),
                                 nn.Conv2d(ngf, output_nc, 3, padding=1), nn.Tanh())

    def forward(self, x):
        return self.net(x)


class TinyDiscriminator(nn.Module):
    min_size = 4

    def __init__(self, input_nc, ndf, n_layers, norm_layer):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(ndf, 1, 3, padding=1))

    def forward(self, x):
        return self.net(x)


from models.pix2pix_model import Pix2PixModel  # noqa: E402


class FirstBatchPix2Pix(Pix2PixModel):
    """pix2pix plus a layer sized by the first batch (as CUT sizes its patch MLPs), with an
    optimizer of its own: built in data_dependent_initialize, trained, saved and resumed."""

    def data_dependent_initialize(self, data):
        self.first_batch_shape = tuple(data["A"].shape)
        width = data["A"].shape[-1]
        self.netF = self.build_network(nn.Linear(width, 2))
        self.model_names.append("F")
        self.optimizer_F = self.make_adam(self.netF.parameters())
        self.optimizers.append(self.optimizer_F)

    def optimize_parameters(self):
        super().optimize_parameters()
        self.update(self.optimizer_F, self.netF(self.real_A).square().mean())
