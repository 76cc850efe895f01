"""A NumPy GRU cell that "initialises" its state inside forward, overwriting the h_prev it was
given with zeros. Every step starts from scratch: the output depends on the current input only,
and the recurrent weights have no effect.

Expected categories: ignored-recurrence
"""
import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class GRUCell:
    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(hidden_size)
        self.hidden_size = hidden_size
        self.W = rng.uniform(-k, k, (3 * hidden_size, input_size))
        self.U = rng.uniform(-k, k, (3 * hidden_size, hidden_size))
        self.b = rng.uniform(-k, k, 3 * hidden_size)

    def forward(self, x, h_prev):
        # x: (batch, input_size), h_prev: (batch, hidden_size)
        H = self.hidden_size
        h_prev = np.zeros((x.shape[0], H))  # BUG: discards the state passed in
        gx, gh = x @ self.W.T + self.b, h_prev @ self.U.T
        r = sigmoid(gx[:, :H] + gh[:, :H])
        z = sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1.0 - z) * n + z * h_prev


if __name__ == "__main__":
    cell = GRUCell(5, 7)
    print(cell.forward(np.ones((3, 5)), np.ones((3, 7))).shape)
