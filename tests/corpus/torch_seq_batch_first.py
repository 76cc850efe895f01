"""Sequence encoder built by unrolling nn.GRUCell by hand (batch_first, like my dataloader)."""
import torch
from torch import nn


class GRUSequence(nn.Module):
    def __init__(self, input_size, hidden_size, batch_first=True):
        super().__init__()
        self.hidden_size = hidden_size
        self.batch_first = batch_first
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h0=None):
        if not self.batch_first:
            x = x.transpose(0, 1)
        batch, steps, _ = x.shape
        h = h0 if h0 is not None else x.new_zeros(batch, self.hidden_size)
        outputs = []
        for t in range(steps):
            h = self.cell(x[:, t, :], h)
            outputs.append(h)
        out = torch.stack(outputs, dim=1)          # (batch, steps, hidden)
        if not self.batch_first:
            out = out.transpose(0, 1)
        return out, h
