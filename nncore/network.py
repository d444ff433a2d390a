"""A network is a sequence of layers built from an explicit layer list, plus softmax loss.

Tensors are named by position, ``"3.W"`` or ``"4.running_mean"``, so depth is data: nothing is
numbered by hand. Weight decay applies to every parameter with ndim >= 2 (affine weights and
conv filters), never to biases or BatchNorm, in both the loss and the gradient.

``Network.activation_stats`` is the lecture's per-layer histogram (ch. 6, weight init and
BatchNorm): each hidden layer's eval-mode output on a probe batch, as mean, std and counts.
"""
import numpy as np

from . import layers as L
from .backend import FlatTensors, get_xp, to_numpy
from .rng import rng_from_arrays, rng_to_arrays
from .spec import expand_model, infer_shapes, parse_layers

HISTOGRAM_BINS = 30
# Outputs bounded by the function itself get that range, so epochs and inits compare bin for
# bin; any other layer's histogram spans its output's min..max on the probe batch.
FIXED_RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
# A constant output (e.g. a dead ReLU layer) still gets bins: this far either side of it.
CONSTANT_HALF_WIDTH = 0.5


def _finite_range(flat: np.ndarray) -> tuple[float, float]:
    """min..max of the finite values. NaN or inf (an eval-mode pass that overflowed) would
    make ``np.histogram`` raise and end the job; they fall outside the bins instead, and the
    mean and std stored for them are null. All non-finite: the bins sit around zero."""
    low, high = float(flat.min()), float(flat.max())
    if np.isfinite(low) and np.isfinite(high):
        return low, high
    kept = flat[np.isfinite(flat)]
    return (float(kept.min()), float(kept.max())) if kept.size else (0.0, 0.0)


def output_statistics(values, kind: str, bins: int = HISTOGRAM_BINS) -> dict:
    """Mean, std and histogram of one layer's output (any shape), all elements pooled.

    Sums stay in the output's dtype (NumPy sums pairwise, so float32 keeps about 7 digits and
    a conv layer's millions of values cost a third of a float64 pass); ``edges`` has
    ``len(counts) + 1`` values.
    """
    flat = np.asarray(values).ravel()                          # (N * features,)
    low, high = FIXED_RANGES.get(kind) or _finite_range(flat)
    if high <= low:
        low, high = low - CONSTANT_HALF_WIDTH, high + CONSTANT_HALF_WIDTH
    counts, edges = np.histogram(flat, bins=bins, range=(low, high))
    return {"mean": float(flat.mean()), "std": float(flat.std()),
            "edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def pass_order(layers) -> list[int]:
    """Layer indices in the order a pass runs them: a ReLU right before a max pool runs after
    it. Max commutes with ReLU, and the gradient reaches the same input (a window's first
    maximum, zeroed where it is not positive), so every value and gradient is the same bits;
    the ReLU just sees a quarter of the values (it was a tenth of simple_convnet's step)."""
    order = list(range(len(layers)))
    for i in range(len(layers) - 1):
        if type(layers[i]) is L.ReLU and type(layers[i + 1]) is L.MaxPool2D:
            order[i], order[i + 1] = i + 1, i
    return order


class Network:
    """Layers in order, the loss on top, and name -> array views of their state."""

    def __init__(self, layers_spec, input_shape, num_classes, *, seed=0, dtype="float32",
                 weight_decay=0.0, backend="numpy"):
        self.xp = get_xp(backend)
        self.backend = backend
        self.dtype = np.dtype(dtype)
        self.layers_spec = layers_spec
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.weight_decay = float(weight_decay)
        init_seed, dropout_seed = np.random.SeedSequence(seed).spawn(2)
        init_rng = np.random.Generator(np.random.PCG64(init_seed))
        dropout_rng = np.random.Generator(np.random.PCG64(dropout_seed))
        specs = parse_layers(layers_spec)
        ctx = L.BuildContext(self.xp, self.dtype, init_rng, dropout_rng)
        self.layers = [spec.build(shape, ctx)
                       for spec, shape in zip(specs, infer_shapes(specs, self.input_shape))]
        self._dropout_rng = dropout_rng
        self.loss_layer = L.SoftmaxCrossEntropy(self.xp)
        self.params = self._flat_params()
        self.buffers = self._collect("buffers")
        self.decayed = [name for name, p in self.params.items() if p.ndim >= 2]
        self.grads = FlatTensors.like(self.params)
        self._owners = [(name, layer, key) for name, (layer, key) in self._slots().items()]
        for name, layer, key in self._owners:
            layer.grads[key] = self.grads[name]
        self.pass_order = pass_order(self.layers)
        trainable = [i for i, layer in enumerate(self.layers) if layer.params]
        # nothing below the first trainable layer learns: backward stops there, without its dx
        self._first_trainable = trainable[0] if trainable else len(self.layers)
        if trainable:
            self.layers[self._first_trainable].needs_input_grad = False
        self.last_loss: float | None = None

    def _collect(self, attr):
        return {f"{i}.{key}": value for i, layer in enumerate(self.layers)
                for key, value in getattr(layer, attr).items()}

    def _slots(self) -> dict:
        """Tensor name -> (layer, key) of every parameter."""
        return {f"{i}.{key}": (layer, key) for i, layer in enumerate(self.layers)
                for key in layer.params}

    def _flat_params(self) -> FlatTensors:
        """Every parameter moved into one contiguous array (the layers keep views of it), so
        an optimizer step is a few whole-array operations instead of a few per tensor."""
        built = self._collect("params")
        flat = FlatTensors({name: p.shape for name, p in built.items()}, self.xp, self.dtype)
        for name, (layer, key) in self._slots().items():
            flat[name][...] = built[name]
            layer.params[key] = flat[name]
        return flat

    def _forward(self, x, train):
        for i in self.pass_order:
            x = self.layers[i].forward(x, train=train)
        return x

    def _as_input(self, x):
        return self.xp.asarray(x, dtype=self.dtype)

    def _decay_loss(self):
        if not self.weight_decay:
            return 0.0
        return 0.5 * self.weight_decay * sum(float((self.params[n] ** 2).sum()) for n in self.decayed)

    def loss(self, x, t, *, train=True) -> float:
        """Mean cross-entropy plus 0.5 * weight_decay * sum of squared weights."""
        scores = self._forward(self._as_input(x), train)
        return self.loss_layer.forward(scores, self.xp.asarray(t)) + self._decay_loss()

    def gradient(self, x, t) -> dict:
        """Gradients of ``loss(x, t, train=True)``: one forward and one backward pass.

        The loss of that forward pass is kept in ``last_loss``, so training never runs it twice.
        The dict returned is the network's own gradient buffer (``grads``), overwritten by the
        next call: copy what must outlive it.
        """
        scores = self._forward(self._as_input(x), True)
        self.last_loss = self.loss_layer.forward(scores, self.xp.asarray(t)) + self._decay_loss()
        self.last_scores = scores
        dout = self.loss_layer.backward()
        for i in reversed(self.pass_order):
            if i < self._first_trainable:  # a swapped pair is never split by it: no params
                break
            dout = self.layers[i].backward(dout)
        for name, layer, key in self._owners:  # a layer that made its own array: copy it in
            if layer.grads[key] is not self.grads[name]:
                self.grads[name][...] = layer.grads[key]
                layer.grads[key] = self.grads[name]
        for name in self.decayed if self.weight_decay else ():
            self.grads[name] += self.weight_decay * self.params[name]
        return self.grads

    def predict(self, x):
        """Eval-mode scores (logits): BatchNorm uses running statistics, Dropout is off."""
        return self._forward(self._as_input(x), False)

    def predict_proba(self, x):
        """Eval-mode class probabilities."""
        return L.softmax(self.predict(x), self.xp)

    def hidden_layers(self) -> int:
        """How many layers come before the logits layer (the last one with weights): what
        ``activation_stats`` covers. A Dropout after the logits (deep_convnet) is not hidden."""
        weighted = [i for i, layer in enumerate(self.layers) if "W" in layer.params]
        return weighted[-1] if weighted else len(self.layers) - 1

    def activation_stats(self, x, bins: int = HISTOGRAM_BINS) -> list[dict]:
        """Eval-mode output statistics of every layer before the logits layer, on ``x``.

        One dict per layer: ``layer`` (its index), ``name`` ("2 relu"), ``type`` and
        ``output_statistics``. Eval mode changes no state (no running-statistics update, no
        dropout draw), so calling it between epochs leaves training bit for bit the same.
        """
        out = self._as_input(x)                                # (N, *input_shape)
        stats = []
        hidden = self.hidden_layers()
        for index, (layer, spec) in enumerate(zip(self.layers[:hidden], self.layers_spec)):
            out = layer.forward(out, train=False)              # (N, *layer output shape)
            kind = spec["type"]
            stats.append({"layer": index, "name": f"{index} {kind}", "type": kind,
                          **output_statistics(to_numpy(out), kind, bins)})
        return stats

    def accuracy(self, x, t, batch_size=1000) -> float:
        """Eval-mode accuracy, in batches to bound memory; t holds class ids or one-hot rows."""
        t = np.asarray(t)
        labels = t.argmax(axis=1) if t.ndim == 2 else t
        correct = 0
        for i in range(0, len(labels), batch_size):
            pred = to_numpy(self.predict(x[i:i + batch_size]).argmax(axis=1))
            correct += int((pred == labels[i:i + batch_size]).sum())
        return correct / max(len(labels), 1)

    def tensor_roles(self) -> dict[str, str]:
        return {**{n: "param" for n in self.params}, **{n: "buffer" for n in self.buffers}}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers (running statistics included) as host arrays."""
        return {name: to_numpy(a).copy() for name, a in {**self.params, **self.buffers}.items()}

    def load_state_dict(self, state: dict) -> None:
        """Copy values in place, so optimizers and layers keep their references."""
        tensors = {**self.params, **self.buffers}
        missing, unexpected = set(tensors) - set(state), set(state) - set(tensors)
        if missing or unexpected:
            raise KeyError(f"state does not match the network: missing {sorted(missing)}, "
                           f"unexpected {sorted(unexpected)}")
        for name, target in tensors.items():
            value = state[name]
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"{name}: shape {tuple(value.shape)} != {tuple(target.shape)}")
            target[...] = self.xp.asarray(value, dtype=target.dtype)

    def rng_state(self) -> dict[str, np.ndarray]:
        """The dropout generator's state, for checkpoints."""
        return rng_to_arrays(self._dropout_rng)

    def set_rng_state(self, state: dict) -> None:
        restored = rng_from_arrays(state)
        self._dropout_rng.bit_generator.state = restored.bit_generator.state


def build(model_spec, input_shape, num_classes, *, seed=0, dtype="float32", weight_decay=0.0,
          backend="numpy") -> Network:
    """A network from a preset or layer-list spec; same spec and seed give the same weights."""
    layers_spec = expand_model(model_spec, input_shape, num_classes)
    return Network(layers_spec, input_shape, num_classes, seed=seed, dtype=dtype,
                   weight_decay=weight_decay, backend=backend)
