"""A GRU cell whose update and reset gates are written from the input only: U_z and U_r are
created (and counted in the parameters) but never used, so the gates cannot react to the state
and those weights never receive a gradient. Only the candidate still reads h_prev.

Expected categories: ignored-recurrence, equation-mismatch
"""
import torch
from torch import nn


class GRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.W_z = nn.Linear(input_size, hidden_size)
        self.W_r = nn.Linear(input_size, hidden_size)
        self.W_n = nn.Linear(input_size, hidden_size)
        self.U_z = nn.Linear(hidden_size, hidden_size, bias=False)
        self.U_r = nn.Linear(hidden_size, hidden_size, bias=False)
        self.U_n = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x, h_prev):
        z = torch.sigmoid(self.W_z(x))  # BUG: + self.U_z(h_prev) is missing
        r = torch.sigmoid(self.W_r(x))  # BUG: + self.U_r(h_prev) is missing
        n = torch.tanh(self.W_n(x) + self.U_n(r * h_prev))
        return (1 - z) * n + z * h_prev


if __name__ == "__main__":
    torch.manual_seed(0)
    cell = GRUCell(5, 7)
    h = torch.zeros(3, 7)
    for _ in range(4):
        h = cell(torch.randn(3, 5), h)
    h.sum().backward()
    print(cell.U_z.weight.grad)  # None: never used
