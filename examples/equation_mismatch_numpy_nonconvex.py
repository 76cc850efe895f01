"""A NumPy GRU cell (row layout, split weights, reset-before) whose update writes
z * h_prev + z * h_tilde: a typo for z * h_prev + (1 - z) * h_tilde. The new state is no
longer a convex blend of the old state and the candidate, so it is not bounded by them.

Expected categories: equation-mismatch
"""
import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class GRUCell:
    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        s = 1.0 / np.sqrt(hidden_size)
        self.Wz, self.Wr, self.Wh = (rng.uniform(-s, s, (input_size, hidden_size)) for _ in range(3))
        self.Uz, self.Ur, self.Uh = (rng.uniform(-s, s, (hidden_size, hidden_size)) for _ in range(3))
        self.bz, self.br, self.bh = (rng.uniform(-s, s, hidden_size) for _ in range(3))

    def forward(self, x, h_prev):
        z = sigmoid(x @ self.Wz + h_prev @ self.Uz + self.bz)
        r = sigmoid(x @ self.Wr + h_prev @ self.Ur + self.br)
        h_tilde = np.tanh(x @ self.Wh + (r * h_prev) @ self.Uh + self.bh)
        return z * h_prev + z * h_tilde  # BUG: the candidate's weight must be (1 - z)


if __name__ == "__main__":
    cell = GRUCell(5, 7)
    h = np.zeros((3, 7))
    for _ in range(4):
        h = cell.forward(np.random.default_rng(1).normal(size=(3, 5)), h)
    print(h.shape)
