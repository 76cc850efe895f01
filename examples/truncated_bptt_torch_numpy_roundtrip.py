"""A batch-first PyTorch GRU sequence model that keeps its states in a NumPy array (to
"log them cheaply") and reads the state for the next step back from that array. The numbers
are right, but torch.from_numpy(...) creates a new leaf each step: the autograd graph is cut
between steps and backpropagation through time never reaches earlier inputs.

Expected categories: truncated-bptt
"""
import numpy as np
import torch
from torch import nn


class GRUModel(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.batch_first = True
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h0=None):
        batch, steps, _ = x.shape
        h = torch.zeros(batch, self.hidden_size, dtype=x.dtype) if h0 is None else h0
        history = np.zeros((steps, batch, self.hidden_size))
        outputs = []
        for t in range(steps):
            h = self.cell(x[:, t], h)
            outputs.append(h)
            history[t] = h.detach().numpy()
            h = torch.from_numpy(history[t]).to(x.dtype)   # BUG: NumPy round trip cuts the graph
        return torch.stack(outputs, 1), h


if __name__ == "__main__":
    model = GRUModel(5, 7)
    out, h_n = model(torch.randn(3, 6, 5))
    out.sum().backward()
    print(out.shape, h_n.shape)
