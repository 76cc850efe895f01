import numpy as np


class GRU:
    """Column-vector GRU (Cho et al. 2014).

    x: (input_dim, batch)   h: (hidden_dim, batch)
    """

    def __init__(self, input_dim, hidden_dim):
        std = 1.0 / np.sqrt(hidden_dim)
        self.W_z = np.random.randn(hidden_dim, input_dim) * std
        self.U_z = np.random.randn(hidden_dim, hidden_dim) * std
        self.b_z = np.zeros((hidden_dim, 1))

        self.W_r = np.random.randn(hidden_dim, input_dim) * std
        self.U_r = np.random.randn(hidden_dim, hidden_dim) * std
        self.b_r = np.zeros((hidden_dim, 1))

        self.W_h = np.random.randn(hidden_dim, input_dim) * std
        self.U_h = np.random.randn(hidden_dim, hidden_dim) * std
        self.b_h = np.zeros((hidden_dim, 1))

    def sigmoid(self, a):
        return 1.0 / (1.0 + np.exp(-a))

    def forward(self, x, h_prev):
        z = self.sigmoid(np.dot(self.W_z, x) + np.dot(self.U_z, h_prev) + self.b_z)
        r = self.sigmoid(np.dot(self.W_r, x) + np.dot(self.U_r, h_prev) + self.b_r)
        h_tilde = np.tanh(np.dot(self.W_h, x) + np.dot(self.U_h, r * h_prev) + self.b_h)
        # z close to 1 keeps the old state
        h_new = z * h_prev + (1 - z) * h_tilde
        return h_new
