"""A hand-written tanh RNN cell with recurrent weights scaled far above 1, trained with its loss
on the last step only: the gradient grows geometrically back through time."""
import torch
from torch import nn


class BigRNNCell(nn.Module):
    def __init__(self, input_size=3, hidden_size=8):
        super().__init__()
        self.W_x = nn.Linear(input_size, hidden_size)
        self.W_h = nn.Linear(hidden_size, hidden_size, bias=False)
        with torch.no_grad():
            self.W_h.weight.copy_(torch.linalg.qr(torch.randn(hidden_size, hidden_size))[0] * 8)

    def forward(self, x, h):
        return self.W_h(h) + self.W_x(x)   # linear recurrence with gain 8 per step


if __name__ == "__main__":
    torch.manual_seed(0)
    cell = BigRNNCell()
    opt = torch.optim.SGD(cell.parameters(), lr=1e-12)
    for step in range(3):
        h = torch.zeros(2, 8)
        for t in range(8):
            h = cell(torch.randn(2, 3), h)
        loss = h.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(cell.parameters(), max_norm=1.0)
        opt.step()
