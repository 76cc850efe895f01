"""GD1xx: the shape and API contract of a cell."""
from __future__ import annotations

from collections.abc import Iterator

from ..model import Finding, Location, Severity
from .base import Check, CheckContext, SkipCheck, register_check


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


# --- checks measured by the probes in grudiag/probes/shapes.py ----------------------------------



def _loc(point: dict, fallback: Location | None) -> Location | None:
    loc = point.get("location")
    return Location(loc["file"], loc.get("line")) if loc else fallback


def _what_failed(point: dict) -> str:
    if point.get("kind") == "shape" and point.get("got") is not None:
        return (f"returned shape {tuple(point['got'])}, expected "
                f"{tuple(point['expected'] or ())}")
    return point.get("error", "failed")


@register_check
class BreaksAtOtherSizes(Check):
    """The subject works at the probe's default sizes but fails for another batch or time size.

    ## What it checks
    The subject is run (on fresh copies) over a grid of sizes around the default batch 3 and
    time 6: batch 1, 2 and 5 at time 6, time 1 and 2 at batch 3, and batch 1 with time 1. Each
    grid input reuses the first samples and steps of one reference input, so a working grid
    point must return exactly the matching slice of the reference states. A grid point fails
    when the subject raises, returns a wrong shape, or returns different numbers for the same
    samples.

    ## Why is this bad?
    Batch 1 is what inference and most debugging sessions use; time 1 is what a streaming
    decoder uses. A `squeeze()` that drops the batch axis of a `(1, H)` state, a size hard-coded
    from the training script, or an axis picked by its length instead of its position all work
    at the sizes the author tried and break at the others.

    ## How it is detected
    Probe `size-grid`. Any raise or wrong shape at a grid point is an error. Otherwise the
    states of the shared samples are compared with the reference run: relative difference
    (max |Δh| / max |h|) above `rel_tol` is an error. A correct cell measures exactly 0 in
    float64 (at most ~1e-7 for a float32 module whose matmul kernel changes with the batch
    size); a cell that normalises over the batch or mixes samples measures 0.05 to 1.

    ## Example
    ```python
    def forward(self, x, h_prev):
        x, h_prev = x.squeeze(), h_prev.squeeze()   # (1, H) -> (H,) at batch 1
    ```

    ## Use instead
    ```python
    def forward(self, x, h_prev):                   # keep (B, ·) shapes; never squeeze the batch
    ```
    """

    code = "GD102"
    name = "breaks-at-other-sizes"
    category = "bad-shapes"
    severity = Severity.ERROR
    requires = ("size-grid",)
    thresholds = {"rel_tol": 1e-5}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("size-grid")
        d = m["default"]
        failed = [p for p in m["points"] if not p["ok"]]
        if failed:
            first = failed[0]
            sizes = ", ".join(f"batch {p['batch']} time {p['time']}" for p in failed)
            yield ctx.finding(
                f"Works at batch {d['batch']} and time {d['time']} but fails for {sizes}; at "
                f"batch {first['batch']}, time {first['time']} it {_what_failed(first)}",
                "Keep the batch and time axes even when their size is 1: avoid squeeze(), "
                "hard-coded sizes and axes picked by their length",
                location=_loc(first, ctx.subject.location),
                evidence={"failed": failed, "default": d,
                          "grid": [[p["batch"], p["time"], p["ok"]] for p in m["points"]]},
            )
            return
        tol = ctx.threshold("rel_tol")
        if _mixing(ctx) or _time_leak(ctx):
            return  # GD104/GD105 explain differing numbers: samples or steps are mixed
        off = [p for p in m["points"] if p.get("rel_diff", 0.0) > tol]
        if off:
            worst = max(off, key=lambda p: p["rel_diff"])
            yield ctx.finding(
                f"At batch {worst['batch']}, time {worst['time']} the states of the same samples "
                f"differ from the batch {d['batch']}, time {d['time']} run by "
                f"{worst['max_abs_diff']:.3g} (relative {worst['rel_diff']:.2g}, "
                f"tolerance {tol:g})",
                "Make each sample's computation independent of the batch and sequence sizes",
                evidence={"points": m["points"], "default": d, "rel_tol": tol},
            )


def _mixing(ctx: CheckContext) -> bool:
    m = ctx.measurements.get("batch-dependence")
    if m is None:
        return False
    B = len(m["matrix"])
    off = max((m["matrix"][i][j] for i in range(B) for j in range(B) if i != j), default=0.0)
    return off > BatchSamplesMixed.thresholds["rel_tol"] * m["scale"]


def _time_leak(ctx: CheckContext) -> bool:
    m = ctx.measurements.get("time-dependence")
    if m is None:
        return False
    T = len(m["matrix"])
    upper = max((m["matrix"][t][s] for t in range(T) for s in range(t + 1, T)), default=0.0)
    return upper > TimeCausalityViolated.thresholds["rel_tol"] * m["scale"]


@register_check
class UnbatchedInputBroken(Check):
    """The subject claims to accept unbatched input, but that path fails or disagrees.

    ## What it checks
    For subjects that accept unbatched input (`x` of shape `(input_size,)` per step, like
    `nn.GRUCell` and `nn.GRU`), one sample is run through the unbatched path and compared with
    the same sample run as a batch of one.

    ## Why is this bad?
    Code that handles 1-D input by a separate branch (`if x.dim() == 1: ...`) is rarely tested:
    the branch forgets to unsqueeze the state, transposes the wrong axis, or returns `(1, H)`.

    ## How it is detected
    Probe `size-grid`. A raise or a wrong shape is reported; so is a relative difference
    (max |Δh| / max |h|) above `rel_tol`. Correct cells measure 0 (float64) or about 1e-7
    (float32); a broken branch measures 0.1 or more.

    ## Example
    ```python
    if x.dim() == 1:
        x = x.unsqueeze(1)          # (I,) -> (I, 1): a batch of I samples of size 1
    ```

    ## Use instead
    ```python
    if x.dim() == 1:
        x, h = x.unsqueeze(0), h.unsqueeze(0)
    ```
    """

    code = "GD103"
    name = "unbatched-input-broken"
    category = "bad-shapes"
    severity = Severity.WARNING
    requires = ("size-grid",)
    thresholds = {"rel_tol": 1e-5}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        u = ctx.m("size-grid")["unbatched"]
        if not u.get("supported"):
            raise SkipCheck("the subject does not accept unbatched input")
        if not u.get("ok"):
            yield ctx.finding(
                f"Unbatched input (x of shape ({ctx.subject.input_size},)) {_what_failed(u)}",
                "Unsqueeze the batch axis of both x and h on the way in and squeeze it on the "
                "way out, or reject 1-D input with a clear error",
                location=_loc(u, ctx.subject.location), evidence=u,
            )
            return
        tol = ctx.threshold("rel_tol")
        if u.get("rel_diff", 0.0) > tol:
            yield ctx.finding(
                f"Unbatched input gives states that differ from the same sample as a batch of "
                f"one by {u['max_abs_diff']:.3g} (relative {u['rel_diff']:.2g}, tolerance {tol:g})",
                "Make the unbatched branch add the batch axis at position 0 for x and h",
                evidence={**u, "rel_tol": tol},
            )


@register_check
class BatchSamplesMixed(Check):
    """One sample's states depend on the other samples in the batch.

    ## What it checks
    Each sample j of a batch of 3 is replaced in turn (its inputs at every step and its h0), and
    the change of every sample i is measured: the batch × batch matrix of max |Δh|. A correct
    cell or sequence model changes only sample j: the matrix is diagonal.

    ## Why is this bad?
    Samples that leak into each other make the loss of one example depend on which examples
    share its batch. The usual causes are a `view`/`reshape` where a transpose was meant (it
    reinterprets memory, so batch and time or batch and feature axes get interleaved), the wrong
    axis in a sum/mean/softmax, or statistics over the whole batch (`x.mean()`, `np.linalg.norm(h)`
    without an axis). Training still "works", which is why this survives.

    ## How it is detected
    Probe `batch-dependence` (finite replacement; no gradients needed). The largest off-diagonal
    entry, relative to max |h|, above `rel_tol` is an error. Correct cells in every convention
    measure exactly 0; a `reshape` instead of a transpose measures 0.42 (gates, NumPy) to 1.4
    (`view` of a batch-first input). The first step at
    which the leak appears is reported.

    ## Example
    ```python
    x = x.view(x.size(1), x.size(0), -1)     # x is (batch, time, input): this interleaves them
    ```

    ## Use instead
    ```python
    x = x.transpose(0, 1)                    # (batch, time, input) -> (time, batch, input)
    ```
    """

    code = "GD104"
    name = "batch-samples-mixed"
    category = "bad-shapes"
    severity = Severity.ERROR
    requires = ("batch-dependence",)
    thresholds = {"rel_tol": 1e-6}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("batch-dependence")
        mat = [list(map(float, row)) for row in m["matrix"]]
        B = len(mat)
        tol = ctx.threshold("rel_tol")
        pairs = [(mat[i][j], i, j) for i in range(B) for j in range(B) if i != j]
        worst, i, j = max(pairs)
        if worst / m["scale"] <= tol:
            return
        leaking = sum(1 for v, _, _ in pairs if v / m["scale"] > tol)
        step = m["first_changed_step"][i][j]
        at = f", starting at step {step}" if step >= 0 else ""
        yield ctx.finding(
            f"Samples are not independent: replacing sample {j} changes sample {i} by "
            f"{worst:.3g} (max |h| {m['scale']:.3g}){at}; {leaking} of {len(pairs)} sample pairs "
            f"leak into each other",
            "Use transpose/permute (not view/reshape) to swap axes, and give every sum, mean, "
            "norm and softmax an explicit feature axis",
            evidence={"matrix": [[float(f"{v:.4g}") for v in row] for row in mat],
                      "worst": {"changed": i, "replaced": j, "max_abs_diff": worst,
                                "first_step": step},
                      "scale": m["scale"], "rel_tol": tol, "leaking_pairs": leaking},
        )


@register_check
class TimeCausalityViolated(Check):
    """A state at step t depends on inputs after step t.

    ## What it checks
    The inputs of each step s (all samples) are replaced in turn and the change of every
    output step t is measured: the time × time matrix of max |Δh_t|. A causal recurrent model
    (one direction) never changes h_t for s > t: the matrix is lower-triangular.

    ## Why is this bad?
    States that see the future make training look excellent and inference (one step at a time)
    impossible. The usual causes are batch and time axes confused (`x.view(T, B, I)` on a
    batch-first tensor, iterating over `x` when it is batch-first), a sequence reversed on the
    way in but not on the way out, or a bidirectional layer whose two halves are summed into
    one state.

    ## How it is detected
    Probe `time-dependence` (finite replacement; no gradients needed). The largest entry above
    the diagonal, relative to max |h|, above `rel_tol` is an error. Correct cells and sequence
    models measure exactly 0; a batch/time `view` mix-up measures 1.2, a reversed sequence
    about 1. For cells grudiag runs the time loop itself, so this fires only on state kept inside
    the subject.

    ## Example
    ```python
    out, h = self.gru(x.view(x.size(1), x.size(0), -1))   # x is (batch, time, input)
    ```

    ## Use instead
    ```python
    out, h = self.gru(x.transpose(0, 1))
    ```
    """

    code = "GD105"
    name = "time-causality-violated"
    category = "bad-shapes"
    severity = Severity.ERROR
    requires = ("time-dependence",)
    thresholds = {"rel_tol": 1e-6}

    def judge(self, ctx: CheckContext) -> Iterator[Finding]:
        m = ctx.m("time-dependence")
        mat = [list(map(float, row)) for row in m["matrix"]]
        T = len(mat)
        tol = ctx.threshold("rel_tol")
        upper = [(mat[t][s], t, s) for t in range(T) for s in range(t + 1, T)]
        if not upper:
            return
        worst, t, s = max(upper)
        if worst / m["scale"] <= tol:
            return
        n_bad = sum(1 for v, _, _ in upper if v / m["scale"] > tol)
        yield ctx.finding(
            f"The state at step {t} changes by {worst:.3g} (max |h| {m['scale']:.3g}) when the "
            f"input at the later step {s} changes; {n_bad} of {len(upper)} (earlier state, later "
            f"input) pairs depend on the future",
            "Check the layout: transpose batch-first input to time-major with transpose/permute "
            "(not view/reshape), iterate over the time axis, and undo any reversal",
            evidence={"matrix": [[float(f"{v:.4g}") for v in row] for row in mat],
                      "worst": {"state_step": t, "input_step": s, "max_abs_diff": worst},
                      "scale": m["scale"], "rel_tol": tol, "future_pairs": n_bad},
        )
