"""Networks for pix2pix and CycleGAN, laid out exactly like the reference implementation.

- ``layers``: normalization table, weight initialization, loading reference weights.
- ``generators``: ``GENERATORS`` table and ``define_G``.
- ``discriminators``: ``DISCRIMINATORS`` table and ``define_D``.
- ``volumetric``: their 3-D forms and sliding-window inference, for pix2pix3d.

To add a network, write the module in the matching file and add one entry to its table;
``--netG`` / ``--netD`` and the parametrized tests (tests/test_networks.py) see it at once.
"""

from .attention import ATTENTION_MODES, use_attention
from .discriminators import (
    DISCRIMINATORS,
    DiscriminatorSpec,
    MultiscaleDiscriminator,
    NLayerDiscriminator,
    PixelDiscriminator,
    define_D,
    discriminator_min_size,
)
from .generators import (
    GENERATORS,
    UPSAMPLE_MODES,
    GeneratorSpec,
    ResnetBlock,
    ResnetGenerator,
    UnetGenerator,
    UnetSkipConnectionBlock,
    define_G,
    generator_from_options,
    generator_min_size,
    generator_size_multiple,
)
from .layers import (
    INIT_TYPES,
    NORM_LAYERS,
    SPECTRAL_NORM_PLACEMENTS,
    NormLayer,
    clean_state_dict,
    conv_bias,
    get_norm_layer,
    init_weights,
    load_network_weights,
    per_image_batch_norm,
    spectral_norm_convs,
    spectral_norm_inner_convs,
    spectral_norm_placement,
)

__all__ = [
    "ATTENTION_MODES", "use_attention",
    "DISCRIMINATORS", "DiscriminatorSpec", "MultiscaleDiscriminator", "NLayerDiscriminator", "PixelDiscriminator",
    "define_D", "discriminator_min_size",
    "GENERATORS", "UPSAMPLE_MODES", "GeneratorSpec", "ResnetBlock", "ResnetGenerator", "UnetGenerator",
    "UnetSkipConnectionBlock", "define_G", "generator_from_options", "generator_min_size", "generator_size_multiple",
    "INIT_TYPES", "NORM_LAYERS", "NormLayer", "clean_state_dict", "conv_bias", "get_norm_layer",
    "init_weights", "load_network_weights", "per_image_batch_norm",
    "SPECTRAL_NORM_PLACEMENTS", "spectral_norm_convs", "spectral_norm_inner_convs", "spectral_norm_placement",
]
