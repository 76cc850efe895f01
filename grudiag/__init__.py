"""grudiag: find the silent bugs in hand-written GRU and RNN cells by measuring them."""

__version__ = "0.1.0"

__all__ = ["__version__", "check"]


def check(target, **options):
    """Diagnose a path or an object and return a `grudiag.model.Report` (see `grudiag.api`)."""
    from .api import check as _check

    return _check(target, **options)
