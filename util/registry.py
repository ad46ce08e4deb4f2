"""One small name -> object registry for every table of choices.

Models, dataset modes, generators, discriminators, norms, GAN objectives, learning-rate
policies, display back ends and metrics are each a ``Registry``. A plugin registers with a
decorator, a table entry with ``add``::

    from models.registry import MODELS

    @MODELS.register("my_model")
    class MyModel(BaseModel):
        ...

    NORM_LAYERS.add("group", group_norm_factory)

Command-line choices and help texts come from ``names()``; an unknown name is a
``UserError`` listing them. Where the table allows it (``dotted=True``), a name that is not
registered can be a dotted path (``my_package.my_module.MyThing``): the module is imported
and the object returned, passed through ``adapt`` to become an entry of the table (e.g. a
generator class into the spec ``define_G`` reads).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from util.errors import UserError


class Registry:
    """Maps names to objects (classes, factories, specs), in registration order."""

    def __init__(self, kind: str, dotted: bool = False,
                 adapt: Optional[Callable[[Any], Any]] = None, hint: str = "") -> None:
        self.kind = kind  # "model", "dataset mode", ...: used in error messages
        self.dotted = dotted
        self.hint = hint  # appended to the unknown-name error, e.g. " (or 'none')"
        self.adapt = adapt
        self._items: Dict[str, Any] = {}

    def add(self, name: str, obj: Any) -> Any:
        """Register ``obj`` as ``name``; a second, different object under one name is refused."""
        if name in self._items and self._items[name] is not obj:
            owner = getattr(self._items[name], "__module__", type(self._items[name]).__name__)
            raise ValueError(f"{self.kind} '{name}' is already registered by {owner}")
        self._items[name] = obj
        if isinstance(obj, type):
            obj.registered_name = name
        return obj

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator form of ``add``."""
        return lambda obj: self.add(name, obj)

    def get(self, name: str) -> Any:
        if name in self._items:
            return self._items[name]
        if self.dotted and "." in name:  # a plugin outside the tree: "package.module.Name"
            module_name, _, attr = name.rpartition(".")
            try:
                obj = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as e:
                raise UserError(f"cannot load {self.kind} '{name}': {e}") from e
            return self.adapt(obj) if self.adapt is not None else obj
        hint = " (or a dotted path package.module.Name)" if self.dotted else self.hint
        raise UserError(f"unknown {self.kind} '{name}'; available: {', '.join(self.names())}{hint}")

    __getitem__ = get

    def names(self) -> list:
        """The registered names, sorted (for help texts, choices and errors)."""
        return sorted(self._items)

    def items(self) -> Iterator[Tuple[str, Any]]:
        return iter(self._items.items())

    def values(self) -> Iterator[Any]:
        return iter(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
