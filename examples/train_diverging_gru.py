"""A training script: a GRU regressor trained with plain SGD at a far too high learning rate and
no gradient clipping. The gradient norm spikes within a few steps and the weights become NaN.

The cell itself is a correct nn.GRU, so `grudiag check` finds nothing wrong with it; the bug is
in the training loop, which `grudiag run` observes:

    grudiag run examples/train_diverging_gru.py
    # GD701 [error] missing-gradient-clipping: the gradient norm spiked to … at optimizer step 5
    # GD704 [error] non-finite-during-training: … non-finite at optimizer step 12 …

Its twin, train_clipped_gru.py, adds one line (clip_grad_norm_) and stays finite.

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
        optimizer.step()                          # BUG: raw, exploding gradients
        print(f"step {step:3d}  loss {loss.item():.4g}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    train(args.lr, args.steps)
