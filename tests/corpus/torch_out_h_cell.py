import torch
import torch.nn as nn


class GRUCellWithReadout(nn.Module):
    """Returns (y, h): a linear read-out of the new state, and the state itself."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.gru = nn.GRUCell(input_size, hidden_size)
        self.readout = nn.Linear(hidden_size, output_size)

    def forward(self, x, h):
        h = self.gru(x, h)
        y = self.readout(h)
        return y, h
