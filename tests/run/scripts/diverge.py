"""A GRU regression trained with plain SGD at a far too high learning rate and no clipping:
the gradient norm spikes and the weights become NaN within ~20 steps."""
import argparse

import torch
from torch import nn


class Regressor(nn.Module):
    def __init__(self, input_size=4, hidden_size=16):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def main(clip=None, lr=2.0, steps=40):
    torch.manual_seed(0)
    torch.set_flush_denormal(True)  # keeps the blow-up fast on CPU
    model = Regressor()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x = torch.randn(16, 12, 4)
    y = 100.0 * x.sum(dim=(1, 2)).unsqueeze(1)
    for step in range(steps):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip)
        opt.step()
        print(f"step {step} loss {loss.item():.4g}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=40)
    a = parser.parse_args()
    main(lr=a.lr, steps=a.steps)
