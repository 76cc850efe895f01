# encoder for my sensor data. x is (batch, time, channels) everywhere in this project
import torch
import torch.nn as nn


class SensorEncoder(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.hidden = hidden
        self.step = nn.GRUCell(channels, hidden)

    def forward(self, x):
        h = torch.zeros(x.size(0), self.hidden)
        states = []
        for t in range(x.size(1)):
            h = self.step(x[:, t], h)
            states.append(h)
        return torch.stack(states, dim=1)
