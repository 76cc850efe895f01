"""A NumPy GRU cell in column layout (features, batch): W @ x, fused weights over the three
gates (r|z|n, reset-after, like PyTorch) and a state that is carried by the caller.

Expected categories: none
"""
import numpy as np


class ColumnGRU:
    def __init__(self, n_in, n_hidden):
        rng = np.random.default_rng(42)
        k = 1 / np.sqrt(n_hidden)
        self.W = rng.uniform(-k, k, (3 * n_hidden, n_in))
        self.U = rng.uniform(-k, k, (3 * n_hidden, n_hidden))
        self.b = rng.uniform(-k, k, (3 * n_hidden, 1))
        self.b_rec = rng.uniform(-k, k, (3 * n_hidden, 1))
        self.n_hidden = n_hidden

    def forward(self, x, h):
        H = self.n_hidden
        gx = self.W @ x + self.b
        gh = self.U @ h + self.b_rec
        r = 1 / (1 + np.exp(-(gx[:H] + gh[:H])))
        z = 1 / (1 + np.exp(-(gx[H:2 * H] + gh[H:2 * H])))
        n = np.tanh(gx[2 * H:] + r * gh[2 * H:])
        return (1 - z) * n + z * h


if __name__ == "__main__":
    cell = ColumnGRU(5, 7)
    h = np.zeros((7, 3))
    for _ in range(4):
        h = cell.forward(np.random.default_rng(0).normal(size=(5, 3)), h)
    print(h.shape)
