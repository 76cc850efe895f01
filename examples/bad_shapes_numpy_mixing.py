"""A NumPy GRU cell that computes its gates in column form, (hidden, batch), and turns them back
into (batch, hidden) with `reshape` instead of `.T`. The shapes fit, so `z * h_prev` broadcasts
happily, but each row of z now holds numbers from several samples: samples leak into each other.

Expected categories: bad-shapes
"""
import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class GRUCell:
    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(hidden_size)
        self.W = rng.uniform(-k, k, (3 * hidden_size, input_size))
        self.U = rng.uniform(-k, k, (3 * hidden_size, hidden_size))
        self.b = rng.uniform(-k, k, (3 * hidden_size, 1))

    def forward(self, x, h_prev):
        # x: (batch, input_size), h_prev: (batch, hidden_size)
        B, H = h_prev.shape
        gx = self.W @ x.T + self.b  # (3H, B)
        gh = self.U @ h_prev.T      # (3H, B)
        r = sigmoid(gx[:H] + gh[:H]).reshape(B, H)            # BUG: must be .T
        z = sigmoid(gx[H:2 * H] + gh[H:2 * H]).reshape(B, H)  # BUG: must be .T
        n = np.tanh(gx[2 * H:] + (r * gh[2 * H:].T).T).T  # correct transposes here
        return (1.0 - z) * n + z * h_prev


if __name__ == "__main__":
    cell = GRUCell(5, 7)
    print(cell.forward(np.ones((3, 5)), np.zeros((3, 7))).shape)
