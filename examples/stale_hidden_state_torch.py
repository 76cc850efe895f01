"""A sequence encoder whose time loop passes the initial state h0 to the cell at every step
(`self.cell(x[t], h0)` instead of `self.cell(x[t], h)`). Every shape is right and it trains,
but each output sees only its own input: the model has no memory at all.

Expected categories: stale-hidden-state
"""
import torch
from torch import nn


class GRUEncoder(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h0=None):
        # x: (time, batch, input_size)
        if h0 is None:
            h0 = x.new_zeros(x.size(1), self.hidden_size)
        outputs = []
        for t in range(x.size(0)):
            h = self.cell(x[t], h0)  # BUG: must be self.cell(x[t], h) with h = h0 before the loop
            outputs.append(h)
        return torch.stack(outputs), h


if __name__ == "__main__":
    torch.manual_seed(0)
    model = GRUEncoder(5, 7)
    out, h_n = model(torch.randn(6, 3, 5))
    print(out.shape, h_n.shape)
