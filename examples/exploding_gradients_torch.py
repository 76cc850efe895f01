"""A PyTorch GRU cell with a "residual connection" added around it, h' = h + GRU(x, h), the way
residual blocks are added around feed-forward layers. The state update is no longer a convex
blend: h' = (1 + z) * h + (1 - z) * n, so the one-step Jacobian is I + (a GRU's Jacobian), its
top singular value is ~1.6 at every step and gradients grow geometrically backwards in time.

Expected categories: exploding-gradients, equation-mismatch
"""
import torch
from torch import nn


class ResidualGRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_x = nn.Linear(input_size, 3 * hidden_size)
        self.W_h = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x, h):
        x_r, x_z, x_n = self.W_x(x).chunk(3, -1)
        h_r, h_z, h_n = self.W_h(h).chunk(3, -1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return h + ((1 - z) * n + z * h)             # BUG: residual around the GRU update


if __name__ == "__main__":
    cell = ResidualGRUCell(5, 7)
    h = torch.zeros(3, 7)
    for x in torch.randn(30, 3, 5):
        h = cell(x, h)
    print(h.abs().max().item())
