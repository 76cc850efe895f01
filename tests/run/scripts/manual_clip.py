"""The diverging GRU regression, clipped by hand: the gradients are rescaled in place to a
maximum total norm of 1.0 (no torch.nn.utils call)."""
import torch

from diverge import Regressor

if __name__ == "__main__":
    torch.manual_seed(0)
    model = Regressor()
    opt = torch.optim.SGD(model.parameters(), lr=2.0)
    x = torch.randn(16, 12, 4)
    y = 100.0 * x.sum(dim=(1, 2)).unsqueeze(1)
    for step in range(30):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        total = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
        scale = min(1.0, 1.0 / (float(total) + 1e-6))
        for p in model.parameters():
            p.grad.mul_(scale)
        opt.step()
