# Cho et al. 2014 GRU, one nn.Linear per gate (reset applied BEFORE the recurrent matmul)
#
#   r  = sigma(W_r x + U_r h)
#   z  = sigma(W_z x + U_z h)
#   h~ = tanh(W x + U (r * h))
#   h' = z * h + (1 - z) * h~
import torch
from torch import nn


class ChoGRUCell(nn.Module):

    def __init__(self, input_size: int, hidden_size: int):
        super(ChoGRUCell, self).__init__()
        # input -> gates (these carry the biases)
        self.W_r = nn.Linear(input_size, hidden_size)
        self.W_z = nn.Linear(input_size, hidden_size)
        self.W = nn.Linear(input_size, hidden_size)
        # hidden -> gates, no bias (Cho has a single bias per gate)
        self.U_r = nn.Linear(hidden_size, hidden_size, bias=False)
        self.U_z = nn.Linear(hidden_size, hidden_size, bias=False)
        self.U = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x, h_prev):
        r = torch.sigmoid(self.W_r(x) + self.U_r(h_prev))
        z = torch.sigmoid(self.W_z(x) + self.U_z(h_prev))
        h_tilde = torch.tanh(self.W(x) + self.U(r * h_prev))
        h = z * h_prev + (1 - z) * h_tilde
        return h
