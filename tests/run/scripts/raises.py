"""A GRU-cell training loop that fails at step 3 with a shape error."""
import torch
from torch import nn

if __name__ == "__main__":
    torch.manual_seed(0)
    cell = nn.GRUCell(3, 5)
    opt = torch.optim.SGD(cell.parameters(), lr=0.1)
    for step in range(10):
        h = torch.zeros(4, 5)
        for t in range(6):
            h = cell(torch.randn(4, 3), h)
        loss = h.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 2:
            h = h.view(7, -1)  # BUG: a hard-coded size
