"""A NumPy GRU cell that "remembers" its state on `self` so the caller need not pass it: after
the first call it ignores `h_prev` and continues from `self.h`. The same input gives different
outputs on every call and one sequence leaks into the next (of the same batch size).

Expected categories: stale-hidden-state
"""
import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class RememberingGRU:
    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(hidden_size)
        for gate in ("z", "r", "n"):
            setattr(self, f"W_{gate}", rng.uniform(-k, k, (input_size, hidden_size)))
            setattr(self, f"U_{gate}", rng.uniform(-k, k, (hidden_size, hidden_size)))
            setattr(self, f"b_{gate}", rng.uniform(-k, k, hidden_size))
        self.h = None

    def forward(self, x, h_prev):
        # x: (batch, input_size), h_prev: (batch, hidden_size)
        if self.h is None or self.h.shape != h_prev.shape:
            self.h = h_prev
        h = self.h  # BUG: the state stored by the previous call wins over h_prev
        z = sigmoid(x @ self.W_z + h @ self.U_z + self.b_z)
        r = sigmoid(x @ self.W_r + h @ self.U_r + self.b_r)
        n = np.tanh(x @ self.W_n + (r * h) @ self.U_n + self.b_n)
        self.h = (1.0 - z) * n + z * h
        return self.h


if __name__ == "__main__":
    cell = RememberingGRU(5, 7)
    x, h0 = np.ones((3, 5)), np.zeros((3, 7))
    print(np.abs(cell.forward(x, h0) - cell.forward(x, h0)).max())  # not 0
