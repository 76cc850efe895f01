"""The original GRU of Cho et al. (2014): one nn.Linear per gate, the reset gate applied to
the state BEFORE the recurrent matmul (reset-before), h' = z * h + (1 - z) * h_tilde.

Expected categories: none
"""
import torch
import torch.nn as nn


class ChoGRUCell(nn.Module):
    def __init__(self, input_dim, hidden_dim):
        super().__init__()
        self.W_r = nn.Linear(input_dim, hidden_dim)
        self.U_r = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.W_z = nn.Linear(input_dim, hidden_dim)
        self.U_z = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.W = nn.Linear(input_dim, hidden_dim)
        self.U = nn.Linear(hidden_dim, hidden_dim, bias=False)

    def forward(self, x, h_prev):
        r = torch.sigmoid(self.W_r(x) + self.U_r(h_prev))
        z = torch.sigmoid(self.W_z(x) + self.U_z(h_prev))
        h_tilde = torch.tanh(self.W(x) + self.U(r * h_prev))
        return z * h_prev + (1 - z) * h_tilde


class ChoEncoder(nn.Module):
    """Runs the cell over a batch-first sequence and returns every state."""

    def __init__(self, input_dim, hidden_dim):
        super().__init__()
        self.batch_first = True
        self.cell = ChoGRUCell(input_dim, hidden_dim)

    def forward(self, x, h0=None):
        batch, steps, _ = x.shape
        h = x.new_zeros(batch, self.cell.U.out_features) if h0 is None else h0
        outputs = []
        for t in range(steps):
            h = self.cell(x[:, t], h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


if __name__ == "__main__":
    enc = ChoEncoder(5, 7)
    out, h = enc(torch.randn(2, 4, 5))
    print(out.shape, h.shape)
