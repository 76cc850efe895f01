import numpy as np


class UninitialisedCell:
    def __init__(self, input_size, hidden_size):
        self.W = np.full((input_size, hidden_size), np.nan)  # 'filled in by load_weights()'
        self.U = np.eye(hidden_size) * 0.5
        self.b = np.zeros(hidden_size)

    def forward(self, x, h_prev):
        return np.tanh(x @ self.W + h_prev @ self.U + self.b)
