"""Every probe module is imported here, so the registry is complete once `grudiag.probes` is."""
from importlib import import_module

from .base import PROBES, Probe, ProbeContext, ProbeSkipped, register_probe

_MODULES = ("forward", "shapes", "state", "gradients", "jacobians", "parameters", "saturation",
            "numerics", "conventions")

for _name in _MODULES:
    try:
        import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as exc:  # a probe module not written yet
        if exc.name != f"{__name__}.{_name}":
            raise

__all__ = ["PROBES", "Probe", "ProbeContext", "ProbeSkipped", "register_probe"]
