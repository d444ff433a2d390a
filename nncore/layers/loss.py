"""Softmax with cross-entropy, numerically stable, integer or one-hot labels."""


def softmax(x, xp):
    z = x - x.max(axis=1, keepdims=True)
    e = xp.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SoftmaxCrossEntropy:
    def __init__(self, xp):
        self.xp = xp

    def forward(self, scores, t):
        """Mean cross-entropy over the batch; t is (N,) class ids or (N, K) one-hot."""
        xp = self.xp
        n = scores.shape[0]
        labels = t.argmax(axis=1) if t.ndim == 2 else t
        z = scores - scores.max(axis=1, keepdims=True)
        logsum = xp.log(xp.exp(z).sum(axis=1, keepdims=True))
        logp = z - logsum  # (N, K), log-softmax without overflow
        self._p = xp.exp(logp)
        self._labels = labels
        return -float(logp[xp.arange(n), labels].sum()) / n

    def backward(self):
        n = self._p.shape[0]
        dx = self._p.copy()
        dx[self.xp.arange(n), self._labels] -= 1
        dx /= n
        return dx
