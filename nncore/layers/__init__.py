"""nncore's layers: each with forward(x, *, train), backward(dout), params, grads, buffers,
and a ``LayerSpec`` that registers its type in ``LAYERS``."""
from .activations import ACTIVATIONS, ReLU, Sigmoid, Tanh
from .base import LAYERS, BuildContext, Layer, LayerSpec
from .batchnorm import BatchNorm
from .conv import Conv2D, MaxPool2D, col2im, im2col
from .dense import Affine, Flatten
from .dropout import Dropout
from .loss import SoftmaxCrossEntropy, softmax

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "Affine",
    "BatchNorm",
    "BuildContext",
    "Conv2D",
    "Dropout",
    "Flatten",
    "Layer",
    "LayerSpec",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "Tanh",
    "col2im",
    "im2col",
    "softmax",
]
