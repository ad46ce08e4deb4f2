"""A small name -> class registry used for models and dataset modes.

Register a plugin with a decorator::

    from models import MODELS

    @MODELS.register("my_model")
    class MyModel(BaseModel):
        ...

A name that is not registered can still be used when it is a dotted path
(``my_package.my_module.MyModel``): the module is imported and the class returned.
"""

from __future__ import annotations

import importlib
from typing import Callable, Dict, Iterator, Type

from util.errors import UserError


class Registry:
    """Maps names to classes; unknown names raise a ``UserError`` listing the valid ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "model", "dataset mode", ...: used in error messages
        self._items: Dict[str, Type] = {}

    def register(self, name: str) -> Callable[[Type], Type]:
        def decorator(cls: Type) -> Type:
            if name in self._items and self._items[name] is not cls:
                raise ValueError(f"{self.kind} '{name}' is already registered "
                                 f"by {self._items[name].__module__}")
            self._items[name] = cls
            cls.registered_name = name
            return cls
        return decorator

    def get(self, name: str) -> Type:
        if name in self._items:
            return self._items[name]
        if "." in name:  # a plugin outside the tree: "package.module.ClassName"
            module_name, _, attr = name.rpartition(".")
            try:
                module = importlib.import_module(module_name)
                return getattr(module, attr)
            except (ImportError, AttributeError) as e:
                raise UserError(f"cannot load {self.kind} '{name}': {e}") from e
        raise UserError(f"unknown {self.kind} '{name}'; available: {', '.join(self.names())} "
                        f"(or a dotted path package.module.Class)")

    def names(self) -> list:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
