import torch
import torch.nn as nn


class MinimalGRUCell(nn.Module):
    """Reset-after GRU cell with separate input/hidden projections (fused over the 3 gates)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.x2h = nn.Linear(input_size, 3 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x, hidden):
        gate_x = self.x2h(x)
        gate_h = self.h2h(hidden)
        i_r, i_i, i_n = gate_x.chunk(3, -1)
        h_r, h_i, h_n = gate_h.chunk(3, -1)
        resetgate = torch.sigmoid(i_r + h_r)
        inputgate = torch.sigmoid(i_i + h_i)
        newgate = torch.tanh(i_n + resetgate * h_n)
        return newgate + inputgate * (hidden - newgate)


class Recurrent(nn.Module):
    """Runs MinimalGRUCell over a (seq_len, batch, features) tensor."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.cell = MinimalGRUCell(input_size, hidden_size)

    def forward(self, inputs, state):
        outs = []
        for x_t in inputs:            # iterate over time (dim 0)
            state = self.cell(x_t, state)
            outs += [state]
        return torch.stack(outs)
