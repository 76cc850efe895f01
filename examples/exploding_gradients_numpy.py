"""A NumPy GRU cell (column layout, Chung/Andrew Ng update h = (1 - z) * h_prev + z * h_tilde)
that forgets the (1 - z) factor on the previous state: h = h_prev + z * h_tilde. The state
now accumulates instead of blending, the one-step Jacobian I + ... has its top singular value
above 1 at every step, and the gradient through time grows by ~6 % per step (x6 over 30 steps,
without bound on longer sequences).

Expected categories: exploding-gradients, equation-mismatch
"""
import numpy as np


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


class GRUCell:
    """Column layout: x is (input_size, batch), h is (hidden_size, batch)."""

    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        s = 1 / np.sqrt(hidden_size)
        self.params = {}
        for g in "zrh":
            self.params[f"W{g}"] = rng.uniform(-s, s, (hidden_size, input_size))
            self.params[f"U{g}"] = rng.uniform(-s, s, (hidden_size, hidden_size))
            self.params[f"b{g}"] = rng.uniform(-s, s, (hidden_size, 1))

    def forward(self, x, h_prev):
        p = self.params
        z = sigmoid(p["Wz"] @ x + p["Uz"] @ h_prev + p["bz"])
        r = sigmoid(p["Wr"] @ x + p["Ur"] @ h_prev + p["br"])
        h_tilde = np.tanh(p["Wh"] @ x + p["Uh"] @ (r * h_prev) + p["bh"])
        return h_prev + z * h_tilde                  # BUG: should be (1 - z) * h_prev + z * h_tilde


if __name__ == "__main__":
    cell = GRUCell(5, 7)
    h = np.zeros((7, 3))
    for x in np.random.default_rng(1).normal(size=(30, 5, 3)):
        h = cell.forward(x, h)
    print(np.abs(h).max())
