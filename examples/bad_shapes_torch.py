"""A batch-first sequence model that converts its input to time-major with `view` instead of
`transpose`. `view` only reinterprets memory, so samples and time steps are interleaved: outputs
depend on other samples and on future steps, yet every shape is right.

Expected categories: bad-shapes
"""
import torch
from torch import nn


class SequenceClassifierEncoder(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.batch_first = True
        self.hidden_size = hidden_size
        self.cell = nn.GRUCell(input_size, hidden_size)

    def forward(self, x, h0=None):
        # x: (batch, time, input_size)
        B, T, I = x.shape
        x = x.view(T, B, I)  # BUG: must be x.transpose(0, 1)
        h = x.new_zeros(B, self.hidden_size) if h0 is None else h0
        outputs = []
        for t in range(T):
            h = self.cell(x[t], h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h  # (batch, time, hidden)


if __name__ == "__main__":
    torch.manual_seed(0)
    out, h = SequenceClassifierEncoder(5, 7)(torch.randn(3, 6, 5))
    print(out.shape, h.shape)
