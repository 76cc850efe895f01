"""Overhead of `grudiag run`'s instrumentation on a small GRU training loop, in one process.

    .venv/bin/python benchmarks/run_overhead.py [--steps 300] [--sample-every 20]

Times two small loops, an nn.GRU (16→64, batch 32, 40 time steps, Adam, clip_grad_norm_)
and a Python loop over nn.GRUCell (same sizes, Adam, no clipping), without hooks and with `grudiag.run.instrument.Recorder` installed, interleaved in rounds so that a
noisy machine affects both alike, and prints steps/s and the ratio. Budget: ≤ 10 % at the
default sampling (every 20th step measures the flow through time).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from grudiag.run.instrument import DEFAULT_SAMPLE_EVERY, Recorder


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(16, 64, batch_first=True)
        self.head = nn.Linear(64, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def sequence_case():
    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(32, 40, 16), torch.randn(32, 1)

    def step():
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return step


def cell_case():
    cell, head = nn.GRUCell(16, 64), nn.Linear(64, 1)
    opt = torch.optim.Adam([*cell.parameters(), *head.parameters()], lr=1e-3)
    x, y = torch.randn(40, 32, 16), torch.randn(32, 1)

    def step():
        h = torch.zeros(32, 64)
        for t in range(x.shape[0]):
            h = cell(x[t], h)
        loss = nn.functional.mse_loss(head(h), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def loop(step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sample-every", type=int, default=DEFAULT_SAMPLE_EVERY)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    worst = 0.0
    for name, make in (("nn.GRU sequence", sequence_case), ("nn.GRUCell loop", cell_case)):
        torch.manual_seed(0)
        step = make()
        loop(step, 10)  # warm-up
        plain, hooked = [], []
        for _ in range(args.rounds):
            plain.append(loop(step, args.steps))
            recorder = Recorder(sample_every=args.sample_every).install()
            try:
                hooked.append(loop(step, args.steps))
            finally:
                recorder.uninstall()
            assert len(recorder.steps) == args.steps and recorder.flow
        p, h = statistics.median(plain), statistics.median(hooked)
        worst = max(worst, p / h - 1)
        print(f"{name}: without {p:7.1f} steps/s, with {h:7.1f} steps/s "
              f"(sample every {args.sample_every}, median of {args.rounds} rounds): "
              f"ratio {h / p:.3f}, overhead {100 * (p / h - 1):.1f} %")
    print(f"worst overhead: {100 * worst:.1f} % (budget 10 %)")

if __name__ == "__main__":
    main()
