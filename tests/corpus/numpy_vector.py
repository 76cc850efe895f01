"""Character-level GRU in the style of min-char-rnn: one example at a time.

x is a one-hot column of length vocab_size (a 1-D array), h is (hidden_size,).
"""
import numpy as np


class CharGRU:
    def __init__(self, vocab_size, hidden_size):
        self.Wxz = np.random.randn(hidden_size, vocab_size) * 0.1
        self.Whz = np.random.randn(hidden_size, hidden_size) * 0.1
        self.Wxr = np.random.randn(hidden_size, vocab_size) * 0.1
        self.Whr = np.random.randn(hidden_size, hidden_size) * 0.1
        self.Wxh = np.random.randn(hidden_size, vocab_size) * 0.1
        self.Whh = np.random.randn(hidden_size, hidden_size) * 0.1
        self.bz = np.zeros(hidden_size)
        self.br = np.zeros(hidden_size)
        self.bh = np.zeros(hidden_size)

    @staticmethod
    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    def step(self, x, h):
        z = self.sigmoid(np.dot(self.Wxz, x) + np.dot(self.Whz, h) + self.bz)
        r = self.sigmoid(np.dot(self.Wxr, x) + np.dot(self.Whr, h) + self.br)
        hc = np.tanh(np.dot(self.Wxh, x) + np.dot(self.Whh, r * h) + self.bh)
        return z * hc + (1 - z) * h

    def sample(self, h, seed_ix, n):
        x = np.zeros(self.Wxz.shape[1])
        x[seed_ix] = 1
        out = []
        for _ in range(n):
            h = self.step(x, h)
            ix = int(np.argmax(h))
            out.append(ix)
        return out
