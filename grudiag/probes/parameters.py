"""Parameter statistics per gate block, and whether hidden units are interchangeable copies.

Measures only; `checks/parameters.py` judges.

* ``parameter_blocks`` (static): for every parameter and every block of H rows/columns of a
  fused parameter ((3H, D), (D, 3H), (H+D, 3H), ...) the largest magnitude and the spread
  (max − min); whether it looks like a bias (1-D, or a column/row vector); and the unit-swap
  distance matrix: for hidden units i and j, the largest relative change of any parameter when
  units i and j are swapped on every axis that indexes hidden units. Units i and j are exact
  copies when swapping them changes nothing: then they compute the same value for ever.
* ``unit_copies`` (dynamic): the same question asked of behaviour. States from an h0 that is the
  same for every unit (so only the cell can tell units apart), then a few SGD steps on a random
  regression task whose loss reads the units out through their mean (it treats every unit
  alike, like any loss does when the readout is symmetric), then the states and the gradients
  again. Needs ``vjp`` for the training part.
"""
from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np

from ..subjects.base import GradientsUnavailable, Subject, SubjectError
from .base import Probe, ProbeContext, ProbeSkipped, register_probe

#: the pairwise unit comparison looks at the first units only when H is larger than this
MAX_UNITS = 48
SGD_STEPS = 2
SGD_LR = 1.0

_WEIGHT_NAME = re.compile(r"^(w|u|v|weight|kernel|recurrent)", re.I)
_BIAS_NAME = re.compile(r"^(b|bias)", re.I)


def is_bias_like(name: str, arr: np.ndarray) -> bool:
    """1-D arrays and vectors stored as (H, 1) / (1, 3H) / Keras' (2, 3H), unless named weights."""
    leaf = name.rsplit(".", 1)[-1].lstrip("_")
    if arr.ndim <= 1:
        return True
    if "bias" in leaf.lower() and arr.ndim == 2 and min(arr.shape) <= 2:
        return True
    if arr.ndim == 2 and min(arr.shape) == 1:
        return not _WEIGHT_NAME.match(leaf) or bool(_BIAS_NAME.match(leaf))
    return False


def gate_blocks(arr: np.ndarray, hidden: int) -> list[tuple[str, tuple]]:
    """Blocks of H rows (or columns) of a fused parameter, as (label, index) pairs."""
    if arr.ndim == 1:
        k = arr.shape[0] // hidden if arr.shape[0] % hidden == 0 else 1
        if k > 1:
            return [(f"[{i * hidden}:{(i + 1) * hidden}]", (slice(i * hidden, (i + 1) * hidden),))
                    for i in range(k)]
        return []
    if arr.ndim != 2:
        return [(f"[{i}]", (i,)) for i in range(arr.shape[0])] if arr.shape[0] <= 8 else []
    r, c = arr.shape
    kr = r // hidden if r % hidden == 0 else 1
    kc = c // hidden if c % hidden == 0 else 1
    if kr <= 1 and kc <= 1:
        return []
    if kr >= kc:
        return [(f"[{i * hidden}:{(i + 1) * hidden}, :]", (slice(i * hidden, (i + 1) * hidden),
                                                            slice(None))) for i in range(kr)]
    return [(f"[:, {i * hidden}:{(i + 1) * hidden}]", (slice(None), slice(i * hidden,
                                                                          (i + 1) * hidden)))
            for i in range(kc)]


def _stats(a: np.ndarray) -> dict[str, float]:
    return {"max_abs": float(np.max(np.abs(a))) if a.size else 0.0,
            "spread": float(np.ptp(a)) if a.size else 0.0,
            "mean": float(np.mean(a)) if a.size else 0.0,
            "std": float(np.std(a)) if a.size else 0.0,
            "size": int(a.size)}


# --- unit-swap distances -------------------------------------------------------------------------
def _axis_readings(n: int, hidden: int, inp: int) -> list[np.ndarray]:
    """Ways an axis of length n can index hidden units: positions of unit 0 in each gate block."""
    out = []
    if n % hidden == 0:
        out.append(np.arange(0, n, hidden))  # unit i sits at i + k·H
    elif n == hidden + inp:
        out.append(np.array([0]))  # [h, x]: units first
        out.append(np.array([inp]))  # [x, h]: units last
    return out


def unit_swap_distances(arr: np.ndarray, hidden: int, inp: int, units: int) -> np.ndarray | None:
    """(units, units) matrix: max |arr − arr with units i and j swapped|, minimised over readings.

    None when no axis of the array can index hidden units. Readings that put units on more than
    two axes are not tried (no GRU parameter has three hidden-sized axes).
    """
    per_axis = [[None, *_axis_readings(n, hidden, inp)] for n in arr.shape]
    options = [o for o in itertools.product(*per_axis)
               if 1 <= sum(x is not None for x in o) <= 2]
    if not options:
        return None
    return np.min([_swap_distances(arr, option, units) for option in options], axis=0)


def _swap_distances(arr: np.ndarray, option: tuple, units: int) -> np.ndarray:
    """All unit pairs at once for one reading: the unit axes are moved first and every other
    axis is flattened into one trailing axis, so only entries a swap can move are compared."""
    unit_axes = [ax for ax, starts in enumerate(option) if starts is not None]
    rest = [ax for ax in range(arr.ndim) if ax not in unit_axes]
    a = np.transpose(arr, unit_axes + rest).reshape(*(arr.shape[ax] for ax in unit_axes), -1)
    splits = [_unit_positions(arr.shape[ax], option[ax], units) for ax in unit_axes]
    if len(unit_axes) == 1:
        (pos, _), = splits
        return _pairwise_max(a[pos])  # (units, K, rest)
    (rpos, rother), (cpos, cother) = splits
    U = a[rpos][:, :, cpos]  # (units, K0, units, K1, rest)
    d = np.maximum(_pairwise_max(a[rpos][:, :, cother]),  # unit rows × other columns
                   _pairwise_max(np.moveaxis(a[rother][:, cpos], 1, 0)))  # other rows × unit cols
    idx = np.arange(units)
    # unit rows × unit columns: row i against row j off the columns of i and j ...
    for V in (np.moveaxis(U, 2, 1), np.transpose(U, (2, 0, 1, 3, 4))):  # (swapped, fixed, ...)
        per = _pairwise_max(V, keep_axis=True)  # [i, j, fixed unit]
        per[idx[:, None], idx[None, :], idx[:, None]] = 0.0
        per[idx[:, None], idx[None, :], idx[None, :]] = 0.0
        d = np.maximum(d, per.max(axis=2))
    # ... and the four entries where both coordinates are i or j
    diag = U[idx, :, idx]  # (units, K0, K1, rest): U[i, :, i]
    d = np.maximum(d, _pairwise_max(diag))
    cross = np.abs(U - np.transpose(U, (2, 1, 0, 3, 4)))  # U[i, :, j] vs U[j, :, i]
    return np.maximum(d, cross.max(axis=(1, 3, 4), initial=0.0))


def _unit_positions(n: int, starts: np.ndarray, units: int) -> tuple[np.ndarray, np.ndarray]:
    """(units, K) positions of each compared unit along an axis, and every other position."""
    pos = np.arange(units)[:, None] + starts[None, :]
    return pos, np.setdiff1d(np.arange(n), pos.ravel())


def _pairwise_max(X: np.ndarray, keep_axis: bool = False) -> np.ndarray:
    """[i, j] = max |X[i] − X[j]| over all other axes; with ``keep_axis``, X[i] is (m, ...) and
    the result is [i, j, m], the maximum over the axes after m."""
    n = X.shape[0]
    m = X.shape[1] if keep_axis else 1
    flat = X.reshape(n, m, -1)
    out = np.zeros((n, n, m))
    if flat.shape[2]:
        # blocks of rows bound the memory of the difference tensor; one buffer for all blocks
        # (allocating it per block took half the time at large hidden sizes)
        buf = np.empty((min(8, n), n, m, flat.shape[2]))
        for lo in range(0, n, 8):
            diff = buf[:min(8, n - lo)]
            np.subtract(flat[lo:lo + 8, None], flat[None], out=diff)
            np.abs(diff, out=diff)
            diff.max(axis=3, out=out[lo:lo + 8])
    return out if keep_axis else out[:, :, 0]


def pairwise_unit_distance(arrays: dict[str, np.ndarray], hidden: int, inp: int,
                           units: int) -> tuple[np.ndarray, list[str]]:
    """Largest relative unit-swap change over all arrays (each relative to its own max |value|)."""
    total = np.zeros((units, units))
    used = []
    for name, arr in arrays.items():
        if arr is None or arr.size == 0:
            continue
        d = unit_swap_distances(np.asarray(arr, dtype=np.float64), hidden, inp, units)
        if d is None:
            continue
        used.append(name)
        scale = float(np.max(np.abs(arr)))
        if scale > 0 and np.isfinite(scale):
            total = np.maximum(total, d / scale)
    return total, used


def state_distances(hs: np.ndarray, units: int) -> tuple[np.ndarray, float]:
    """(units, units) max |h_i − h_j| over steps and samples, relative to max |h|."""
    flat = hs.reshape(-1, hs.shape[-1])[:, :units]
    scale = float(np.max(np.abs(flat))) if flat.size else 0.0
    d = np.max(np.abs(flat[:, :, None] - flat[:, None, :]), axis=0)
    return (d / scale if scale > 0 else d), scale


# --- probes --------------------------------------------------------------------------------
@register_probe
class ParameterBlocksProbe(Probe):
    """Per-parameter and per-gate-block statistics, and the unit-swap distance matrix."""

    name = "parameter_blocks"
    title = "Parameter statistics per gate block"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        params = {k: np.asarray(v, dtype=np.float64) for k, v in subject.parameters().items()}
        if not params:
            raise ProbeSkipped("the subject exposes no parameters (no array attributes, "
                               "parameters or params dict)")
        H, D = subject.hidden_size, subject.input_size
        units = min(H, MAX_UNITS)
        entries = []
        for name, arr in params.items():
            bias = is_bias_like(name, arr)
            blocks = [{"label": f"{name}{label}", **_stats(arr[index])}
                      for label, index in gate_blocks(arr, H)]
            entries.append({"name": name, "shape": list(arr.shape), "bias": bias,
                            **_stats(arr), "blocks": blocks})
        dist, used = pairwise_unit_distance(params, H, D, units)
        return {
            "parameters": entries,
            "unit_distance": dist.tolist(),
            "unit_axes_in": used,
            "units_compared": units,
            "hidden_size": H,
            "locations": {k: v.to_dict() for k, v in subject.parameter_locations().items()},
        }


@register_probe
class UnitCopiesProbe(Probe):
    """Do hidden units behave as copies: same states, and same gradients after SGD steps?"""

    name = "unit_copies"
    title = "Hidden-unit copies: states and gradients before and after a few SGD steps"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        H = subject.hidden_size
        units = min(H, MAX_UNITS)
        if H < 2:
            raise ProbeSkipped("the subject has a single hidden unit")
        rng = ctx.rng("unit-copies")
        T, B = ctx.steps, ctx.options.batch
        xs = rng.normal(size=(T, B, subject.input_size))
        # the same h0 value for every unit of a sample: only the cell itself can tell units apart
        h0 = np.repeat(rng.uniform(-0.5, 0.5, size=(B, 1)), H, axis=1)
        if not getattr(subject, "accepts_h0", True):
            h0 = np.zeros_like(h0)
        hs = subject.run(xs, h0)
        d0, scale0 = state_distances(hs, units)
        out: dict[str, Any] = {
            "units_compared": units,
            "state_distance_init": d0.tolist(),
            "state_scale_init": scale0,
            "trained": False,
            "train_skip_reason": None,
            "steps": SGD_STEPS,
            "lr": SGD_LR,
        }
        if subject.gradient_source is None:
            out["train_skip_reason"] = "the subject offers no gradients (no autograd, no backward)"
            return out
        y = rng.normal(size=(T, B))
        current = subject.fresh()
        params = {k: np.asarray(v, dtype=np.float64).copy()
                  for k, v in current.parameters().items()}
        losses = []
        grads = None
        try:
            for step in range(SGD_STEPS + 1):
                # the untrained states are the ones measured above: one forward pass fewer
                hs_k = hs if step == 0 else current.run(xs, h0)
                err = hs_k.mean(axis=-1) - y
                losses.append(float(0.5 * np.mean(err ** 2)))
                dhs = np.repeat((err / (H * T * B))[..., None], H, axis=-1)
                grads = current.vjp(xs, h0, dhs)
                if len(losses) > SGD_STEPS:
                    break
                for name, g in grads.params.items():
                    if g is not None and name in params and np.shape(g) == params[name].shape:
                        params[name] = params[name] - SGD_LR * np.asarray(g, dtype=np.float64)
                current = current.with_parameters(params)
        except GradientsUnavailable as exc:
            out["train_skip_reason"] = f"gradients are unavailable: {exc}"
            return out
        except SubjectError as exc:
            out["train_skip_reason"] = f"training the copy failed: {exc.message}"
            return out
        xs2 = rng.normal(size=(T, B, subject.input_size))
        hs2 = current.run(xs2, h0)
        d1, scale1 = state_distances(hs2, units)
        garrays = {f"d{k}": v for k, v in grads.params.items() if v is not None}
        garrays["dh0"] = grads.h0
        gd, gused = pairwise_unit_distance(garrays, H, subject.input_size, units)
        out.update(
            trained=True,
            losses=losses,
            state_distance_trained=d1.tolist(),
            state_scale_trained=scale1,
            gradient_distance=gd.tolist(),
            gradient_arrays=gused,
            gradient_scale=float(max((np.max(np.abs(v)) for v in garrays.values() if v.size),
                                     default=0.0)),
        )
        return out
