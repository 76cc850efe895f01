"""A PyTorch GRU cell that detaches the incoming state "to save memory". The forward pass is
exactly nn.GRUCell's, but backpropagation through time stops at every step: the gradient of
h_T reaches x_T and nothing earlier, so the cell can never learn a dependency longer than one
step. Detach the carried state between batches in the training loop instead.

Expected categories: truncated-bptt
"""
import torch
from torch import nn


class GRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.x2h = nn.Linear(input_size, 3 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x, h):
        h = h.detach()                               # BUG: cuts BPTT at every step
        x_r, x_z, x_n = self.x2h(x).chunk(3, -1)
        h_r, h_z, h_n = self.h2h(h).chunk(3, -1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h


if __name__ == "__main__":
    cell = GRUCell(5, 7)
    h = torch.zeros(3, 7)
    for x in torch.randn(6, 3, 5):
        h = cell(x, h)
    h.sum().backward()
    print(h.shape)
