"""A NumPy GRU cell that squeezes its inputs "to accept a single sample too". For a batch of
one, `np.squeeze` drops the batch axis, so the cell returns a (hidden,) vector instead of a
(1, hidden) state and the caller's next step or stacking breaks.

Expected categories: bad-shapes
"""
import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class GRUCell:
    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(hidden_size)
        for gate in ("z", "r", "n"):
            setattr(self, f"W_{gate}", rng.uniform(-k, k, (input_size, hidden_size)))
            setattr(self, f"U_{gate}", rng.uniform(-k, k, (hidden_size, hidden_size)))
            setattr(self, f"b_{gate}", rng.uniform(-k, k, hidden_size))

    def forward(self, x, h_prev):
        # x: (batch, input_size), h_prev: (batch, hidden_size)
        x, h_prev = np.squeeze(x), np.squeeze(h_prev)  # BUG: (1, n) -> (n,) for a batch of one
        z = sigmoid(x @ self.W_z + h_prev @ self.U_z + self.b_z)
        r = sigmoid(x @ self.W_r + h_prev @ self.U_r + self.b_r)
        n = np.tanh(x @ self.W_n + (r * h_prev) @ self.U_n + self.b_n)
        return (1.0 - z) * n + z * h_prev


if __name__ == "__main__":
    cell = GRUCell(5, 7)
    print(cell.forward(np.ones((3, 5)), np.zeros((3, 7))).shape)
    print(cell.forward(np.ones((1, 5)), np.zeros((1, 7))).shape)  # (7,), not (1, 7)
