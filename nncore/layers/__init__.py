"""nncore's layers: each with forward(x, *, train), backward(dout), params, grads, buffers."""
from .activations import ReLU, Sigmoid, Tanh
from .base import Layer
from .batchnorm import BatchNorm
from .conv import Conv2D, MaxPool2D, col2im, im2col
from .dense import Affine, Flatten
from .dropout import Dropout
from .loss import SoftmaxCrossEntropy, softmax

__all__ = [
    "Affine", "BatchNorm", "Conv2D", "Dropout", "Flatten", "Layer", "MaxPool2D", "ReLU",
    "Sigmoid", "SoftmaxCrossEntropy", "Tanh", "col2im", "im2col", "softmax",
]
