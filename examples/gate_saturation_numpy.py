"""A NumPy GRU cell (row layout, Keras-style x @ W) with weights drawn from N(0, 1) * 10.

Every sigmoid is 0 or 1 and every tanh is +-1 on ordinary inputs, so the gates are pinned and
their derivatives vanish: gradient descent cannot move them.

Expected categories: gate-saturation
"""
import numpy as np


def sigmoid(a):
    return np.exp(-np.logaddexp(0.0, -a))


class SaturatedGRU:
    def __init__(self, input_size, hidden_size):
        rng = np.random.default_rng(1)
        H = hidden_size
        # BUG: standard normal times 10; use U(-1/sqrt(H), 1/sqrt(H)) or Glorot instead
        self.kernel = rng.normal(size=(input_size, 3 * H)) * 10
        self.recurrent_kernel = rng.normal(size=(H, 3 * H)) * 10
        self.bias = np.zeros(3 * H)
        self.units = H

    def forward(self, x, h_prev):
        """x: (batch, input_size), h_prev: (batch, hidden_size)."""
        H = self.units
        gx = x @ self.kernel + self.bias
        gh = h_prev @ self.recurrent_kernel
        z = sigmoid(gx[:, :H] + gh[:, :H])
        r = sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        hh = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        return z * h_prev + (1 - z) * hh


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    cell = SaturatedGRU(5, 7)
    h = np.zeros((3, 7))
    for _ in range(4):
        h = cell.forward(rng.normal(size=(3, 5)), h)
    print(h.round(3))
