"""A training script with a hand-written GRU cell (PyTorch convention, reset-after) unrolled in
a Python loop, with gradients clipped *by hand*: the total norm is computed and every `p.grad`
is rescaled in place to at most 1.0. No torch.nn.utils call, yet `grudiag run` sees the clipping
from the gradient norm after backward vs the norm the optimizer applies:

    grudiag run examples/train_manual_clip_gru_cell.py -- --steps 30

The cell is a correct GRU, so `grudiag check` reports nothing wrong with it.

Expected categories: none
"""
import argparse

import torch
from torch import nn


class GRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_x = nn.Linear(input_size, 3 * hidden_size)
        self.W_h = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x, h):
        x_r, x_z, x_n = self.W_x(x).chunk(3, -1)
        h_r, h_z, h_n = self.W_h(h).chunk(3, -1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h


def clip_by_hand(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    scale = min(1.0, max_norm / (float(total) + 1e-6))
    for g in grads:
        g.mul_(scale)


def train(lr: float, steps: int) -> None:
    torch.manual_seed(0)
    cell, head = GRUCell(3, 8), nn.Linear(8, 1)
    params = list(cell.parameters()) + list(head.parameters())
    optimizer = torch.optim.SGD(params, lr=lr)
    x = torch.randn(10, 16, 3)                      # time, batch, features
    y = 50.0 * x.sum(dim=(0, 2)).unsqueeze(1)
    for step in range(steps):
        h = torch.zeros(16, 8)
        for t in range(x.shape[0]):
            h = cell(x[t], h)
        loss = ((head(h) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        clip_by_hand(params, max_norm=1.0)
        optimizer.step()
        print(f"step {step:3d}  loss {loss.item():.4g}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    train(args.lr, args.steps)
