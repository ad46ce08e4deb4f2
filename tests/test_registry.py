"""The plugin registry."""

import pytest

from data import DATASETS
from models import MODELS, create_model
from util.errors import UserError
from util.registry import Registry


def test_register_and_get():
    reg = Registry("widget")

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A and "a" in reg and list(reg) == ["a"] and A.registered_name == "a"


def test_duplicate_name_is_refused():
    reg = Registry("widget")
    reg.register("a")(type("A", (), {}))
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(type("B", (), {}))


def test_unknown_name_lists_choices():
    with pytest.raises(UserError, match="unknown model 'cyclegan'; available: cycle_gan, pix2pix"):
        MODELS.get("cyclegan")
    with pytest.raises(UserError, match="unknown dataset mode"):
        DATASETS.get("pairs")


def test_dotted_path_loads_a_class_outside_the_tree():
    assert MODELS.get("models.pix2pix_model.Pix2PixModel") is MODELS.get("pix2pix")
    with pytest.raises(UserError, match="cannot load model"):
        MODELS.get("no_such_package.Model")


def test_builtin_plugins_are_registered():
    assert {"pix2pix", "cycle_gan", "test", "template"} <= set(MODELS.names())
    assert {"aligned", "unaligned", "single", "template"} <= set(DATASETS.names())
    assert callable(create_model)
