"""A GRU cell in plain NumPy, batch-first rows: x is (batch, input_size)."""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class GRUCell:
    def __init__(self, input_size, hidden_size):
        self.input_size = input_size
        self.hidden_size = hidden_size
        k = 1.0 / np.sqrt(hidden_size)

        # update gate
        self.Wz = np.random.uniform(-k, k, (input_size, hidden_size))
        self.Uz = np.random.uniform(-k, k, (hidden_size, hidden_size))
        self.bz = np.zeros(hidden_size)
        # reset gate
        self.Wr = np.random.uniform(-k, k, (input_size, hidden_size))
        self.Ur = np.random.uniform(-k, k, (hidden_size, hidden_size))
        self.br = np.zeros(hidden_size)
        # candidate state
        self.Wh = np.random.uniform(-k, k, (input_size, hidden_size))
        self.Uh = np.random.uniform(-k, k, (hidden_size, hidden_size))
        self.bh = np.zeros(hidden_size)

    def forward(self, x, h_prev):
        z = sigmoid(x @ self.Wz + h_prev @ self.Uz + self.bz)
        r = sigmoid(x @ self.Wr + h_prev @ self.Ur + self.br)
        h_hat = np.tanh(x @ self.Wh + (r * h_prev) @ self.Uh + self.bh)
        return (1 - z) * h_prev + z * h_hat


if __name__ == "__main__":
    cell = GRUCell(4, 8)
    h = np.zeros((2, 8))
    for _ in range(5):
        h = cell.forward(np.random.randn(2, 4), h)
    print(h.shape)
