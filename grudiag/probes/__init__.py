"""Every probe module is imported here, so the registry is complete once `grudiag.probes` is.

The import order is the measuring order (`forward` first); `after` pulls dependencies earlier.
"""
from . import (blackbox, conventions, forward, gradients, jacobians, numerics, parameters, saturation,
               shapes, state)
from .base import PROBES, Probe, ProbeContext, ProbeSkipped, register_probe

__all__ = ["PROBES", "Probe", "ProbeContext", "ProbeSkipped", "register_probe",
           "blackbox", "conventions", "forward", "gradients", "jacobians", "numerics", "parameters",
           "saturation", "shapes", "state"]
