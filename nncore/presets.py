"""The book's networks as presets: each declared once, as a model of its fields that expands
into an explicit layer list. Declaring a ``Preset`` subclass registers it in ``PRESETS``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .layers.activations import ACTIVATIONS
from .schema import Init, KernelSize, Padding, Positive, Rate, Strict, Width, literal_value

PRESETS: dict[str, type[Preset]] = {}

# The book's ch. 8 network: (filters, pad) of its six 3x3 convolutions, a pool after every pair.
DEEP_CONVNET_CONVS = ((16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1))
DEEP_CONVNET_KERNEL = 3
DEEP_CONVNET_HIDDEN = 50
POOL = 2


class Preset(Strict):
    """A named network; ``expand`` gives its layers up to the ``num_classes`` logits."""

    name: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        cls.name = literal_value(cls, "preset")
        PRESETS[cls.name] = cls

    def expand(self, num_classes: int) -> list[dict]:
        raise NotImplementedError


class MlpSpec(Preset):
    """The book's MultiLayerNetExtend: [affine, batchnorm?, activation, dropout?] per hidden
    layer, then the output affine."""

    preset: Literal["mlp"]
    hidden: list[Width] = Field(default_factory=lambda: [100, 100, 100], min_length=1)
    activation: Literal[ACTIVATIONS] = "relu"
    init: Init = "he"
    init_std: Positive = 0.01
    batchnorm: bool = False
    dropout: Rate = 0.0

    def expand(self, num_classes):
        dense = {"init": self.init, "init_std": self.init_std}
        layers = []
        for units in self.hidden:
            layers.append({"type": "affine", "units": units, **dense})
            if self.batchnorm:
                layers.append({"type": "batchnorm"})
            layers.append({"type": self.activation})
            if self.dropout > 0:
                layers.append({"type": "dropout", "rate": self.dropout})
        return [*layers, {"type": "affine", "units": num_classes, **dense}]


class SimpleConvnetSpec(Preset):
    """Chapter 7's conv - relu - pool - affine - relu - affine."""

    preset: Literal["simple_convnet"]
    filters: Width = 30
    size: KernelSize = 5
    stride: KernelSize = 1
    pad: Padding = 0
    pool: KernelSize = POOL
    hidden: Width = 100
    batchnorm: bool = False
    init: Init = "he"

    def expand(self, num_classes):
        bn = [{"type": "batchnorm"}] if self.batchnorm else []
        return [
            {"type": "conv", "filters": self.filters, "size": self.size, "stride": self.stride,
             "pad": self.pad, "init": self.init},
            *bn, {"type": "relu"}, {"type": "maxpool", "size": self.pool},
            {"type": "affine", "units": self.hidden, "init": self.init},
            *bn, {"type": "relu"},
            {"type": "affine", "units": num_classes, "init": self.init},
        ]


class DeepConvnetSpec(Preset):
    """Chapter 8's fixed six-conv network, Dropout after the hidden and the output affine as
    the book has them."""

    preset: Literal["deep_convnet"]
    dropout: Rate = 0.5
    batchnorm: bool = False

    def expand(self, num_classes):
        bn = [{"type": "batchnorm"}] if self.batchnorm else []
        drop = [{"type": "dropout", "rate": self.dropout}] if self.dropout > 0 else []
        layers = []
        for i, (filters, pad) in enumerate(DEEP_CONVNET_CONVS):
            layers += [{"type": "conv", "filters": filters, "size": DEEP_CONVNET_KERNEL,
                        "pad": pad}, *bn, {"type": "relu"}]
            if i % 2 == 1:
                layers.append({"type": "maxpool", "size": POOL})
        return [*layers, {"type": "affine", "units": DEEP_CONVNET_HIDDEN}, *bn, {"type": "relu"},
                *drop, {"type": "affine", "units": num_classes}, *drop]
