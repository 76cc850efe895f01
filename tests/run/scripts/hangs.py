"""Two optimizer steps, then a loop that never ends."""
import torch
from torch import nn

if __name__ == "__main__":
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(2):
        loss = model(torch.randn(4, 3)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    while True:
        pass
