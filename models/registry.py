"""``MODELS``: the model registry, in a file of its own so plugins can register without
importing ``models/__init__.py`` (which imports them: that would be an import loop).

A plugin registers with ``@MODELS.register("<name>")`` from ``models.registry``;
``models/__init__.py`` imports each plugin module once so its decorator runs.
"""

from util.registry import Registry

MODELS = Registry("model", dotted=True)
