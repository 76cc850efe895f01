"""Central finite differences in float64 on `Subject.run`: the ground truth for gradient checks.

A shared utility (not a probe): every function here only *runs* the subject, on perturbed
copies of its inputs and parameters (`with_parameters`), so it works for every subject style,
including those that offer no gradients at all.

The objective is always the scalar ``f = sum(dhs * run(xs, h0))`` that `Subject.vjp` differentiates,
so a directional finite difference ``(f(p + eps u) - f(p - eps u)) / 2 eps`` is directly
comparable with ``<vjp(...), u>`` (gradcheck's "fast mode": one number per direction, so the
cost does not grow with the parameter count).

Accuracy: with eps = 1e-6 and unit-norm directions the truncation error is O(eps^2) ~ 1e-12 and
the round-off O(1e-16 |f| / eps) ~ 1e-10 |f|, so on a correct float64 GRU analytic and numeric
directional derivatives agree to ~1e-9 relative. Subjects that compute in float32 internally
make that impossible (round-off ~1e-7/1e-6 = 10 %); `computes_in_float32` detects them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..subjects.base import SubjectError, Subject

#: default step for central differences in float64 (unit-norm directions)
DEFAULT_EPS = 1e-6
#: step used where a float32-only subject must still be differentiated (Jacobian spectra)
FLOAT32_EPS = 1e-3


def objective(subject: Subject, xs: np.ndarray, h0: np.ndarray, dhs: np.ndarray) -> float:
    """``sum(dhs * run(xs, h0))`` in float64."""
    hs = subject.run(xs, h0)
    return float(np.sum(np.asarray(dhs, dtype=np.float64) * hs))


def computes_in_float32(hs: np.ndarray) -> bool:
    """True when every non-zero state is exactly representable in float32.

    A float64 computation essentially never lands on float32-representable numbers, so this
    identifies subjects that compute in float32 internally (a float32 module, `astype(np.float32)`).
    """
    hs = np.asarray(hs, dtype=np.float64)
    finite = hs[np.isfinite(hs) & (hs != 0)]
    if finite.size < 4:
        return False
    return bool(np.all(finite.astype(np.float32).astype(np.float64) == finite))


def unit_direction(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A random N(0, 1) direction scaled to unit Frobenius norm (private RNG)."""
    u = rng.normal(size=shape)
    norm = np.linalg.norm(u)
    return u / norm if norm > 0 else u


def directional(subject: Subject, xs: np.ndarray, h0: np.ndarray, dhs: np.ndarray, *,
                dxs: np.ndarray | None = None, dh0: np.ndarray | None = None,
                dparams: Mapping[str, np.ndarray] | None = None,
                eps: float = DEFAULT_EPS) -> float:
    """Central difference of ``sum(dhs * run)`` along (dxs, dh0, dparams), any of them None."""
    values = []
    params = subject.parameters() if dparams else {}
    for sign in (1.0, -1.0):
        s = subject
        if dparams:
            s = subject.with_parameters(
                {n: params[n] + sign * eps * np.asarray(d, dtype=np.float64)
                 for n, d in dparams.items()})
        x = xs if dxs is None else xs + sign * eps * dxs
        h = h0 if dh0 is None else h0 + sign * eps * dh0
        values.append(objective(s, x, h, dhs))
    return (values[0] - values[1]) / (2.0 * eps)


def directionals(subject: Subject, xs: np.ndarray, h0: np.ndarray, dhs: np.ndarray,
                 directions: list[tuple[np.ndarray | None, np.ndarray | None]],
                 eps: float = DEFAULT_EPS) -> np.ndarray:
    """`directional` along each ``(dxs, dh0)`` of ``directions``, all 2·n perturbed runs in one
    call (see `objectives`)."""
    runs = []
    for dxs, dh0 in directions:
        for sign in (1.0, -1.0):
            runs.append((xs if dxs is None else xs + sign * eps * dxs,
                         h0 if dh0 is None else h0 + sign * eps * dh0))
    f = objectives(subject, runs, dhs)
    return (f[0::2] - f[1::2]) / (2.0 * eps)


def objectives(subject: Subject, runs: list[tuple[np.ndarray, np.ndarray]],
               dhs: np.ndarray) -> np.ndarray:
    """``sum(dhs * run(xs_i, h0_i))`` for every ``(xs_i, h0_i)`` of ``runs``, side by side."""
    return np.array([float(np.sum(dhs * hs)) for hs in side_by_side(subject.run, runs)])


def side_by_side(run: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 runs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """``run(xs_i, h0_i)`` for every ``(xs_i, h0_i)`` of ``runs`` (same shapes).

    All runs side by side in ONE call of batch n·B, because each call into the user's code
    costs more than its arithmetic at these sizes; only when that gives what separate calls
    give (the last run is repeated alone to compare): a cell that mixes its samples (a
    bad-shapes defect) or refuses a large batch is run once per case.
    """
    B = runs[0][1].shape[0]
    if len(runs) > 1:
        try:
            hs = np.asarray(run(np.concatenate([x for x, _ in runs], axis=1),
                                np.concatenate([h for _, h in runs])), dtype=np.float64)
        except SubjectError:
            hs = None
        if hs is not None and hs.shape[1] == len(runs) * B:
            parts = [hs[:, i * B:(i + 1) * B] for i in range(len(runs))]
            alone = np.asarray(run(*runs[-1]), dtype=np.float64)
            if np.allclose(parts[-1], alone, rtol=1e-9, atol=1e-12, equal_nan=True):
                return parts
    return [np.asarray(run(x, h), dtype=np.float64) for x, h in runs]


def fresh_steps(subject: Subject, cases: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """``subject.fresh().step(x_i, h_i)`` for every ``(x_i, h_i)`` of ``cases`` (same shapes),
    side by side (see `side_by_side`): a fresh copy per call, so no state carries over."""
    def run(xs: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.asarray(subject.fresh().step(xs[0], h), dtype=np.float64)[None]
    return [hs[0] for hs in side_by_side(run, [(x[None], h) for x, h in cases])]


def entrywise(subject: Subject, xs: np.ndarray, h0: np.ndarray, dhs: np.ndarray, group: str,
              name: str | None = None, eps: float = DEFAULT_EPS) -> np.ndarray:
    """The full numeric gradient of one block, entry by entry (2 runs per entry).

    ``group`` is ``"xs"``, ``"h0"`` or ``"param"`` (then ``name`` is the parameter's name).
    Meant for small blocks only: the cost is 2 × size runs.
    """
    if group == "xs":
        base = xs
    elif group == "h0":
        base = h0
    else:
        base = subject.parameters()[name]
    grad = np.zeros(np.shape(base), dtype=np.float64)
    for idx in np.ndindex(grad.shape):
        e = np.zeros_like(grad)
        e[idx] = 1.0
        if group == "xs":
            grad[idx] = directional(subject, xs, h0, dhs, dxs=e, eps=eps)
        elif group == "h0":
            grad[idx] = directional(subject, xs, h0, dhs, dh0=e, eps=eps)
        else:
            grad[idx] = directional(subject, xs, h0, dhs, dparams={name: e}, eps=eps)
    return grad


def step_tangents(subject: Subject, x: np.ndarray, h: np.ndarray, Q: np.ndarray,
                  eps: float = DEFAULT_EPS, *, stacked: bool = True) -> np.ndarray:
    """``J·Q`` of one step for every sample: (B, H, k), with J = ∂h_new/∂h and Q (B, H, k)
    a set of k tangent directions per sample (unit columns).

    2·k one-step runs. ``stacked``: all of them in ONE call of batch 2·k·B, because the
    per-call overhead of the user's code, not the arithmetic, dominates small cells; that is
    only valid for a cell whose samples are independent (see `step_tangents_checked`).
    """
    B, H, k = Q.shape
    if not stacked:
        def column(j: int) -> np.ndarray:
            d = eps * Q[:, :, j]
            return (subject.step(x, h + d) - subject.step(x, h - d)) / (2.0 * eps)
        return np.stack([column(j) for j in range(k)], axis=2)
    d = eps * np.moveaxis(Q, 2, 0)  # (k, B, H): direction j of every sample
    h_big = np.concatenate([(h[None] + d).reshape(k * B, H), (h[None] - d).reshape(k * B, H)])
    out = subject.step(np.tile(x, (2 * k, 1)), h_big)
    plus, minus = out[:k * B].reshape(k, B, H), out[k * B:].reshape(k, B, H)
    return np.moveaxis((plus - minus) / (2.0 * eps), 0, 2)


def step_tangents_checked(subject: Subject, x: np.ndarray, h: np.ndarray, Q: np.ndarray,
                          eps: float = DEFAULT_EPS) -> tuple[np.ndarray, bool]:
    """`step_tangents`, stacked in one batch when that measures what one direction at a time
    measures (the last direction is re-run on its own to compare); returns ``(J·Q, stacked)``.

    A cell that mixes its samples (a bad-shapes defect) or refuses large batches must not get
    a made-up Jacobian from copies stacked in one batch.
    """
    try:
        stacked = step_tangents(subject, x, h, Q, eps)
    except SubjectError:
        stacked = None
    if stacked is not None:
        direct = step_tangents(subject, x, h, Q[:, :, -1:], eps, stacked=False)
        if np.allclose(stacked[:, :, -1:], direct, rtol=1e-6, atol=1e-8):
            return stacked, True
    return step_tangents(subject, x, h, Q, eps, stacked=False), False


def input_sensitivity(subject: Subject, xs: np.ndarray, h0: np.ndarray, v: np.ndarray, t: int,
                      eps: float = DEFAULT_EPS) -> np.ndarray:
    """``∂(sum(v * h_T))/∂x_t`` for every sample: (B, I), by 2·I full runs."""
    T, B, I = xs.shape
    g = np.zeros((B, I))
    for i in range(I):
        e = np.zeros_like(xs)
        e[t, :, i] = eps
        hp = subject.run(xs + e, h0)[-1]
        hm = subject.run(xs - e, h0)[-1]
        g[:, i] = np.sum(v * (hp - hm), axis=1) / (2.0 * eps)
    return g


def relative_error(analytic: float | np.ndarray, numeric: float | np.ndarray,
                   floor: float = 0.0) -> float:
    """``|a - n| / max(|a|, |n|, floor)`` (Frobenius norms for arrays); 0 when both are 0."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    diff = float(np.linalg.norm(a - n))
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(n)), floor)
    return diff / scale if scale > 0 else 0.0
