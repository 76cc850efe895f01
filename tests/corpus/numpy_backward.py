"""GRU cell with a hand-written backward pass.

Same equations as torch.nn.GRUCell, written with row vectors (x @ W):
    z  = sigmoid(x Wxz + h Whz + bz)
    r  = sigmoid(x Wxr + h Whr + br)
    n  = tanh(x Wxn + bxn + r * (h Whn + bhn))
    h' = (1 - z) * n + z * h
"""
import numpy as np


def sigmoid(v):
    # split by sign so that np.exp never overflows
    out = np.empty_like(v)
    pos = v >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-v[pos]))
    e = np.exp(v[~pos])
    out[~pos] = e / (1.0 + e)
    return out


class GRUCellWithGrad:
    def __init__(self, input_size=10, hidden_size=20, seed=0):
        rng = np.random.default_rng(seed)
        s = 1.0 / np.sqrt(hidden_size)

        def u(*shape):
            return rng.uniform(-s, s, size=shape)

        self.Wxz, self.Whz, self.bz = u(input_size, hidden_size), u(hidden_size, hidden_size), u(hidden_size)
        self.Wxr, self.Whr, self.br = u(input_size, hidden_size), u(hidden_size, hidden_size), u(hidden_size)
        self.Wxn, self.Whn = u(input_size, hidden_size), u(hidden_size, hidden_size)
        self.bxn, self.bhn = u(hidden_size), u(hidden_size)
        self.cache = None

    def forward(self, x, h_prev):
        z = sigmoid(x @ self.Wxz + h_prev @ self.Whz + self.bz)
        r = sigmoid(x @ self.Wxr + h_prev @ self.Whr + self.br)
        hn = h_prev @ self.Whn + self.bhn
        n = np.tanh(x @ self.Wxn + self.bxn + r * hn)
        h = (1 - z) * n + z * h_prev
        self.cache = (x, h_prev, z, r, hn, n)
        return h

    def backward(self, dh):
        """dh: dL/dh for the last forward. Returns dL/d(everything)."""
        x, h_prev, z, r, hn, n = self.cache
        dn = dh * (1 - z)
        dz = dh * (h_prev - n)
        dh_prev = dh * z

        da_n = dn * (1 - n ** 2)      # through tanh
        dr = da_n * hn
        dhn = da_n * r
        da_z = dz * z * (1 - z)       # through the sigmoids
        da_r = dr * r * (1 - r)

        grads = {
            "dWxz": x.T @ da_z, "dWhz": h_prev.T @ da_z, "dbz": da_z.sum(axis=0),
            "dWxr": x.T @ da_r, "dWhr": h_prev.T @ da_r, "dbr": da_r.sum(axis=0),
            "dWxn": x.T @ da_n, "dbxn": da_n.sum(axis=0),
            "dWhn": h_prev.T @ dhn, "dbhn": dhn.sum(axis=0),
        }
        grads["dx"] = da_z @ self.Wxz.T + da_r @ self.Wxr.T + da_n @ self.Wxn.T
        grads["dh_prev"] = dh_prev + da_z @ self.Whz.T + da_r @ self.Whr.T + dhn @ self.Whn.T
        return grads


class Adam:
    """Plain Adam, for training the cell above."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m, self.v, self.t = {}, {}, 0

    def step(self, params, grads):
        self.t += 1
        for k in params:
            g = grads["d" + k]
            self.m[k] = self.beta1 * self.m.get(k, 0) + (1 - self.beta1) * g
            self.v[k] = self.beta2 * self.v.get(k, 0) + (1 - self.beta2) * g * g
            m_hat = self.m[k] / (1 - self.beta1 ** self.t)
            v_hat = self.v[k] / (1 - self.beta2 ** self.t)
            params[k] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
