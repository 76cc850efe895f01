"""A PyTorch GRU cell that computes its step in a custom torch.autograd.Function "to save
memory", with a hand-written backward that forgets the sigmoid derivative of the update gate
(da_z = dz instead of dz * z * (1 - z)). The forward is exactly nn.GRUCell's; autograd calls
the wrong backward, so every gradient through z is off.

Expected categories: wrong-gradient
"""
import math

import torch
from torch import nn


class GRUStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h, w_ih, w_hh, b_ih, b_hh):
        gi = x @ w_ih.t() + b_ih
        gh = h @ w_hh.t() + b_hh
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        ctx.save_for_backward(x, h, w_ih, w_hh, r, z, n, h_n)
        return (1 - z) * n + z * h

    @staticmethod
    def backward(ctx, dh):
        x, h, w_ih, w_hh, r, z, n, h_n = ctx.saved_tensors
        dn = dh * (1 - z)
        dz = dh * (h - n)
        da_n = dn * (1 - n ** 2)
        da_z = dz                                   # BUG: missing * z * (1 - z)
        da_r = da_n * h_n * r * (1 - r)
        dgi = torch.cat([da_r, da_z, da_n], 1)
        dgh = torch.cat([da_r, da_z, da_n * r], 1)
        dx = dgi @ w_ih
        dh_prev = dh * z + dgh @ w_hh
        return dx, dh_prev, dgi.t() @ x, dgh.t() @ h, dgi.sum(0), dgh.sum(0)


class FastGRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        k = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    def forward(self, x, h):
        return GRUStep.apply(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


if __name__ == "__main__":
    cell = FastGRUCell(5, 7)
    h = cell(torch.randn(3, 5), torch.zeros(3, 7))
    h.sum().backward()
    print(h.shape, cell.weight_ih.grad.norm().item())
