"""A "stateful" sequence model that keeps its last hidden state on `self` and starts the next
call from it (detached, to silence "backward through the graph a second time"). It is reset
only when the batch size changes, so every batch of the same size continues the previous one.

Expected categories: stale-hidden-state
"""
import torch
from torch import nn


class StatefulGRU(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)
        self.batch_first = True
        self.hidden = None

    def forward(self, x):
        # x: (batch, time, input_size)
        if self.hidden is None or self.hidden.size(1) != x.size(0):
            self.hidden = x.new_zeros(1, x.size(0), self.hidden_size)
        out, h_n = self.gru(x, self.hidden)
        self.hidden = h_n.detach()  # BUG: carried into the next, unrelated batch
        return out


if __name__ == "__main__":
    torch.manual_seed(0)
    model = StatefulGRU(5, 7)
    x = torch.randn(3, 6, 5)
    print((model(x) - model(x)).abs().max())  # the same batch twice: different outputs
