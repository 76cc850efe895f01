"""A NumPy GRU cell whose sigmoid is written as exp(a) / (1 + exp(a)), straight from the formula.

For a pre-activation above 709.78 (float64; 88.72 in float32) np.exp overflows to inf and
inf / inf is NaN, so unnormalised inputs (prices, counts, raw pixels) turn the state into NaN.

Expected categories: numerical-instability
"""
import numpy as np


def sigmoid(a):
    return np.exp(a) / (1 + np.exp(a))  # BUG: inf / inf = nan for large a


class FormulaGRU:
    def __init__(self, input_size, hidden_size):
        rng = np.random.default_rng(7)
        k = 1 / np.sqrt(hidden_size)
        H, D = hidden_size, input_size
        self.W_z, self.U_z, self.b_z = rng.uniform(-k, k, (H, D)), rng.uniform(-k, k, (H, H)), rng.uniform(-k, k, H)
        self.W_r, self.U_r, self.b_r = rng.uniform(-k, k, (H, D)), rng.uniform(-k, k, (H, H)), rng.uniform(-k, k, H)
        self.W_h, self.U_h, self.b_h = rng.uniform(-k, k, (H, D)), rng.uniform(-k, k, (H, H)), rng.uniform(-k, k, H)

    def forward(self, x, h_prev):
        """x: (batch, input_size), h_prev: (batch, hidden_size)."""
        z = sigmoid(x @ self.W_z.T + h_prev @ self.U_z.T + self.b_z)
        r = sigmoid(x @ self.W_r.T + h_prev @ self.U_r.T + self.b_r)
        h_hat = np.tanh(x @ self.W_h.T + (r * h_prev) @ self.U_h.T + self.b_h)
        return (1 - z) * h_hat + z * h_prev


if __name__ == "__main__":
    cell = FormulaGRU(5, 7)
    h = np.zeros((3, 7))
    prices = np.random.default_rng(0).normal(size=(3, 5)) * 5000  # unnormalised features
    print(cell.forward(prices, h))  # NaN
