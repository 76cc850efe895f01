# GRU from the deeplearning.ai sequence-models course, but in PyTorch.
# Gamma_u is the *update* gate: c = Gamma_u * c_tilde + (1 - Gamma_u) * c_prev
# All the weights act on the concatenation [c_prev, x].
import torch
import torch.nn as nn


class NgGRU(nn.Module):
    def __init__(self, n_x, n_a):
        super().__init__()
        self.Wu = nn.Parameter(0.3 * torch.randn(n_a, n_a + n_x))
        self.bu = nn.Parameter(0.1 * torch.randn(n_a, 1))
        self.Wr = nn.Parameter(0.3 * torch.randn(n_a, n_a + n_x))
        self.br = nn.Parameter(0.1 * torch.randn(n_a, 1))
        self.Wc = nn.Parameter(0.3 * torch.randn(n_a, n_a + n_x))
        self.bc = nn.Parameter(0.1 * torch.randn(n_a, 1))

    def forward(self, xt, c_prev):
        # the course is column-major; our batches are rows, so transpose around the maths
        x, c = xt.t(), c_prev.t()
        concat = torch.cat([c, x], dim=0)
        gamma_u = torch.sigmoid(self.Wu @ concat + self.bu)
        gamma_r = torch.sigmoid(self.Wr @ concat + self.br)
        c_tilde = torch.tanh(self.Wc @ torch.cat([gamma_r * c, x], dim=0) + self.bc)
        c_next = gamma_u * c_tilde + (1 - gamma_u) * c
        return c_next.t()
