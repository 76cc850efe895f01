"""A PyTorch GRU cell that "damps" its state to keep it small: the previous state is scaled
by 0.1 before the update, h' = (1 - z) * n + z * (0.1 * h). The state stays bounded, but each
step multiplies the gradient through time by ~0.06: it falls below 1e-3 within 3 steps, so
the cell cannot learn anything longer than that.

Expected categories: vanishing-gradients, equation-mismatch
"""
import torch
from torch import nn


class DampedGRUCell(nn.Module):
    def __init__(self, input_size, hidden_size, damping=0.1):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.damping = damping
        self.lin_x = nn.Linear(input_size, 3 * hidden_size)
        self.lin_h = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x, h):
        h = self.damping * h                         # BUG: shrinks the carried state every step
        x_r, x_z, x_n = self.lin_x(x).chunk(3, -1)
        h_r, h_z, h_n = self.lin_h(h).chunk(3, -1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h


if __name__ == "__main__":
    cell = DampedGRUCell(5, 7)
    h = torch.zeros(3, 7)
    for x in torch.randn(30, 3, 5):
        h = cell(x, h)
    print(h.abs().max().item())
