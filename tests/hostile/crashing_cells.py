"""Five cells that break the harness in different ways, and one correct cell after them.

The correct cell must still be diagnosed: one bad subject never costs the others.
"""
import os
import sys

import torch
from torch import nn


class RaisingCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = nn.Linear(input_size + hidden_size, hidden_size)

    def forward(self, x, h):
        if x.shape[0] != 32:
            raise ValueError(f"expected a batch of 32, got {x.shape[0]}")
        return torch.tanh(self.lin(torch.cat([x, h], dim=1)))


class ExitingCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h):
        h = self.cell(x, h)
        if h.abs().max() < 10:
            sys.exit("state looks fine, stopping")  # left over from debugging
        return h


class HangingCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.converged = False

    def forward(self, x, h):
        while not self.converged:
            h = self.cell(x, h)
        return h


class KillingCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h):
        h = self.cell(x, h)
        os._exit(3)


class NoneCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h):
        h_new = self.cell(x, h)  # forgot to return it


class GoodCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h):
        return self.cell(x, h)
