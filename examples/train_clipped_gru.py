"""A training script: the twin of train_diverging_gru.py with one line added, gradient clipping
(`clip_grad_norm_(model.parameters(), max_norm=1.0)`) between backward and step. The learning rate
is still far too high, but the step size is bounded: the run stays finite.

The cell itself is a correct nn.GRU, so `grudiag check` finds nothing wrong with it. `grudiag run`
observes the training loop and reports no error:

    grudiag run examples/train_clipped_gru.py
    # GD706 [info] clipping-always-binds: every step is clipped (gradient normalisation)

Expected categories: none
"""
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


def train(lr: float, steps: int) -> None:
    torch.manual_seed(0)
    model = Regressor()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    x = torch.randn(16, 12, 4)
    y = 100.0 * x.sum(dim=(1, 2)).unsqueeze(1)   # large targets: large gradients
    for step in range(steps):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        print(f"step {step:3d}  loss {loss.item():.4g}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    train(args.lr, args.steps)
