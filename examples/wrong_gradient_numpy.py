"""A NumPy GRU cell (row layout, Cho-style update h = (1 - z) * h_prev + z * h_tilde) whose
hand-written backward forgets a chain-rule factor: the update gate's gradient uses only the
sigmoid derivative, dz = dh * z * (1 - z), and drops dh/dz = h_tilde - h_prev (the mistake of
the "simplified" backward in a popular blog post). The forward pass is correct.

Expected categories: wrong-gradient
"""
import numpy as np


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


class GRUCell:
    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        s = 1 / np.sqrt(hidden_size)
        for g in "zrh":
            setattr(self, f"W{g}", rng.uniform(-s, s, (input_size, hidden_size)))
            setattr(self, f"U{g}", rng.uniform(-s, s, (hidden_size, hidden_size)))
            setattr(self, f"b{g}", rng.uniform(-s, s, hidden_size))
        self.cache = None

    def forward(self, x, h_prev):
        z = sigmoid(x @ self.Wz + h_prev @ self.Uz + self.bz)
        r = sigmoid(x @ self.Wr + h_prev @ self.Ur + self.br)
        h_tilde = np.tanh(x @ self.Wh + (r * h_prev) @ self.Uh + self.bh)
        h = (1 - z) * h_prev + z * h_tilde
        self.cache = (x, h_prev, z, r, h_tilde)
        return h

    def backward(self, dh):
        x, h_prev, z, r, h_tilde = self.cache
        da_z = dh * z * (1 - z)              # BUG: should be dh * (h_tilde - h_prev) * z * (1 - z)
        da_h = dh * z * (1 - h_tilde ** 2)
        d_rh = da_h @ self.Uh.T
        da_r = d_rh * h_prev * r * (1 - r)
        dh_prev = dh * (1 - z) + d_rh * r + da_z @ self.Uz.T + da_r @ self.Ur.T
        dx = da_z @ self.Wz.T + da_r @ self.Wr.T + da_h @ self.Wh.T
        return {
            "dWz": x.T @ da_z, "dUz": h_prev.T @ da_z, "dbz": da_z.sum(0),
            "dWr": x.T @ da_r, "dUr": h_prev.T @ da_r, "dbr": da_r.sum(0),
            "dWh": x.T @ da_h, "dUh": (r * h_prev).T @ da_h, "dbh": da_h.sum(0),
            "dx": dx, "dh_prev": dh_prev,
        }


if __name__ == "__main__":
    cell = GRUCell(5, 7)
    h = cell.forward(np.random.default_rng(1).normal(size=(3, 5)), np.zeros((3, 7)))
    grads = cell.backward(np.ones_like(h))
    print({k: v.shape for k, v in grads.items()})
