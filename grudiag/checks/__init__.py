"""Every check module is imported here, so the registry is complete once `grudiag.checks` is."""
from importlib import import_module

from .base import CHECKS, Check, CheckContext, SkipCheck, lookup, register_check

_FAMILIES = ("shapes", "harness", "numerics", "gates", "recurrence", "gradients", "parameters",
             "conventions")

for _name in _FAMILIES:
    try:
        import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as exc:  # a family not written yet
        if exc.name != f"{__name__}.{_name}":
            raise

__all__ = ["CHECKS", "Check", "CheckContext", "SkipCheck", "lookup", "register_check"]
