"""A NumPy GRU sequence model (time-major, row layout, PyTorch's reset-after equations) with a
hand-written backpropagation through time that forgets to carry the gradient from later steps:
the loop starts every step from dh = dhs[t] instead of dhs[t] + dh_next. Each step's local
gradient is right, but nothing flows back through time: h_T sends no gradient to x_1..x_{T-1}.

Expected categories: truncated-bptt
"""
import numpy as np


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


class GRU:
    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        s = 1 / np.sqrt(hidden_size)
        for g in "rzn":
            setattr(self, f"W_i{g}", rng.uniform(-s, s, (input_size, hidden_size)))
            setattr(self, f"W_h{g}", rng.uniform(-s, s, (hidden_size, hidden_size)))
            setattr(self, f"b_i{g}", rng.uniform(-s, s, hidden_size))
            setattr(self, f"b_h{g}", rng.uniform(-s, s, hidden_size))
        self.caches = []

    def forward(self, xs, h0):
        """xs (T, B, I), h0 (B, H) -> hs (T, B, H)."""
        h, hs, self.caches = h0, [], []
        for x in xs:
            r = sigmoid(x @ self.W_ir + self.b_ir + h @ self.W_hr + self.b_hr)
            z = sigmoid(x @ self.W_iz + self.b_iz + h @ self.W_hz + self.b_hz)
            hn = h @ self.W_hn + self.b_hn
            n = np.tanh(x @ self.W_in + self.b_in + r * hn)
            self.caches.append((x, h, r, z, n, hn))
            h = (1 - z) * n + z * h
            hs.append(h)
        return np.stack(hs)

    def backward(self, dhs):
        """dhs (T, B, H): dL/dh_t for every step -> gradients of everything."""
        names = [f"{k}_{s}{g}" for k in "Wb" for s in "ih" for g in "rzn"]
        grads = {f"d{name}": np.zeros_like(getattr(self, name)) for name in names}
        dxs = np.zeros((len(self.caches),) + self.caches[0][0].shape)
        dh_next = np.zeros_like(dhs[0])
        for t in reversed(range(len(self.caches))):
            x, h, r, z, n, hn = self.caches[t]
            dh = dhs[t]                               # BUG: should be dhs[t] + dh_next
            da_n = dh * (1 - z) * (1 - n ** 2)
            da_z = dh * (h - n) * z * (1 - z)
            da_r = da_n * hn * r * (1 - r)
            dhn = da_n * r
            for g, da, dlin in (("r", da_r, da_r), ("z", da_z, da_z), ("n", da_n, dhn)):
                grads[f"dW_i{g}"] += x.T @ da
                grads[f"db_i{g}"] += da.sum(0)
                grads[f"dW_h{g}"] += h.T @ dlin
                grads[f"db_h{g}"] += dlin.sum(0)
            dxs[t] = da_r @ self.W_ir.T + da_z @ self.W_iz.T + da_n @ self.W_in.T
            dh_next = dh * z + da_r @ self.W_hr.T + da_z @ self.W_hz.T + dhn @ self.W_hn.T
        grads["dx"] = dxs
        grads["dh0"] = dh_next
        return grads


if __name__ == "__main__":
    model = GRU(5, 7)
    hs = model.forward(np.random.default_rng(1).normal(size=(6, 3, 5)), np.zeros((3, 7)))
    grads = model.backward(np.ones_like(hs))
    print(hs.shape, grads["dx"].shape, grads["dh0"].shape)
