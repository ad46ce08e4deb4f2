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
