"""Models are plugins: one file each, registered by name.

To add a model, write ``models/<name>_model.py`` with a ``BaseModel`` subclass decorated
by ``@MODELS.register("<name>")`` (``from models.registry import MODELS``) and add one import
line below. The class fills in:

- ``modify_commandline_options(parser, is_train)``: its own flags and default changes;
- ``__init__(opt)``: the four name lists (``loss_names``, ``visual_names``,
  ``model_names``, ``optimizers``) and its networks ``net<Name>``;
- ``set_input(data)``, ``forward()`` and ``optimize_parameters()``;
- for translate.py, export.py and ``pix2cycle.Translator``, only where the defaults of
  ``BaseModel`` do not fit: ``inference_generator``, ``build_generator``,
  ``generator_channels`` and ``colour_space`` (see ``models/inference.py``).

``template_model.py`` is a short, working example. A class outside this folder can be
used as ``--model package.module.ClassName``.
"""

from models.registry import MODELS

# One import line per model plugin: importing registers it.
# ruff: noqa: I001
from models import pix2pix_model  # noqa: E402,F401
from models import pix2pix3d_model  # noqa: E402,F401
from models import cycle_gan_model  # noqa: E402,F401
from models import test_model  # noqa: E402,F401
from models import template_model  # noqa: E402,F401
from models import colorization_model  # noqa: E402,F401
from models import cut_model  # noqa: E402,F401
from models import pix2pixhd_model  # noqa: E402,F401
from models import spade_model  # noqa: E402,F401
from models import bicycle_gan_model  # noqa: E402,F401
from models import stargan_v2_model  # noqa: E402,F401


def find_model_using_name(model_name: str):
    """The model class registered as ``model_name`` (the reference's function name)."""
    return MODELS.get(model_name)


def generator_reader() -> str:
    """The registered plugin that reads the generator of any run (``reads_any_run``): the
    doors use it for weights without a train_opt.json (the reference's ``--model test``)."""
    return next(name for name, cls in MODELS.items() if getattr(cls, "reads_any_run", False))


def reads_any_run(model_name: str) -> bool:
    """Whether ``--model model_name`` reads the generator of another model's run."""
    return bool(getattr(MODELS.get(model_name), "reads_any_run", False))


def create_model(opt):
    """Build the model named by ``opt.model`` from the options."""
    return MODELS.get(opt.model)(opt)
