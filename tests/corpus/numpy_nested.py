import numpy as np


def sigmoid(x):
    return np.exp(-np.logaddexp(0, -x))


class GRUCell:
    def __init__(self, input_size, hidden_size):
        k = np.sqrt(1 / hidden_size)
        self.W_ir, self.W_iz, self.W_in = (np.random.uniform(-k, k, (hidden_size, input_size)) for _ in range(3))
        self.W_hr, self.W_hz, self.W_hn = (np.random.uniform(-k, k, (hidden_size, hidden_size)) for _ in range(3))
        self.b_ir, self.b_iz, self.b_in = (np.random.uniform(-k, k, hidden_size) for _ in range(3))
        self.b_hr, self.b_hz, self.b_hn = (np.random.uniform(-k, k, hidden_size) for _ in range(3))

    def forward(self, x, h):
        # PyTorch's equations, with x: (batch, input_size)
        r = sigmoid(x @ self.W_ir.T + self.b_ir + h @ self.W_hr.T + self.b_hr)
        z = sigmoid(x @ self.W_iz.T + self.b_iz + h @ self.W_hz.T + self.b_hz)
        n = np.tanh(x @ self.W_in.T + self.b_in + r * (h @ self.W_hn.T + self.b_hn))
        return (1 - z) * n + z * h


class Encoder:
    """Runs the cell over a time-major sequence and returns (outputs, last state)."""

    def __init__(self, input_size, hidden_size):
        self.cell = GRUCell(input_size, hidden_size)

    def forward(self, inputs, h0):
        states = []
        h = h0
        for x in inputs:
            h = self.cell.forward(x, h)
            states.append(h)
        return np.stack(states), h
