"""The layer protocol every nncore layer follows."""


class Layer:
    """``forward(x, *, train)`` caches what ``backward(dout) -> dx`` needs.

    ``params`` and ``grads`` share keys; ``buffers`` hold non-trainable state (BatchNorm's running
    statistics) that is saved with the model. Every layer takes ``train``, so no caller ever asks a
    layer what it is. ``backward`` never writes into ``dout``.
    """

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.buffers: dict = {}

    def forward(self, x, *, train: bool):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError
