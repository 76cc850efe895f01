# Plain (Elman) RNN, time-major, with an nn.RNN-like interface:
#   forward(x, h0=None) -> (outputs, h_n) where h0 / h_n are (1, batch, hidden)
import math

import torch
import torch.nn as nn


class ElmanRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        bound = 1 / math.sqrt(hidden_size)
        self.W_xh = nn.Parameter(torch.empty(input_size, hidden_size).uniform_(-bound, bound))
        self.W_hh = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-bound, bound))
        self.b_h = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))

    def forward(self, x, h0=None):
        seq_len, batch, _ = x.shape
        h = torch.zeros(batch, self.hidden_size) if h0 is None else h0[0]
        ys = []
        for t in range(seq_len):
            h = torch.tanh(x[t] @ self.W_xh + h @ self.W_hh + self.b_h)
            ys.append(h)
        return torch.stack(ys), h.unsqueeze(0)
