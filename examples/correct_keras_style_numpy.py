"""A NumPy GRU cell laid out like Keras (reset_after=True): row vectors, x @ kernel, the
kernel's columns in z|r|h order, an input bias and a recurrent bias.

Expected categories: none
"""
import numpy as np


def sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # stable for any a


class KerasLikeGRUCell:
    def __init__(self, input_dim, units, seed=0):
        rng = np.random.default_rng(seed)
        limit = np.sqrt(6.0 / (input_dim + 3 * units))
        self.kernel = rng.uniform(-limit, limit, (input_dim, 3 * units))
        q, _ = np.linalg.qr(rng.normal(size=(3 * units, units)))
        self.recurrent_kernel = q.T.copy()  # orthogonal rows, like Keras's default
        self.input_bias = rng.uniform(-0.1, 0.1, 3 * units)
        self.recurrent_bias = rng.uniform(-0.1, 0.1, 3 * units)
        self.units = units

    def forward(self, x, h_prev):
        u = self.units
        xk = x @ self.kernel + self.input_bias
        hk = h_prev @ self.recurrent_kernel + self.recurrent_bias
        z = sigmoid(xk[:, :u] + hk[:, :u])
        r = sigmoid(xk[:, u:2 * u] + hk[:, u:2 * u])
        hh = np.tanh(xk[:, 2 * u:] + r * hk[:, 2 * u:])
        return z * h_prev + (1 - z) * hh


if __name__ == "__main__":
    cell = KerasLikeGRUCell(5, 7)
    h = np.zeros((3, 7))
    for _ in range(4):
        h = cell.forward(np.random.default_rng(1).normal(size=(3, 5)), h)
    print(h.shape)
