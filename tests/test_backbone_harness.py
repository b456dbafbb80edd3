"""Every builder in `kerassl.backbones.list_backbones()` through the backbone harness."""

import pytest

import kerassl
from tests.backbone_harness import run_backbone_test

# Tiny settings per registered builder; a new builder without an entry fails
# test_every_backbone_has_settings. The named ViT sizes fix their width and
# depth, so the larger two run only with the slow tests.
SETTINGS = {
    "resnet18": dict(kwargs={"width": 4}, variable_size=True),
    "resnet50": dict(kwargs={"width": 2}, variable_size=True),
    "small_convnet": dict(kwargs={"width": 4, "feature_dim": 8}, variable_size=True),
    "vit": dict(kwargs={"patch_size": 8, "hidden_dim": 8, "depth": 1, "num_heads": 2}),
    "vit_tiny": dict(kwargs={"patch_size": 8}),
    "vit_small": dict(kwargs={"patch_size": 8}, slow=True),
    "vit_base": dict(kwargs={"patch_size": 8}, slow=True),
}


def test_every_backbone_has_settings():
    assert sorted(SETTINGS) == kerassl.backbones.list_backbones()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.slow] if SETTINGS[name].get("slow") else [])
        for name in sorted(SETTINGS)
    ],
)
def test_backbone_contract(name, tmp_path):
    settings = SETTINGS[name]

    def build(input_shape):
        return kerassl.backbones.get(name, input_shape=input_shape, **settings["kwargs"])

    run_backbone_test(build, tmp_path, variable_size=settings.get("variable_size", False))


def test_vit_input_shape_and_its_aliases_agree():
    by_shape = kerassl.backbones.vit_tiny(input_shape=(16, 24, 1), patch_size=8)
    by_alias = kerassl.backbones.vit_tiny(image_size=(16, 24), channels=1, patch_size=8)
    assert by_shape.input_shape == by_alias.input_shape == (None, 16, 24, 1)
    with pytest.raises(ValueError, match="fixed height and width"):
        kerassl.backbones.vit_tiny(input_shape=(None, None, 3))
