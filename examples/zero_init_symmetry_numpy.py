"""A NumPy GRU cell whose weights and biases all start at zero "to be safe".

Every hidden unit computes the same pre-activation, so all units have the same state and get
the same gradient: they stay copies of one another and the cell has the capacity of one unit.

Expected categories: zero-init-symmetry
"""
import numpy as np


class ZeroInitGRU:
    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        # BUG: zeros everywhere. Zero biases are fine; zero weights are not.
        self.Wz = np.zeros((hidden_size, input_size))
        self.Uz = np.zeros((hidden_size, hidden_size))
        self.bz = np.zeros((hidden_size, 1))
        self.Wr = np.zeros((hidden_size, input_size))
        self.Ur = np.zeros((hidden_size, hidden_size))
        self.br = np.zeros((hidden_size, 1))
        self.Wh = np.zeros((hidden_size, input_size))
        self.Uh = np.zeros((hidden_size, hidden_size))
        self.bh = np.zeros((hidden_size, 1))

    def sigmoid(self, a):
        return np.exp(-np.logaddexp(0.0, -a))

    def forward(self, x, h_prev):
        """x: (input_size, batch), h_prev: (hidden_size, batch)."""
        z = self.sigmoid(self.Wz @ x + self.Uz @ h_prev + self.bz)
        r = self.sigmoid(self.Wr @ x + self.Ur @ h_prev + self.br)
        h_tilde = np.tanh(self.Wh @ x + self.Uh @ (r * h_prev) + self.bh)
        return (1 - z) * h_prev + z * h_tilde


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    cell = ZeroInitGRU(5, 7)
    h = np.zeros((7, 3))
    for _ in range(4):
        h = cell.forward(rng.normal(size=(5, 3)), h)
    print(h.round(3))  # every row (unit) is the same
