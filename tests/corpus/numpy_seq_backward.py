"""Whole-sequence GRU with backprop through time.

X is batch-first, (batch, time, features). forward returns (all hidden states, last state);
backward(dH) takes dL/dh_t for every step, (batch, time, hidden).
Weights are packed per gate along the last axis: [z | r | n].
"""
import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class BatchFirstGRU:
    def __init__(self, input_dim, hidden_dim, seed=0):
        rng = np.random.default_rng(seed)
        self.H = hidden_dim
        self.Wx = rng.normal(0, 0.3, (input_dim, 3 * hidden_dim))
        self.Wh = rng.normal(0, 0.3, (hidden_dim, 3 * hidden_dim))
        self.b = rng.normal(0, 0.1, 3 * hidden_dim)

    def forward(self, X, h0):
        B, T, _ = X.shape
        H = self.H
        h = h0
        self._steps = []
        outs = np.zeros((B, T, H))
        for t in range(T):
            x = X[:, t]
            a = x @ self.Wx[:, :2 * H] + h @ self.Wh[:, :2 * H] + self.b[:2 * H]
            z, r = sigmoid(a[:, :H]), sigmoid(a[:, H:])
            n = np.tanh(x @ self.Wx[:, 2 * H:] + (r * h) @ self.Wh[:, 2 * H:] + self.b[2 * H:])
            self._steps.append((x, h, z, r, n))
            h = (1 - z) * h + z * n
            outs[:, t] = h
        return outs, h

    def backward(self, dH):
        H = self.H
        B, T, _ = dH.shape
        dWx, dWh, db = np.zeros_like(self.Wx), np.zeros_like(self.Wh), np.zeros_like(self.b)
        dX = np.zeros((B, T, self.Wx.shape[0]))
        dh_next = np.zeros((B, H))
        for t in reversed(range(T)):
            x, h, z, r, n = self._steps[t]
            dh = dH[:, t] + dh_next
            dz = dh * (n - h)
            dn = dh * z
            dh_prev = dh * (1 - z)

            dan = dn * (1 - n ** 2)
            dWx[:, 2 * H:] += x.T @ dan
            dWh[:, 2 * H:] += (r * h).T @ dan
            db[2 * H:] += dan.sum(axis=0)
            drh = dan @ self.Wh[:, 2 * H:].T
            dh_prev += drh * r
            dx = dan @ self.Wx[:, 2 * H:].T

            da = np.concatenate([dz * z * (1 - z), drh * h * r * (1 - r)], axis=1)
            dWx[:, :2 * H] += x.T @ da
            dWh[:, :2 * H] += h.T @ da
            db[:2 * H] += da.sum(axis=0)
            dx += da @ self.Wx[:, :2 * H].T
            dh_prev += da @ self.Wh[:, :2 * H].T

            dX[:, t] = dx
            dh_next = dh_prev
        return {"dWx": dWx, "dWh": dWh, "db": db, "dX": dX, "dh0": dh_next}
