"""Use a trained generator anywhere: any image, any size, no dataset layout.

    from pix2cycle import Translator

    t = Translator.from_checkpoint("checkpoints/horse2zebra")   # reads train_opt.json there
    zebra = t(Image.open("horse.jpg"))                          # PIL in, PIL out, same size
    t = Translator.from_pretrained("horse2zebra_package")       # export.py --format hub, or a Hub id

``Translator`` is a facade over ``models`` (the generator and its weights, built exactly
as ``test.py`` builds them), ``data`` (image reading) and ``util``. ``translate.py``,
``export.py`` and ``app.py`` (the demo page) at the top of the repository are its
command-line front ends; ``hub.py`` and ``model_card.py`` write and read model packages.
"""

from pix2cycle.tiling import tile_starts, translate_tiled
from pix2cycle.translator import Translator

__all__ = ["Translator", "translate_tiled", "tile_starts"]
