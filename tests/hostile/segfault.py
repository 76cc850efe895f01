import ctypes

import numpy as np


class NativeCell:
    """Calls into 'native code' with a null pointer."""

    def __init__(self, input_size, hidden_size):
        self.W = np.full((input_size, hidden_size), 0.1)
        self.U = np.eye(hidden_size) * 0.5

    def forward(self, x, h_prev):
        ctypes.string_at(0)
        return np.tanh(x @ self.W + h_prev @ self.U)
