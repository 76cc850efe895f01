import numpy as np


class TinyGRU:
    """Sized for our 8 sensor channels; 12 hidden units was enough.

    Inputs are column-stacked: x is (channels, batch).
    """

    def __init__(self, sizes=(8, 12), seed=42):
        n_in, n_h = sizes
        rng = np.random.RandomState(seed)
        self.Wz, self.Uz = rng.randn(n_h, n_in) * 0.3, rng.randn(n_h, n_h) * 0.3
        self.Wr, self.Ur = rng.randn(n_h, n_in) * 0.3, rng.randn(n_h, n_h) * 0.3
        self.Wc, self.Uc = rng.randn(n_h, n_in) * 0.3, rng.randn(n_h, n_h) * 0.3
        self.bz = np.full((n_h, 1), 0.1)
        self.br = np.full((n_h, 1), -0.1)
        self.bc = np.zeros((n_h, 1))

    @staticmethod
    def _sig(a):
        return 1 / (1 + np.exp(-a))

    def forward(self, x, h):
        z = self._sig(np.matmul(self.Wz, x) + np.matmul(self.Uz, h) + self.bz)
        r = self._sig(np.matmul(self.Wr, x) + np.matmul(self.Ur, h) + self.br)
        c = np.tanh(np.matmul(self.Wc, x) + np.matmul(self.Uc, r * h) + self.bc)
        return (1 - z) * h + z * c
