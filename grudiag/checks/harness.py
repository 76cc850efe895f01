"""GD9xx: the subject could not be run. Emitted by the harness, not judged from measurements.

They are checks all the same so that `grudiag rule GD901` documents them and users can filter on
them like any other finding.
"""
from __future__ import annotations

from ..model import Severity
from .base import Check, register_check


class HarnessCheck(Check):
    harness = True
    category = "crash"
    severity = Severity.ERROR


@register_check
class SubjectRaisedError(HarnessCheck):
    """The subject raised an exception when grudiag called it.

    ## What it checks
    Every call into the user's code (forward, backward, parameter factories) is guarded. An
    exception, `SystemExit` included, is reported with its type, message and the deepest line
    of the user's file in the traceback.

    ## Why is this bad?
    A cell that raises on ordinary inputs (sizes 5 → 7, batch 3, time 6) usually hard-codes a
    size, confuses the batch and feature axes, or calls `sys.exit` from library code.

    ## How it is detected
    The harness calls the subject with the standard probe inputs. No threshold.

    ## Example
    ```python
    h = h.view(32, -1)          # the batch size of the training script, hard-coded
    ```

    ## Use instead
    ```python
    h = h.view(x.shape[0], -1)
    ```
    """

    code = "GD901"
    name = "subject-raised"


@register_check
class SubjectTimedOut(HarnessCheck):
    """The subject did not finish within the time limit.

    ## What it checks
    The CLI probes each subject in a worker process with a wall-clock limit (`--timeout`,
    60 s by default). A subject still running at the limit is stopped.

    ## Why is this bad?
    A GRU step on 3 samples of 5 features costs microseconds. A subject that needs a minute
    loops forever (a `while` waiting on state that never changes), blocks on input, or does
    work that grows without bound.

    ## How it is detected
    Wall-clock limit on the worker process; the worker is killed and restarted for the
    remaining subjects.

    ## Example
    ```python
    while not self.converged:   # never set
        ...
    ```

    ## Use instead
    Bound every loop by the sequence length.
    """

    code = "GD902"
    name = "subject-timed-out"


@register_check
class ProcessExited(HarnessCheck):
    """The subject ended the worker process (`os._exit`, a signal, a segfault).

    ## What it checks
    The worker process that probes the subject died: `os._exit`, a fatal signal such as
    SIGSEGV or SIGKILL (often the kernel's out-of-memory killer), or an abort in native code.

    ## Why is this bad?
    Code that ends the process cannot be used inside a training loop or a test suite.

    ## How it is detected
    The parent process watches the worker's exit status while a subject is being probed.

    ## Example
    ```python
    if h.isnan().any():
        os._exit(1)
    ```

    ## Use instead
    Raise an exception that the caller can handle.
    """

    code = "GD903"
    name = "process-exited"


@register_check
class OutOfMemory(HarnessCheck):
    """The subject ran out of memory or had an allocation refused.

    ## What it checks
    `MemoryError`, PyTorch's "can't allocate memory" errors, and allocations refused by the
    worker's memory limit.

    ## Why is this bad?
    A cell on a batch of 3 needs kilobytes. Running out of memory means a size is computed
    wrongly (an outer product instead of an elementwise one, a state that grows every step).

    ## How it is detected
    The worker runs with an address-space limit; the exception type and message are read.

    ## Example
    ```python
    self.history.append(h)       # grows forever, across calls
    ```

    ## Use instead
    Keep only the state the next step needs.
    """

    code = "GD904"
    name = "out-of-memory"


@register_check
class BadReturnValue(HarnessCheck):
    """The subject returned something that is not a state.

    ## What it checks
    The value a forward returns: it must be an array/tensor state, or a tuple holding one
    (`(out, h)`, `(h, cache)`). `None`, strings, or containers without a state are reported.

    ## Why is this bad?
    A forward that returns `None` (a missing `return`) or the wrong element of a tuple cannot
    be trained; the error surfaces far away, in the loss.

    ## How it is detected
    The adapters validate the type and structure of every return value.

    ## Example
    ```python
    def forward(self, x, h):
        h_new = (1 - z) * n + z * h      # no return
    ```

    ## Use instead
    ```python
        return h_new
    ```
    """

    code = "GD905"
    name = "bad-return-value"


@register_check
class ConstructionFailed(HarnessCheck):
    """The subject could not be built with the sizes grudiag chose.

    ## What it checks
    Classes are built as `Cls(input_size, hidden_size)` (5 and 7, or `--input-size` and
    `--hidden-size`); parameter factories are called likewise. An exception is reported.

    ## Why is this bad?
    A constructor that fails for input ≠ hidden often ties the two sizes together by mistake.

    ## How it is detected
    The harness calls the constructor in the worker process.

    ## Example
    ```python
    def __init__(self, input_size, hidden_size):
        self.W = np.zeros((hidden_size, hidden_size)) @ np.ones((input_size, 1))
    ```

    ## Use instead
    Give each weight the shape of the product it takes part in, (hidden, input) for W.
    Or declare your sizes with the `__grudiag_subjects__` hook (see README).
    """

    code = "GD906"
    name = "construction-failed"


@register_check
class InternalError(HarnessCheck):
    """grudiag itself failed while probing this subject.

    ## What it checks
    A bug in grudiag, not in your code. The probe or check that failed is named; the other
    probes and checks still run and the report is still written.

    ## Why is this bad?
    Some measurements are missing from the report.

    ## How it is detected
    Any exception raised by grudiag's own code rather than the subject's. Exit code 3.

    ## Example
    (none: please report it with `--debug` output)

    ## Use instead
    Run with `--debug` and report the traceback.
    """

    code = "GD999"
    name = "internal-error"
    category = "internal"
    severity = Severity.WARNING
