"""GD1xx: the shape and API contract of a cell."""
from __future__ import annotations

from ..model import Severity
from .base import Check, register_check


@register_check
class WrongOutputShape(Check):
    """The state a subject returns has the wrong shape.

    ## What it checks
    Every state the subject returns, in every probe, must have shape (batch, hidden_size) in
    the subject's own layout ((hidden_size, batch) for column-layout NumPy cells). The adapter
    compares the returned shape with the expected one on every call.

    ## Why is this bad?
    A wrong shape is usually silent broadcasting: `(B, H) * (B, 1)` or `(B, H) + (H, 1)` turns
    the state into an outer product, and the training loop sums it into a loss anyway.

    ## How it is detected
    Shape comparison on each call, with sizes input 5, hidden 7, batch 3, time 6 (all
    different, so that a swapped axis cannot match by accident). No threshold.

    ## Example
    ```python
    h_new = (1 - z) * n + z * h_prev[:, None]     # (B, H) * (B, 1, H) -> (B, B, H)
    ```

    ## Use instead
    ```python
    h_new = (1 - z) * n + z * h_prev
    ```
    """

    code = "GD101"
    name = "wrong-output-shape"
    category = "bad-shapes"
    severity = Severity.ERROR
    # Raised by the adapters on any call and turned into a finding by the runner.
    harness = True
