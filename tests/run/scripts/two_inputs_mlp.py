"""A non-recurrent model whose forward takes two tensors (features, mask): not a cell."""
import torch
from torch import nn


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 1)

    def forward(self, x, mask):
        return self.lin(x * mask)


if __name__ == "__main__":
    torch.manual_seed(0)
    model = Masked()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, mask = torch.randn(32, 6), (torch.rand(32, 6) > 0.2).float()
    y = x[:, :1]
    for step in range(8):
        loss = ((model(x, mask) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
