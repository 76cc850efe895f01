"""A NumPy GRU cell in row layout (batch, features) with split weights Wz/Uz/bz... and a
correct hand-written backward(dh) that returns gradients for every parameter, x and h_prev.
This one uses the other update form, h' = (1 - z) * h + z * h_tilde (Chung et al. 2014).

Expected categories: none
"""
import numpy as np


def sigmoid(a):
    return np.where(a >= 0, 1 / (1 + np.exp(-np.abs(a))), np.exp(-np.abs(a)) / (1 + np.exp(-np.abs(a))))


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
        dz = dh * (h_tilde - h_prev)
        dh_tilde = dh * z
        dh_prev = dh * (1 - z)
        da_h = dh_tilde * (1 - h_tilde ** 2)
        d_rh = da_h @ self.Uh.T
        dr = d_rh * h_prev
        dh_prev += d_rh * r
        da_z = dz * z * (1 - z)
        da_r = dr * r * (1 - r)
        dh_prev += da_z @ self.Uz.T + da_r @ self.Ur.T
        dx = da_z @ self.Wz.T + da_r @ self.Wr.T + da_h @ self.Wh.T
        return {
            "Wz": x.T @ da_z, "Uz": h_prev.T @ da_z, "bz": da_z.sum(0),
            "Wr": x.T @ da_r, "Ur": h_prev.T @ da_r, "br": da_r.sum(0),
            "Wh": x.T @ da_h, "Uh": (r * h_prev).T @ da_h, "bh": da_h.sum(0),
            "x": dx, "h_prev": dh_prev,
        }


if __name__ == "__main__":
    cell = GRUCell(5, 7)
    h = cell.forward(np.ones((3, 5)), np.zeros((3, 7)))
    print(sorted(cell.backward(np.ones_like(h))))
