"""Every check module is imported here, so the registry is complete once `grudiag.checks` is."""
from . import (blackbox, conventions, gates, gradients, harness, numerics, parameters, recurrence,
               shapes, training)
from .base import CHECKS, Check, CheckContext, SkipCheck, lookup, register_check

__all__ = ["CHECKS", "Check", "CheckContext", "SkipCheck", "lookup", "register_check",
           "blackbox", "conventions", "gates", "gradients", "harness", "numerics", "parameters",
           "recurrence", "shapes", "training"]
