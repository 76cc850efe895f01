"""Subjects: every supported cell style behind one interface, and discovery of them in files."""
from .base import (
    DEFAULT_BATCH,
    DEFAULT_HIDDEN_SIZE,
    DEFAULT_INPUT_SIZE,
    DEFAULT_TIME,
    Candidate,
    DiscoveryProblem,
    Gradients,
    GradientsUnavailable,
    Subject,
    SubjectError,
    SubjectOutputError,
    SubjectRaised,
    call_user,
)
from .discovery import discover_module, discover_object, discover_path
from .loading import guarded_global_state, import_user_file

__all__ = [
    "DEFAULT_BATCH", "DEFAULT_HIDDEN_SIZE", "DEFAULT_INPUT_SIZE", "DEFAULT_TIME", "Candidate",
    "DiscoveryProblem", "Gradients", "GradientsUnavailable", "Subject", "SubjectError",
    "SubjectOutputError", "SubjectRaised", "call_user", "discover_module", "discover_object",
    "discover_path", "guarded_global_state", "import_user_file",
]
