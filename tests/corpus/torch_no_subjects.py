"""Nothing recurrent here: an MLP, an attention block and an LSTM."""
import torch
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, 32), nn.ReLU(), nn.Linear(32, d_out))

    def forward(self, x):
        return self.net(x)


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.q = nn.Linear(dim, dim)

    def forward(self, query, keys):
        scores = self.q(query) @ keys.transpose(-1, -2)
        return torch.softmax(scores, dim=-1) @ keys


lstm = nn.LSTM(4, 8)
