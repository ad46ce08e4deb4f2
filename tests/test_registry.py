"""The plugin registry."""

import pytest
import torch

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
    with pytest.raises(UserError, match="unknown model .cyclegan.; available: (.*, )?colorization, cut, cycle_gan, pix2pix"):
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


def test_every_table_is_a_registry():
    import export
    from data.base_dataset import PREPROCESS_MODES
    from data.intensity import INTENSITY_MODES
    from evaluation.metrics import LPIPS_BACKBONES, METRICS
    from evaluation.results import SAVE_DTYPES
    from models.cut_model import CUT_MODES
    from models.losses import GAN_MODES, GP_POINTS
    from models.networks import DISCRIMINATORS, GENERATORS, INIT_TYPES, NORM_LAYERS
    from models.networks.generators import PADDINGS
    from models.networks.volumetric import NORM_LAYERS_3D
    from models.schedulers import SCHEDULERS
    from pix2cycle.tiling import RAMPS
    from reporting.display import BACKENDS

    for table in (MODELS, DATASETS, GENERATORS, DISCRIMINATORS, NORM_LAYERS, INIT_TYPES, GAN_MODES, SCHEDULERS,
                  BACKENDS, METRICS, PREPROCESS_MODES, INTENSITY_MODES, SAVE_DTYPES, RAMPS, LPIPS_BACKBONES,
                  export.EXPORTERS, CUT_MODES, GP_POINTS, PADDINGS, NORM_LAYERS_3D):
        assert isinstance(table, Registry) and len(table) > 0
        with pytest.raises(UserError, match=f"unknown {table.kind} 'nope'; available: "):
            table.get("nope")


def test_outside_networks_by_dotted_path_train_and_test(aligned_dataroot, tmp_path):
    import test as test_script
    import train as train_script
    from tests.helpers import tiny_args

    nets = ["--netG", "tests.outside_plugins.TinyGenerator", "--netD", "tests.outside_plugins.TinyDiscriminator"]
    args = tiny_args("pix2pix", aligned_dataroot, tmp_path, "outside", *nets, "--n_epochs", "1",
                     "--n_epochs_decay", "0", "--max_dataset_size", "2", "--load_size", "36", "--crop_size", "32")
    assert train_script.main(args) == 0
    weights = torch.load(tmp_path / "outside" / "latest_net_G.pth", weights_only=True)
    assert list(weights) == ["net.0.weight", "net.0.bias", "net.1.weight", "net.1.bias", "net.1.running_mean",
                             "net.1.running_var", "net.1.num_batches_tracked", "net.3.weight", "net.3.bias"]
    assert test_script.main(["--dataroot", str(aligned_dataroot), "--name", "outside", "--model", "pix2pix",
                             "--checkpoints_dir", str(tmp_path), "--results_dir", str(tmp_path / "r"),
                             "--gpu_ids", "-1", "--num_threads", "0", "--metrics", "none",
                             *nets[:2]]) == 0  # a saved run's plugin is named again (tests/test_trust.py)
    assert (tmp_path / "r" / "outside" / "test_latest" / "index.html").is_file()
    with pytest.raises(UserError, match="cannot load generator 'tests.outside_plugins.Nope'"):
        from models.networks import define_G

        define_G(3, 3, 8, "tests.outside_plugins.Nope")


def test_a_plugin_builds_part_of_itself_from_the_first_batch(aligned_dataroot, tmp_path, capsys):
    import train as train_script
    from engine import Hook
    from tests.helpers import tiny_args

    seen = {}

    class Look(Hook):
        def before_train(self, trainer):
            seen["shape"] = trainer.model.first_batch_shape
            seen["schedulers"] = len(trainer.model.schedulers)

    args = tiny_args("pix2pix", aligned_dataroot, tmp_path, "first", "--model", "tests.outside_plugins.FirstBatchPix2Pix",
                     "--n_epochs", "1", "--n_epochs_decay", "1", "--max_dataset_size", "2", "--batch_size", "2")
    assert train_script.main(args, hooks=[Look()]) == 0
    assert seen == {"shape": (2, 3, 128, 128), "schedulers": 3}  # G, D and the one built on the batch
    state = torch.load(tmp_path / "first" / "latest_checkpoint.pth", weights_only=True)
    assert set(state["model"]["networks"]) == {"G", "D", "F"} and len(state["model"]["optimizers"]) == 3
    assert (tmp_path / "first" / "latest_net_F.pth").is_file()
    capsys.readouterr()
    assert train_script.main(args[:-2] + ["--n_epochs_decay", "2", "--continue_train"]) == 0  # resumes netF too
    assert "resuming from" in capsys.readouterr().out
