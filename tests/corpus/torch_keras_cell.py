"""Port of the Keras GRUCell (reset_after=False) to PyTorch.

Keras keeps row-major kernels (x @ kernel) with the gate columns ordered z | r | h,
and a single bias vector.
"""
import torch
import torch.nn as nn


class KerasStyleGRUCell(nn.Module):
    def __init__(self, input_dim, units):
        super().__init__()
        self.units = units
        self.kernel = nn.Parameter(torch.randn(input_dim, 3 * units) * 0.3)
        self.recurrent_kernel = nn.Parameter(torch.randn(units, 3 * units) * 0.3)
        self.bias = nn.Parameter(torch.zeros(3 * units).uniform_(-0.1, 0.1))

    def forward(self, inputs, states):
        h_tm1 = states
        u = self.units
        x_z, x_r, x_h = torch.split(inputs @ self.kernel + self.bias, u, dim=-1)
        rk = self.recurrent_kernel

        z = torch.sigmoid(x_z + h_tm1 @ rk[:, :u])
        r = torch.sigmoid(x_r + h_tm1 @ rk[:, u:2 * u])
        hh = torch.tanh(x_h + (r * h_tm1) @ rk[:, 2 * u:])

        h = z * h_tm1 + (1 - z) * hh
        return h
