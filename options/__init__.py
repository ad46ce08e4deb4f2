"""Command-line options.

``parse_options(argv, is_train)`` builds the parser in three layers: the base flags, the
train or test flags, then the flags and defaults of the chosen model and dataset mode
(their ``modify_commandline_options``). It has no side effects: no folders, no devices,
no printing. ``train.py`` and ``test.py`` do that.

To add a flag that every model needs, add it to ``base_options.py``; a flag that only one
model needs belongs in that model's ``modify_commandline_options``.
"""

from options.base_options import parse_options
from util.saved_options import format_options, load_saved_options, save_options

__all__ = ["parse_options", "format_options", "save_options", "load_saved_options"]
