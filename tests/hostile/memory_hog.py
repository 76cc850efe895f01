import numpy as np


class HistoryCell:
    """Keeps a dense history 'for attention later', sized by a wrong product."""

    def __init__(self, input_size, hidden_size):
        rng = np.random.default_rng(0)
        self.W = rng.normal(0, 0.3, (input_size, hidden_size))
        self.U = rng.normal(0, 0.3, (hidden_size, hidden_size))

    def forward(self, x, h_prev):
        scratch = np.ones((200_000, 200_000))  # meant (200, 200)
        return np.tanh(x @ self.W + h_prev @ self.U) + 0 * scratch[0, 0]
