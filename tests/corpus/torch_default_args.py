"""Tiny GRU cell with everything defaulted so I can just write `SmallGRU()` in the REPL."""
import torch
import torch.nn as nn


class SmallGRU(nn.Module):
    def __init__(self, features=4, width=12, init_scale=0.2):
        super().__init__()
        self.W = nn.Parameter(init_scale * torch.randn(3 * width, features))
        self.U = nn.Parameter(init_scale * torch.randn(3 * width, width))
        self.b = nn.Parameter(init_scale * torch.randn(3 * width))
        self.c = nn.Parameter(init_scale * torch.randn(width))   # bias of the candidate's U h

    def forward(self, x, h):
        wr, wz, wn = (x @ self.W.t() + self.b).chunk(3, dim=-1)
        ur, uz, un = (h @ self.U.t()).chunk(3, dim=-1)
        r = (wr + ur).sigmoid()
        z = (wz + uz).sigmoid()
        n = (wn + r * (un + self.c)).tanh()
        return (1 - z) * n + z * h
