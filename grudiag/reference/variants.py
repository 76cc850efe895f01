"""The GRU conventions grudiag knows how to evaluate.

Two choices decide what a GRU computes (see gru_formulations.md §0, §2, §3.3):

* the **family**: where the reset gate acts on the candidate.
  ``"reset-after"`` (PyTorch, cuDNN, Keras ``reset_after=True``, ONNX ``linear_before_reset=1``):
  ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``.
  ``"reset-before"`` (Cho et al. 2014 v3, Keras ``reset_after=False``, ONNX default, TF1, Andrew Ng):
  ``n = tanh(W_in x + b_in + b_hn + W_hn (r ⊙ h))``.
  No weight re-mapping turns one family into the other in general.
* the **update**: which of ``h`` and ``n`` the update gate z weights.
  ``"torch"``: ``h' = (1 − z) ⊙ n + z ⊙ h`` (PyTorch, Cho, Keras, ONNX, TF1).
  ``"chung"``: ``h' = (1 − z) ⊙ h + z ⊙ n`` (Chung et al. 2014, Andrew Ng's Γ_u, Paddle
  ``origin_mode=False``).
  These two *are* inter-convertible: negate every update-gate parameter
  (:func:`grudiag.reference.conversions.flip_update`).

``bias=False`` evaluates the same equations with every bias treated as zero.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

Family = Literal["reset-after", "reset-before"]
Update = Literal["torch", "chung"]

FAMILIES: tuple[Family, ...] = ("reset-after", "reset-before")
UPDATES: tuple[Update, ...] = ("torch", "chung")


@dataclass(frozen=True)
class Variant:
    """One GRU convention: a family, an update convention and whether biases exist."""

    family: Family = "reset-after"
    update: Update = "torch"
    bias: bool = True

    def __post_init__(self) -> None:
        # Typos such as "reset_after" would otherwise silently fall into the wrong branch.
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}, got {self.update!r}")
        if not isinstance(self.bias, bool):
            raise TypeError(f"bias must be a bool, got {type(self.bias).__name__}")

    @property
    def reset_after(self) -> bool:
        return self.family == "reset-after"

    @property
    def name(self) -> str:
        """Short stable label, e.g. ``"reset-before, chung update, no bias"``."""
        parts = [self.family]
        if self.update == "chung":
            parts.append("chung update")
        if not self.bias:
            parts.append("no bias")
        return ", ".join(parts)

    @property
    def description(self) -> str:
        """One sentence with the equations and who uses this convention."""
        if self.reset_after:
            cand = "n = tanh(W_in x + b_in + r*(W_hn h + b_hn))"
        else:
            cand = "n = tanh(W_in x + b_in + b_hn + W_hn (r*h))"
        upd = "h' = (1-z)*n + z*h" if self.update == "torch" else "h' = (1-z)*h + z*n"
        users = _USERS[(self.family, self.update)]
        bias = ", all biases zero" if not self.bias else ""
        return f"Reset {self.family[6:]} GRU: {cand}, {upd}{bias}; {users}."

    def __str__(self) -> str:
        return self.name


_USERS = {
    ("reset-after", "torch"): "used by PyTorch nn.GRU/nn.GRUCell, cuDNN, Keras reset_after=True "
                              "and ONNX linear_before_reset=1",
    ("reset-after", "chung"): "the PyTorch cell with the update gate's role flipped, as some "
                              "tutorials and hand-written cells have it",
    ("reset-before", "torch"): "used by Cho et al. 2014 (EMNLP, arXiv v3), Keras reset_after=False, "
                               "ONNX linear_before_reset=0 and TF1 GRUCell",
    ("reset-before", "chung"): "used by Chung et al. 2014, Andrew Ng's deeplearning.ai course "
                               "and Paddle origin_mode=False",
}

ALL_VARIANTS: tuple[Variant, ...] = tuple(
    Variant(f, u, b) for f, u, b in itertools.product(FAMILIES, UPDATES, (True, False))
)

#: PyTorch / cuDNN / Keras reset_after=True.
PYTORCH = Variant("reset-after", "torch", True)
#: Cho et al. 2014 (EMNLP, arXiv v3) with biases; Keras reset_after=False; ONNX default.
CHO = Variant("reset-before", "torch", True)
