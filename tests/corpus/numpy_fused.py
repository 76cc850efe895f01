"""Fused-weight GRU: one matrix for everything.

W has shape (input_size + hidden_size, 3 * hidden_size); its column blocks are
[update | reset | candidate]. The candidate block sees [x, r * h] instead of [x, h].
"""
import numpy as np


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))  # same as 1/(1+exp(-x)), without overflow


class FusedGRUCell:
    def __init__(self, input_size: int, hidden_size: int):
        self.hidden_size = hidden_size
        fan_in = input_size + hidden_size
        self.W = np.random.randn(fan_in, 3 * hidden_size) / np.sqrt(fan_in)
        self.b = np.zeros(3 * hidden_size)
        self.b[:hidden_size] = -1.0  # z multiplies the candidate: start by mostly keeping h

    def forward(self, x, h):
        H = self.hidden_size
        xh = np.concatenate([x, h], axis=-1)
        gates = sigmoid(xh @ self.W[:, :2 * H] + self.b[:2 * H])
        z, r = gates[..., :H], gates[..., H:]
        xrh = np.concatenate([x, r * h], axis=-1)
        n = np.tanh(xrh @ self.W[:, 2 * H:] + self.b[2 * H:])
        return (1 - z) * h + z * n
