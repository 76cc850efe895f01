import torch
from torch import nn


class LayerNormFreeGRUCell(nn.Module):
    """Keyword-only constructor, as in our config-driven codebase: Cell(input_dim=..., hidden_dim=...)."""

    def __init__(self, *, input_dim: int, hidden_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.ih = nn.Linear(input_dim, 3 * hidden_dim, bias=bias)
        self.hh = nn.Linear(hidden_dim, 3 * hidden_dim, bias=bias)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        r_i, z_i, n_i = self.ih(x).chunk(3, -1)
        r_h, z_h, n_h = self.hh(h).chunk(3, -1)
        r = torch.sigmoid(r_i + r_h)
        z = torch.sigmoid(z_i + z_h)
        n = torch.tanh(n_i + r * n_h)
        return torch.lerp(n, h, z)   # (1 - z) * n + z * h
