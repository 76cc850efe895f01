"""A PyTorch GRU cell that zero-initialises every Linear layer (weights and biases).

With zero weights all hidden units compute the same value and receive the same gradient, so
they never become different: seven units that behave as one.

Expected categories: zero-init-symmetry
"""
import torch
from torch import nn


class ZeroInitGRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.x2z = nn.Linear(input_size, hidden_size)
        self.h2z = nn.Linear(hidden_size, hidden_size, bias=False)
        self.x2r = nn.Linear(input_size, hidden_size)
        self.h2r = nn.Linear(hidden_size, hidden_size, bias=False)
        self.x2n = nn.Linear(input_size, hidden_size)
        self.h2n = nn.Linear(hidden_size, hidden_size)
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.zeros_(layer.weight)  # BUG: "initialise with zeros to be safe"
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)

    def forward(self, x, h):
        z = torch.sigmoid(self.x2z(x) + self.h2z(h))
        r = torch.sigmoid(self.x2r(x) + self.h2r(h))
        n = torch.tanh(self.x2n(x) + r * self.h2n(h))
        return (1 - z) * n + z * h


if __name__ == "__main__":
    cell = ZeroInitGRUCell(5, 7)
    h = torch.zeros(3, 7)
    for _ in range(4):
        h = cell(torch.randn(3, 5), h)
    print(h)
