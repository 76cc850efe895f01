"""A NumPy GRU cell (row layout, Cho-style update h = (1 - z) * h_prev + z * h_tilde) with a
bad initialisation: weights drawn as randn * 0.01 (as in a popular blog post) and the
update-gate bias set to +6 "so the cell updates quickly". z is pinned near 1, so the state is
replaced at every step through tiny recurrent weights: the gradient through time dies by ~100x
per step.

Expected categories: vanishing-gradients, gate-saturation
"""
import numpy as np


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


class GRUCell:
    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        self.Wz = rng.standard_normal((input_size, hidden_size)) * 0.01
        self.Uz = rng.standard_normal((hidden_size, hidden_size)) * 0.01
        self.bz = np.full(hidden_size, 6.0)          # BUG: update gate saturated at 1
        self.Wr = rng.standard_normal((input_size, hidden_size)) * 0.01
        self.Ur = rng.standard_normal((hidden_size, hidden_size)) * 0.01
        self.br = np.zeros(hidden_size)
        self.Wh = rng.standard_normal((input_size, hidden_size)) * 0.01
        self.Uh = rng.standard_normal((hidden_size, hidden_size)) * 0.01  # BUG: far too small
        self.bh = np.zeros(hidden_size)

    def forward(self, x, h_prev):
        z = sigmoid(x @ self.Wz + h_prev @ self.Uz + self.bz)
        r = sigmoid(x @ self.Wr + h_prev @ self.Ur + self.br)
        h_tilde = np.tanh(x @ self.Wh + (r * h_prev) @ self.Uh + self.bh)
        return (1 - z) * h_prev + z * h_tilde


if __name__ == "__main__":
    cell = GRUCell(5, 7)
    h = np.zeros((3, 7))
    for x in np.random.default_rng(1).normal(size=(30, 3, 5)):
        h = cell.forward(x, h)
    print(np.abs(h).max())
