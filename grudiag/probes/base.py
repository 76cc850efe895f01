"""Probes measure; they never judge. One probe serves many checks and runs once per subject."""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..options import Options
from ..subjects.base import Subject


#: probes run at most this many steps of a longer `time` option (the `forward` probe runs it
#: all, so that a state that blows up late is still seen; the Jacobian probe has its own 30):
#: every defect a probe looks for shows within its first steps, and the probes that perturb
#: one step at a time cost T² steps
MAX_PROBE_STEPS = 16


class ProbeSkipped(Exception):
    """The measurement is impossible for this subject style; the reason is shown to the user."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def derive_seed(seed: int, *keys: object) -> int:
    """A stable per-purpose seed, so adding a probe never shifts another probe's inputs."""
    text = ":".join(str(k) for k in (seed, *keys))
    return zlib.crc32(text.encode())


@dataclass
class ProbeContext:
    options: Options
    #: measurements already taken for this subject (a probe may build on an earlier one)
    measurements: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.options.seed

    @property
    def steps(self) -> int:
        """The sequence length probes use: the `time` option, at most `MAX_PROBE_STEPS`."""
        return min(int(self.options.time), MAX_PROBE_STEPS)

    def rng(self, *keys: object) -> np.random.Generator:
        """A private generator: probes never touch the user's global RNG state."""
        return np.random.default_rng(derive_seed(self.options.seed, *keys))

    def inputs(self, subject: Subject, *keys: object, time: int | None = None,
               batch: int | None = None, x_scale: float = 1.0,
               h_scale: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """Standard probe inputs: x ~ N(0, x_scale²), h0 ~ U(-h_scale, h_scale), never zero.

        h0 is non-zero on purpose: the reset-before and reset-after families agree at h = 0.
        """
        rng = self.rng("inputs", *keys)
        T = time or self.steps
        B = batch or self.options.batch
        xs = rng.normal(0.0, x_scale, size=(T, B, subject.input_size))
        h0 = rng.uniform(-h_scale, h_scale, size=(B, subject.hidden_size))
        return xs, h0


class Probe:
    """Subclass, set `name`, implement `measure`, and decorate with `@register_probe`."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    #: probes that must run first (their data is in ctx.measurements)
    after: ClassVar[tuple[str, ...]] = ()

    def measure(self, subject: Subject, ctx: ProbeContext) -> dict[str, Any]:
        raise NotImplementedError

    def summarize(self, data: dict[str, Any]) -> dict[str, Any]:
        """The JSON-able part kept in reports (plots draw from it). Large arrays are dropped."""
        return {k: v for k, v in data.items() if not _is_big_array(v)}


def _is_big_array(value: Any, limit: int = 20000) -> bool:
    return isinstance(value, np.ndarray) and value.size > limit


PROBES: dict[str, Probe] = {}


def register_probe(cls: type[Probe]) -> type[Probe]:
    if cls.name in PROBES:
        raise ValueError(f"probe {cls.name!r} registered twice")
    PROBES[cls.name] = cls()
    return cls


def probe_order(names: set[str]) -> list[str]:
    """Registration order, with each probe's `after` dependencies pulled in first."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for dep in PROBES[name].after:
            visit(dep)
        ordered.append(name)

    for name in PROBES:
        if name in names:
            visit(name)
    return ordered


Measure = Callable[[Subject, ProbeContext], dict[str, Any]]
