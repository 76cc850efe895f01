"""Record every gate activation (sigmoid/tanh output) on realistic inputs, and find the update gate.

Measures only; `checks/gates.py` judges. Inputs: x ~ N(0, 1), h0 ~ U(-0.5, 0.5), T = 8 steps,
a batch size that is not a multiple of the hidden size (so the unit axis of every recorded
output is unambiguous). The subject's own parameters: this is the cell *at init* when the file
builds it fresh.

The update gate is identified by measurement, not by name: of the recorded sigmoid outputs
(each split into blocks of H units, so a fused ``sigmoid(...)`` over r|z counts as two), the one
``z`` that, with a recorded tanh output ``n`` and the previous state, explains every new state
as ``h' = z⊙h + (1−z)⊙n`` or ``h' = (1−z)⊙h + z⊙n`` (relative residual below 1e-5).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..subjects.base import Subject
from .activations import ActivationRecorder, blocks_of, describe_chain, short
from .base import Probe, ProbeContext, ProbeSkipped, register_probe

TIME = 8
#: a blend explains the states when max|h' − blend| ≤ this × max(1, max|h'|)
BLEND_RTOL = 1e-5


def probe_batch(hidden: int) -> int:
    for b in (8, 9, 10, 11, 13, 17):
        if hidden == 1 or (b % hidden and hidden % b):
            return b
    return 8


@register_probe
class GateActivationsProbe(Probe):
    """Record the sigmoid/tanh outputs computed inside the forward pass, per call site."""

    name = "gate_activations"
    title = "Gate activations (sigmoid/tanh outputs) on x ~ N(0, 1)"

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        H = subject.hidden_size
        B = probe_batch(H)
        xs, h0 = ctx.inputs(subject, "gate-activations", time=TIME, batch=B)
        if not getattr(subject, "accepts_h0", True):
            h0 = np.zeros_like(h0)
        with ActivationRecorder(subject) as rec:
            hs = subject.run(xs, h0)
        sites = rec.sites()
        if not sites:
            builtin = _builtin_gates(subject, xs, h0, hs)
            if builtin is None:
                raise ProbeSkipped(_nothing_recorded(subject, rec.patched))
            return {"gates": builtin[0], "update_gate": builtin[1], "time": TIME, "batch": B,
                    "patched": [], "x_scale": 1.0, "builtin": True}

        firsts = [recs[0].location for recs in sites.values()]
        gates = []
        for key, recs in sites.items():
            kind = recs[0].kind
            chain = recs[0].chain
            shared = sum(1 for f in firsts if f == chain[0]) > 1 if chain else False
            where = describe_chain(chain) if shared else (short(chain[0]) if chain else recs[0].via)
            per_call = [blocks_of(r.output, H, B) for r in recs]
            if any(p is None for p in per_call) or len({len(p) for p in per_call}) != 1:
                flat = np.concatenate([r.output.ravel() for r in recs])
                gates.append(_gate(kind, where, chain, recs[0].via, 0, 1, flat[:, None],
                                   len(recs), aligned=None, unit_axis=False))
                continue
            nblocks = len(per_call[0])
            aligned = (len(recs) == TIME and all(p[0].shape[0] == B for p in per_call))
            for k in range(nblocks):
                values = np.concatenate([p[k] for p in per_call], axis=0)  # (calls*N, H)
                stepwise = np.stack([p[k] for p in per_call]) if aligned else None  # (T, B, H)
                gates.append(_gate(kind, where, chain, recs[0].via, k, nblocks, values,
                                   len(recs), aligned=stepwise, unit_axis=True))

        update = _find_update_gate(gates, hs, h0)
        for g in gates:
            steps = g.pop("_steps", None)
            if steps is not None:  # (T, B, H): the mean over the batch feeds the heatmap
                g["time_unit"] = steps.mean(axis=1)
        return {
            "gates": gates,
            "update_gate": update,
            "time": TIME,
            "batch": B,
            "patched": rec.patched,
            "x_scale": 1.0,
        }

    def summarize(self, data: dict[str, Any]) -> dict[str, Any]:
        """Reports keep a histogram of each gate's values, not the values themselves."""
        out = dict(data)
        out["gates"] = []
        for g in data["gates"]:
            low = -1.0 if g["kind"] == "tanh" else 0.0
            counts, edges = np.histogram(np.asarray(g["values"]).ravel(), bins=40, range=(low, 1.0))
            kept = {k: v for k, v in g.items() if k != "values"}
            kept["histogram"] = {"edges": edges, "counts": counts}
            out["gates"].append(kept)
        return out


def _gate(kind: str, where: str, chain: tuple, via: str, block: int, nblocks: int,
          values: np.ndarray, calls: int, aligned: np.ndarray | None, unit_axis: bool) -> dict:
    name = f"the {kind} at {where}"
    if nblocks > 1:
        H = values.shape[1]
        name = f"units {block * H}–{(block + 1) * H - 1} of {name}"
    role = "candidate" if kind == "tanh" else "gate"
    return {
        "name": name,
        "kind": kind,
        "where": where,
        #: the subject of a sentence about this gate, and of one about it as the update gate
        "title": f"the {role} computed at {where} ({kind})" if nblocks == 1 else
                 f"{name} (block {block + 1} of {nblocks})",
        "update_title": f"the update gate (computed at {where}",
        "via": via,
        "location": chain[0].to_dict() if chain else None,
        "block": block,
        "blocks": nblocks,
        "calls": calls,
        "unit_axis": unit_axis,
        "values": values,  # (samples, units); units = H when unit_axis
        "mean": float(np.mean(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
        "_steps": aligned,
    }


def _find_update_gate(gates: list[dict], hs: np.ndarray, h0: np.ndarray) -> dict | None:
    """The sigmoid block z and tanh block n with h' = z⊙h + (1−z)⊙n (or the flip), if any."""
    h_prev = np.concatenate([h0[None], hs[:-1]], axis=0)
    scale = max(1.0, float(np.max(np.abs(hs))))
    zs = [(i, g) for i, g in enumerate(gates) if g["kind"] == "sigmoid" and g["_steps"] is not None]
    ns = [(i, g) for i, g in enumerate(gates) if g["kind"] == "tanh" and g["_steps"] is not None]
    fits = []
    for i, zg in zs:
        z = zg["_steps"]
        if z.shape != hs.shape:
            continue
        for j, ng in ns:
            n = ng["_steps"]
            if n.shape != hs.shape:
                continue
            keep_z = float(np.max(np.abs(hs - (z * h_prev + (1 - z) * n)))) / scale
            keep_1mz = float(np.max(np.abs(hs - ((1 - z) * h_prev + z * n)))) / scale
            for res, form in ((keep_z, "z*h+(1-z)*n"), (keep_1mz, "(1-z)*h+z*n")):
                if res <= BLEND_RTOL:
                    fits.append((res, i, j, form))
    if not fits:
        return None
    fits.sort()
    res, i, j, form = fits[0]
    return {
        "gate": i,
        "candidate": j,
        "form": form,
        #: the fraction of h_prev kept is z for "z*h+(1-z)*n" and 1 - z for "(1-z)*h+z*n"
        "keep_is_z": form == "z*h+(1-z)*n",
        "residual": res,
        "ambiguous": len({f[1] for f in fits}) > 1,
        "name": gates[i]["name"],
        "candidate_name": gates[j]["name"],
    }


def _builtin_gates(subject: Subject, xs: np.ndarray, h0: np.ndarray,
                   hs: np.ndarray) -> tuple[list[dict], dict] | None:
    """nn.GRU / nn.GRUCell compute their gates inside a fused kernel, where nothing can be
    recorded; their equations are known (PyTorch's, r|z|n), so compute the gates from their
    parameters and the recorded states, and keep them only if they reproduce every state."""
    try:
        from torch import nn
    except ImportError:  # pragma: no cover
        return None
    module = getattr(subject, "module", None)
    if not isinstance(module, nn.GRU | nn.GRUCell):
        return None
    params = subject.parameters()

    def get(stem: str) -> np.ndarray | None:
        for key in (stem, f"{stem}_l0"):
            if key in params:
                return np.asarray(params[key], dtype=np.float64)
        return None

    w_ih, w_hh = get("weight_ih"), get("weight_hh")
    H = subject.hidden_size
    if w_ih is None or w_hh is None or w_ih.shape[0] != 3 * H or w_hh.shape != (3 * H, H) \
            or w_ih.shape[1] != xs.shape[-1]:
        return None
    b_ih = get("bias_ih")
    b_hh = get("bias_hh")
    b_ih = np.zeros(3 * H) if b_ih is None else b_ih
    b_hh = np.zeros(3 * H) if b_hh is None else b_hh
    h_prev = np.concatenate([h0[None], hs[:-1]], axis=0)
    gi = xs @ w_ih.T + b_ih
    gh = h_prev @ w_hh.T + b_hh
    sig = lambda a: np.exp(-np.logaddexp(0.0, -a))  # noqa: E731
    r = sig(gi[..., :H] + gh[..., :H])
    z = sig(gi[..., H:2 * H] + gh[..., H:2 * H])
    n = np.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
    if np.max(np.abs((1 - z) * n + z * h_prev - hs)) > BLEND_RTOL * max(1.0, np.max(np.abs(hs))):
        return None
    kind_name = type(module).__name__
    chain = (subject.location,) if subject.location is not None else ()
    gates = []
    for label, kind, values in (("reset gate r", "sigmoid", r), ("update gate z", "sigmoid", z),
                                ("candidate n", "tanh", n)):
        g = _gate(kind, f"the {label} of {kind_name}", chain, f"{kind_name} kernel", 0, 1,
                  values.reshape(-1, H), TIME, aligned=None, unit_axis=True)
        g["name"] = f"the {label} inside nn.{kind_name}"
        g["where"] = f"nn.{kind_name}"
        g["title"] = f"the {label} of nn.{kind_name} (computed from its weights)"
        g["update_title"] = f"the update gate z of nn.{kind_name} (computed from its weights"
        g.pop("_steps", None)
        gates.append(g)
    update = {"gate": 1, "candidate": 2, "form": "z*h+(1-z)*n", "keep_is_z": True,
              "residual": 0.0, "ambiguous": False, "name": gates[1]["name"],
              "candidate_name": gates[2]["name"]}
    return gates, update


def _nothing_recorded(subject: Subject, patched: list[str]) -> str:
    if subject.backend == "torch":
        return ("no sigmoid or tanh call could be recorded: the cell computes its gates in a "
                "fused built-in kernel (nn.GRU/nn.GRUCell) or without torch.sigmoid/torch.tanh")
    what = ", ".join(patched[:6]) if patched else "nothing"
    return ("no sigmoid or tanh call could be recorded: grudiag intercepts np.tanh and "
            "functions or methods named like sigmoid/tanh in the subject's module "
            f"(intercepted here: {what})")
