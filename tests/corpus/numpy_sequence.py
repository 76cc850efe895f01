# GRU layer that eats a whole sequence at once.
# X has shape (seq_len, batch, input_size); forward returns the list of hidden states, h0 first.
import math

import numpy as np


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


class GRULayer:
    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        scale = 1 / math.sqrt(hidden_size)
        self.W = {g: np.random.randn(input_size, hidden_size) * scale for g in "zrn"}
        self.U = {g: np.random.randn(hidden_size, hidden_size) * scale for g in "zrn"}
        self.b = {g: np.random.randn(hidden_size) * 0.1 for g in "zrn"}

    def forward(self, X, h0):
        h = h0
        hs = [h0]
        for x_t in X:
            z = sigmoid(x_t @ self.W["z"] + h @ self.U["z"] + self.b["z"])
            r = sigmoid(x_t @ self.W["r"] + h @ self.U["r"] + self.b["r"])
            n = np.tanh(x_t @ self.W["n"] + (r * h) @ self.U["n"] + self.b["n"])
            h = (1 - z) * h + z * n
            hs.append(h)
        return hs
