"""Instrument a training run through public PyTorch hooks, and record what each step saw.

Installed by `Recorder.install()` before the user's script runs, removed by `uninstall()`:

- global optimizer-step pre/post hooks (`torch.optim.optimizer.register_optimizer_step_*_hook`):
  the gradient norms the optimizer is about to apply, non-finite gradients and parameters, the
  update-to-weight ratio;
- a wrap of `torch.Tensor.backward` / `torch.autograd.backward`: the loss, and the *raw*
  gradient norms right after backward (so manual clipping, `p.grad.mul_(…)`, shows up as a
  difference between the raw norm and the norm at step time);
- wraps of `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_` (both namespaces): that
  clipping was called, its threshold and the norm it saw;
- a global module forward hook (`torch.nn.modules.module.register_module_forward_hook`): which
  modules ran, which are recurrent, and on every `sample_every`-th step the gradient flow through
  time, ‖∂loss/∂h_t‖, from hooks on the recurrent modules' outputs (cells) or from a replay of
  the sequence one step at a time (`nn.GRU`/`nn.RNN`/`nn.LSTM`). This hook is registered only
  for sampled steps (it slows every module call), so modules first run on other steps are
  discovered at the next sampled step.

Everything is measured with `torch.no_grad()` on detached tensors; the user's gradients,
parameters and global RNG state are never changed.
"""
from __future__ import annotations

import inspect
import math
import os
import sys
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

#: sample the flow through time and per-module norms on every k-th optimizer step
DEFAULT_SAMPLE_EVERY = 20
#: a step whose norm fell below raw × (1 − this) had its gradients reduced between backward
#: and step: clipping (or any rescaling) was in effect
CLIP_RTOL = 1e-4
#: longest sequence replayed for the flow through time of a sequence module
MAX_REPLAY_STEPS = 256

_BUILTIN_RECURRENT = (nn.RNNBase, nn.RNNCellBase)


class StopRun(BaseException):
    """Raised from the optimizer-step hook once --max-steps steps are done (private)."""


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _norms(tensors: list[torch.Tensor]) -> list[float]:
    if not tensors:
        return []
    with torch.no_grad():
        try:
            out = torch._foreach_norm([t.detach() for t in tensors])
        except (RuntimeError, TypeError, AttributeError):
            out = [torch.linalg.vector_norm(t.detach()) for t in tensors]
        return torch.stack([o.float() for o in out]).tolist()


def _combine(norms: list[float]) -> float:
    return math.sqrt(sum(n * n for n in norms)) if norms else 0.0


class Recorder:
    """Records one training run. `on_step(record)` is called after every optimizer step."""

    def __init__(self, *, max_steps: int | None = None, sample_every: int = DEFAULT_SAMPLE_EVERY,
                 seed: int = 0, on_step: Callable[[dict[str, Any]], None] | None = None):
        self.max_steps = max_steps
        self.sample_every = max(1, int(sample_every))
        self.on_step = on_step
        self._gen = torch.Generator().manual_seed(seed)
        self.steps: list[dict[str, Any]] = []
        self.flow: list[dict[str, Any]] = []
        self.recurrent: dict[str, str] = {}  # module label -> class name
        self.first_nonfinite_loss: dict[str, Any] | None = None
        self._handles: list[Any] = []
        self._patched: list[tuple[Any, str, Any]] = []
        self._modules: weakref.WeakSet[nn.Module] = weakref.WeakSet()
        self._kind: dict[type, str | None] = {}
        self._names: dict[int, str] = {}
        self._names_dirty = True
        self._optim_params: dict[int, Any] = {}  # id(param) -> weakref(param)
        self._raw_sq: dict[int, float] | None = None
        self._losses: list[float] = []
        self._clip: list[dict[str, Any]] = []
        self._in_backward = False
        self._in_replay = False
        self._cell_grads: dict[str, list[tuple[int, float]]] = {}
        self._cell_calls: dict[str, int] = {}
        self._before: dict[int, list[torch.Tensor]] = {}
        self._pending: dict[int, dict[str, Any]] = {}
        self.step_count = 0
        #: where the script calls optimizer.step() (file, line), found on the first step
        self.step_site: dict[str, Any] | None = None

    # ------------------------------------------------------------------ install / uninstall
    def install(self) -> Recorder:
        from torch.nn.modules import module as module_mod
        from torch.optim import optimizer as optim_mod

        self._handles.append(optim_mod.register_optimizer_step_pre_hook(self._pre_step))
        self._handles.append(optim_mod.register_optimizer_step_post_hook(self._post_step))
        self._fwd_handle = None
        self._set_forward_hook(True)
        self._patch(torch.Tensor, "backward", self._wrap_backward(torch.Tensor.backward, True))
        self._patch(torch.autograd, "backward", self._wrap_backward(torch.autograd.backward, False))
        import torch.nn.utils as nn_utils
        import torch.nn.utils.clip_grad as clip_mod

        for name in ("clip_grad_norm_", "clip_grad_value_", "clip_grad_norm"):
            original = getattr(clip_mod, name, None)
            if original is None:
                continue
            wrapped = self._wrap_clip(original, name)
            for ns in (clip_mod, nn_utils):
                if getattr(ns, name, None) is original:
                    self._patch(ns, name, wrapped)
        return self

    def _set_forward_hook(self, on: bool) -> None:
        """The global forward hook puts every module call on PyTorch's slow path, so it is only
        present on sampled steps (discovery happens on step 0, which is sampled)."""
        from torch.nn.modules import module as module_mod

        if on and self._fwd_handle is None:
            self._fwd_handle = module_mod.register_module_forward_hook(self._forward_hook,
                                                                       with_kwargs=True)
        elif not on and self._fwd_handle is not None:
            self._fwd_handle.remove()
            self._fwd_handle = None

    def uninstall(self) -> None:
        self._set_forward_hook(False)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)
        self._patched.clear()

    def _patch(self, owner: Any, name: str, new: Any) -> None:
        self._patched.append((owner, name, getattr(owner, name)))
        setattr(owner, name, new)

    # ------------------------------------------------------------------ wraps
    def _wrap_backward(self, original: Callable, is_method: bool) -> Callable:
        recorder = self

        def backward(*args: Any, **kwargs: Any) -> Any:
            if recorder._in_backward:
                return original(*args, **kwargs)
            recorder._in_backward = True
            try:
                result = original(*args, **kwargs)
            finally:
                recorder._in_backward = False
            loss = args[0] if args else kwargs.get("tensors" if not is_method else "self")
            recorder._after_backward(loss)
            return result

        backward.__wrapped__ = original  # type: ignore[attr-defined]
        return backward

    def _wrap_clip(self, original: Callable, name: str) -> Callable:
        recorder = self

        def clip(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            entry: dict[str, Any] = {"fn": name}
            try:
                if name.startswith("clip_grad_norm"):
                    limit = args[1] if len(args) > 1 else kwargs.get("max_norm")
                    entry["max_norm"] = float(limit)
                    entry["total_norm"] = float(result)
                else:
                    limit = args[1] if len(args) > 1 else kwargs.get("clip_value")
                    entry["clip_value"] = float(limit)
            except (TypeError, ValueError):
                pass
            recorder._clip.append(entry)
            return result

        clip.__wrapped__ = original  # type: ignore[attr-defined]
        clip.__name__ = name
        clip.__doc__ = original.__doc__
        return clip

    # ------------------------------------------------------------------ names
    def _param_name(self, p: torch.Tensor, index: int) -> str:
        if self._names_dirty:
            names: dict[int, str] = {}
            for module in list(self._modules):
                prefix = type(module).__name__
                for name, param in module.named_parameters():
                    label = f"{prefix}.{name}"
                    if len(label) > len(names.get(id(param), "")):
                        names[id(param)] = label
            self._names = names
            self._names_dirty = False
        return self._names.get(id(p), f"param[{index}] {tuple(p.shape)}")

    # ------------------------------------------------------------------ backward
    def _known_params(self) -> list[torch.Tensor]:
        params = [ref() for ref in self._optim_params.values()]
        params = [p for p in params if p is not None]
        if not params:  # before the first step: the parameters of every module that ran
            seen: dict[int, torch.Tensor] = {}
            for module in list(self._modules):
                for p in module.parameters(recurse=False):
                    seen[id(p)] = p
            params = list(seen.values())
        return [p for p in params if p.grad is not None]

    def _after_backward(self, loss: Any) -> None:
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            with torch.no_grad():
                value = float(loss.detach().float())
            self._losses.append(value)
            if not math.isfinite(value) and self.first_nonfinite_loss is None:
                self.first_nonfinite_loss = {"step": self.step_count, "value": value}
        params = self._known_params()
        norms = _norms([p.grad for p in params])
        self._raw_sq = {id(p): n * n for p, n in zip(params, norms)}

    # ------------------------------------------------------------------ forward hook
    def _classify(self, module: nn.Module, args: tuple, output: Any) -> str | None:
        cls = type(module)
        if cls in self._kind:
            return self._kind[cls]
        kind: str | None = None
        if isinstance(module, nn.RNNBase):
            kind = "sequence"
        elif isinstance(module, nn.RNNCellBase):
            kind = "cell"
        else:
            try:
                params = [p for p in inspect.signature(cls.forward).parameters.values()
                          if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            except (TypeError, ValueError):
                params = []
            h_prev = args[1] if len(args) >= 2 else None
            if (len(params) >= 3 and isinstance(args[0], torch.Tensor)
                    and isinstance(h_prev, torch.Tensor) and h_prev.is_floating_point()
                    and _matching_state(output, h_prev) is not None):
                kind = "cell"
        self._kind[cls] = kind
        return kind

    def _label(self, module: nn.Module) -> str:
        return type(module).__name__

    def _forward_hook(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if self._in_replay:
            return
        if module not in self._modules:
            self._modules.add(module)
            self._names_dirty = True
        kind = self._classify(module, args, output)
        if kind is None:
            return
        label = self._label(module)
        if label not in self.recurrent:
            self.recurrent[label] = type(module).__qualname__
        if not self._sampling() or not torch.is_grad_enabled():
            return
        if kind == "cell":
            h_prev = args[1] if len(args) > 1 else None
            h = _matching_state(output, h_prev)
            if h is None or not h.requires_grad:
                return
            index = self._cell_calls.get(label, 0)
            self._cell_calls[label] = index + 1
            grads = self._cell_grads.setdefault(label, [])

            def hook(grad: torch.Tensor, index: int = index) -> None:
                with torch.no_grad():
                    grads.append((index, float(torch.linalg.vector_norm(grad.float()))))

            h.register_hook(hook)
        elif kind == "sequence" and isinstance(module, nn.RNNBase) and args:
            self._replay(module, label, args)

    def _sampling(self) -> bool:
        return self.step_count % self.sample_every == 0

    def _replay(self, module: nn.RNNBase, label: str, args: tuple) -> None:
        """‖∂(v·h_T)/∂h_t‖ for every t, by running the module one time step at a time on a
        detached copy of its input (no effect on the user's graph, gradients or RNG)."""
        x = args[0]
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3):
            return  # packed sequences are not replayed
        h0 = args[1] if len(args) > 1 else None
        batched = x.dim() == 3
        time_dim = 1 if (batched and module.batch_first) else 0
        T = min(x.shape[time_dim], MAX_REPLAY_STEPS)
        if T < 2:
            return
        self._in_replay = True
        try:
            with torch.random.fork_rng(devices=[]), torch.enable_grad():
                xs = x.detach()
                h: Any = (h0.detach() if isinstance(h0, torch.Tensor) else
                          tuple(t.detach() for t in h0) if isinstance(h0, tuple) else None)
                states = []
                for t in range(T):
                    x_t = xs.narrow(time_dim, t, 1)
                    _, h = module(x_t, h)
                    state = h[0] if isinstance(h, tuple) else h
                    states.append(state)
                v = torch.randn(states[-1].shape, generator=self._gen).to(states[-1])
                grads = torch.autograd.grad((v * states[-1]).sum(), states[:-1],
                                            allow_unused=True)
            norms = [float(torch.linalg.vector_norm(g)) if g is not None else 0.0 for g in grads]
            norms.append(float(torch.linalg.vector_norm(v)))
            self.flow.append({"step": self.step_count, "module": label, "kind": "sequence",
                              "quantity": "|d(v.h_T)/dh_t|", "norms": norms})
        except Exception:  # noqa: BLE001 - a replay that fails only costs the measurement
            pass
        finally:
            self._in_replay = False

    # ------------------------------------------------------------------ optimizer hooks
    def _pre_step(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if self.step_site is None:
            self.step_site = _user_frame()
        groups = []
        all_params: list[torch.Tensor] = []
        for group in optimizer.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            groups.append(ps)
            all_params.extend(ps)
            for p in group["params"]:
                if id(p) not in self._optim_params:
                    self._optim_params[id(p)] = weakref.ref(p)
        flat = _norms([p.grad for p in all_params])
        group_norms, i = [], 0
        for ps in groups:
            group_norms.append(_combine(flat[i:i + len(ps)]))
            i += len(ps)
        total = _combine(flat)
        raw = None
        if self._raw_sq is not None and all_params and all(id(p) in self._raw_sq
                                                           for p in all_params):
            raw = math.sqrt(sum(self._raw_sq[id(p)] for p in all_params))
        record: dict[str, Any] = {"step": self.step_count, "norm": total, "raw_norm": raw,
                                  "group_norms": group_norms}
        clip_calls = self._clip
        self._clip = []
        if clip_calls:
            record["clip_calls"] = len(clip_calls)
            record["clip_fn"] = clip_calls[-1]["fn"]
            limits = [c["max_norm"] for c in clip_calls if "max_norm" in c]
            if limits:
                record["clip_max_norm"] = limits[-1]
                seen = [c["total_norm"] for c in clip_calls if "total_norm" in c]
                if raw is None and seen:
                    record["raw_norm"] = raw = seen[-1]
            values = [c["clip_value"] for c in clip_calls if "clip_value" in c]
            if values:
                record["clip_value"] = values[-1]
        reduced = (_finite(raw) and _finite(total) and raw > 0
                   and total < raw * (1 - CLIP_RTOL))
        record["clipped"] = bool(reduced)
        if reduced and not clip_calls:
            record["manual_clip"] = True
        if self._losses:
            record["loss"] = self._losses[-1]
            self._losses = []
        if not math.isfinite(total):
            for index, (p, n) in enumerate(zip(all_params, flat)):
                if not math.isfinite(n):
                    record["nonfinite_grad"] = self._param_name(p, index)
                    break
        if self._sampling():
            record["sampled"] = True
            per_module: dict[str, float] = {}
            for p, n in zip(all_params, flat):
                owner = self._param_name(p, 0).rsplit(".", 1)[0]
                per_module[owner] = per_module.get(owner, 0.0) + n * n
            record["module_norms"] = {k: math.sqrt(v) for k, v in per_module.items()}
            self._finish_cell_flow()
        with torch.no_grad():
            self._before[id(optimizer)] = [p.detach().clone() for p in all_params]
        self._pending[id(optimizer)] = record

    def _finish_cell_flow(self) -> None:
        for label, grads in self._cell_grads.items():
            if len(grads) < 2:
                continue
            by_index = dict(grads)
            norms = [by_index.get(i, 0.0) for i in range(max(by_index) + 1)]
            self.flow.append({"step": self.step_count, "module": label, "kind": "cell",
                              "quantity": "|dloss/dh_t|", "norms": norms})
        self._cell_grads = {}
        self._cell_calls = {}

    def _post_step(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        record = self._pending.pop(id(optimizer), None)
        before = self._before.pop(id(optimizer), None)
        if record is None:
            return
        params = [p for group in optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        if before is not None and len(before) == len(params):
            with torch.no_grad():
                now = _norms(params)
                delta = _norms([p.detach() - b for p, b in zip(params, before)])
            weight = _combine(now)
            record["update_ratio"] = _combine(delta) / weight if weight > 0 else None
            if not all(math.isfinite(n) for n in now):
                for index, (p, n) in enumerate(zip(params, now)):
                    if not math.isfinite(n):
                        record["nonfinite_param"] = self._param_name(p, index)
                        break
        self.steps.append(record)
        self.step_count += 1
        self._set_forward_hook(self._sampling())
        if self.on_step is not None:
            self.on_step(record)
        if self.max_steps is not None and self.step_count >= self.max_steps:
            raise StopRun()

    # ------------------------------------------------------------------ result
    def summary(self) -> dict[str, Any]:
        return {"steps": self.steps, "flow": self.flow, "recurrent": self.recurrent,
                "sample_every": self.sample_every, "max_steps": self.max_steps,
                "first_nonfinite_loss": self.first_nonfinite_loss, "step_site": self.step_site}


_INTERNAL = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))


def _user_frame() -> dict[str, Any]:
    """The innermost frame of the user's code (not torch, not grudiag, not the stdlib)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if (not name.startswith(_INTERNAL) and not name.startswith("<")
                and "runpy" not in os.path.basename(name)):
            return {"file": name, "line": frame.f_lineno}
        frame = frame.f_back
    return {}


def _matching_state(output: Any, h_prev: Any) -> torch.Tensor | None:
    """The element of a cell's output that is the new state (same shape as h_prev)."""
    candidates = output if isinstance(output, (tuple, list)) else (output,)
    if not isinstance(h_prev, torch.Tensor):
        return None
    for c in reversed(candidates):
        if isinstance(c, torch.Tensor) and c.shape == h_prev.shape and c.is_floating_point():
            return c
    return None
