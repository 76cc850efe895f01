"""A NumPy sequence GRU whose time loop restarts every step from a zero state: the state is
initialised inside the loop instead of before it. Each output depends only on its own input,
and h0 is ignored too.

Expected categories: stale-hidden-state
"""
import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class SequenceGRU:
    def __init__(self, input_size, hidden_size, seed=0):
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(hidden_size)
        self.hidden_size = hidden_size
        self.Wx = rng.uniform(-k, k, (input_size, 3 * hidden_size))
        self.Wh = rng.uniform(-k, k, (hidden_size, 3 * hidden_size))
        self.b = rng.uniform(-k, k, 3 * hidden_size)

    def step(self, x, h):
        H = self.hidden_size
        gx, gh = x @ self.Wx + self.b, h @ self.Wh
        z = sigmoid(gx[:, :H] + gh[:, :H])
        r = sigmoid(gx[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1.0 - z) * n + z * h

    def forward(self, xs, h0):
        # xs: (time, batch, input_size), h0: (batch, hidden_size)
        hs = []
        for x in xs:
            h = np.zeros((x.shape[0], self.hidden_size))  # BUG: belongs before the loop (h = h0)
            h = self.step(x, h)
            hs.append(h)
        return np.stack(hs)


if __name__ == "__main__":
    model = SequenceGRU(5, 7)
    print(model.forward(np.ones((6, 3, 5)), np.zeros((3, 7))).shape)
