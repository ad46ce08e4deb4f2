"""datasets/make_maps_labels.py: palette quantisation, instance components, the written layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import SHARED_DATASETS, load_script

labels_script = load_script("make_maps_labels")


def test_quantise_gives_each_flat_colour_its_class_and_the_rest_dontcare():
    classes = labels_script.CLASSES
    rendering = np.zeros((12, 12, 3), dtype=np.uint8)
    rendering[:, :] = (236, 232, 222)  # background
    rendering[:, 4:6] = (253, 253, 253)  # a road
    rendering[0:4, 8:12] = (181, 208, 247)  # water
    rendering[8:12, 8:12] = (255, 0, 0)  # no palette colour: dontcare
    labels = labels_script.quantise(rendering)
    assert labels[6, 1] == classes.index("background")
    assert labels[6, 4] == classes.index("road")
    assert labels[1, 10] == classes.index("water")
    assert labels[10, 10] == labels_script.DONTCARE


def test_instances_are_connected_components_of_object_classes():
    building = labels_script.CLASSES.index("building")
    road = labels_script.CLASSES.index("road")
    labels = np.zeros((20, 20), dtype=np.uint8)
    labels[0:5, 0:5] = building
    labels[10:15, 10:15] = building  # a second block, not touching the first
    labels[:, 7] = road  # stuff: one segment
    labels[18, 18] = building  # one pixel: under MIN_COMPONENT
    inst = labels_script.instances(labels)
    base = building * labels_script.INSTANCE_BASE
    assert inst[2, 2] == base + 1 and inst[12, 12] == base + 2
    assert inst[18, 18] == base
    assert set(np.unique(inst[:, 7])) == {road * labels_script.INSTANCE_BASE}


@pytest.mark.skipif(not (SHARED_DATASETS / "maps" / "train").is_dir(), reason="needs ../shared/datasets/maps")
def test_real_tiles_give_the_label_layout(tmp_path):
    assert labels_script.main(["--dataroot", str(SHARED_DATASETS / "maps"), "--out", str(tmp_path),
                               "--limit", "2", "--size", "64"]) == 0
    for phase in ("train", "test"):
        names = sorted(p.stem for p in (tmp_path / f"{phase}_img").iterdir())
        assert len(names) == 2
        for name in names:
            label = np.asarray(Image.open(tmp_path / f"{phase}_label" / f"{name}.png"))
            inst = np.asarray(Image.open(tmp_path / f"{phase}_inst" / f"{name}.png"))
            assert label.shape == inst.shape == (64, 64)
            assert label.max() <= labels_script.DONTCARE
            # Every instance id lies inside its class.
            np.testing.assert_array_equal(inst // labels_script.INSTANCE_BASE, label)
    # Real renderings are mostly palette colours: dontcare stays a small share.
    label = np.asarray(Image.open(tmp_path / "train_label" / f"{names[0]}.png"))
    assert (label == labels_script.DONTCARE).mean() < 0.2
