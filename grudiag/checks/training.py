"""GD7xx: training runs. Emitted by `grudiag run` (grudiag/run/judge.py) from what the optimizer
steps of a real training script saw; not judged from cell probes (``harness = True``)."""
from __future__ import annotations

from ..model import Severity
from .base import Check, register_check


class TrainingCheck(Check):
    harness = True


@register_check
class MissingGradientClipping(TrainingCheck):
    """The optimizer stepped on raw gradients: no clipping while the gradient norm spiked.

    ## What it checks
    Every optimizer step of the training run: the gradient norm right after `backward()` (raw)
    and when `optimizer.step()` starts (applied), and whether `clip_grad_norm_` /
    `clip_grad_value_` was called or the gradients were rescaled by hand in between.
    Error when the raw norm spikes (above `spike_factor` × the running median of the previous
    steps, after at least `min_steps` steps) or becomes non-finite and no clipping is in place;
    warning when a recurrent model (GRU/RNN/LSTM, or a custom `forward(x, h)` cell) trains
    without any clipping and no spike was seen within the steps run.

    ## Why is this bad?
    Recurrent networks multiply Jacobians through time; their gradient norm occasionally jumps
    by orders of magnitude (Pascanu et al., 2013). One such step throws the weights far away
    and the loss becomes NaN.

    ## How it is detected
    Global optimizer-step hooks and a wrap of `Tensor.backward` record both norms each step;
    a norm at step time below the raw norm means clipping happened. Thresholds: `spike_factor`
    (10), `min_steps` (5).

    ## Example
    ```python
    loss.backward()
    optimizer.step()
    ```

    ## Use instead
    ```python
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    ```
    """

    code = "GD701"
    name = "missing-gradient-clipping"
    category = "missing-gradient-clipping"
    severity = Severity.ERROR
    thresholds = {"spike_factor": 10.0, "min_steps": 5.0}


@register_check
class TrainingGradientExplodesThroughTime(TrainingCheck):
    """In the training run, the gradient grows by orders of magnitude back through time.

    ## What it checks
    On every `sample_every`-th step (20), ‖∂loss/∂h_t‖ for each time step of the recurrent
    modules: from hooks on a cell's outputs, or ‖∂(v·h_T)/∂h_t‖ from a replay of an
    `nn.GRU`/`nn.RNN`/`nn.LSTM` one step at a time. Reported when the largest norm is more than
    `growth` (1e3) times the norm at the last time step.

    ## Why is this bad?
    Gradients that grow geometrically backwards in time make training steps erratic and end in
    NaN unless clipped.

    ## How it is detected
    Tensor hooks on the recurrent outputs during the user's own backward pass (no extra
    backward), on sampled steps only. Threshold: `growth` (1e3), sequences of at least
    `min_length` (4) steps.

    ## Example
    ```python
    h = h + cell(x_t, h)        # residual around the recurrence: Jacobian I + J
    ```

    ## Use instead
    Keep the GRU update a convex blend, initialise recurrent weights orthogonally, clip.
    """

    code = "GD702"
    name = "gradient-explodes-during-training"
    category = "exploding-gradients"
    severity = Severity.WARNING
    thresholds = {"growth": 1e3, "min_length": 4.0}


@register_check
class TrainingGradientVanishesThroughTime(TrainingCheck):
    """In the training run, the gradient dies out back through time.

    ## What it checks
    The same sampled flow through time as GD702. Reported when the norm reaching the first
    time step is below `ratio` (1e-6) times the largest norm along the sequence.

    ## Why is this bad?
    The model cannot learn dependencies longer than a few steps: the early inputs receive no
    gradient.

    ## How it is detected
    Tensor hooks on the recurrent outputs (cells) or a replay (`nn.GRU` and friends), on
    sampled steps. Thresholds: `ratio` (1e-6), `min_length` (4).

    ## Example
    ```python
    h = torch.tanh(0.01 * (W_h @ h) + W_x @ x)   # recurrent weights far too small
    ```

    ## Use instead
    A gated cell (GRU/LSTM) with a sane initialisation; shorter truncation windows.
    """

    code = "GD703"
    name = "gradient-vanishes-during-training"
    category = "vanishing-gradients"
    severity = Severity.WARNING
    thresholds = {"ratio": 1e-6, "min_length": 4.0}


@register_check
class NonFiniteDuringTraining(TrainingCheck):
    """The loss, a gradient or a parameter became NaN or infinite during training.

    ## What it checks
    The loss each `backward()` was called on, the gradients at each optimizer step, and the
    parameters after each step. The first non-finite step and the parameter are named.

    ## Why is this bad?
    Once a parameter is NaN every later step is NaN: the run is lost, often silently.

    ## How it is detected
    Finiteness of the norms recorded by the optimizer-step hooks and the backward wrap.
    No threshold.

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=10.0)   # no clipping either
    ```

    ## Use instead
    A smaller learning rate, gradient clipping, and a numerically stable loss.
    """

    code = "GD704"
    name = "non-finite-during-training"
    category = "numerical-instability"
    severity = Severity.ERROR


@register_check
class ClippingNeverBinds(TrainingCheck):
    """Gradient clipping is called but never changes the gradients.

    ## What it checks
    Runs of at least `min_steps` (10) steps where `clip_grad_norm_` (or `clip_grad_value_`) is
    called and the norm at step time always equals the raw norm.

    ## Why is this bad?
    Not a bug: the threshold may be set far above the norms seen, so clipping would not help
    when a spike comes. Informational.

    ## How it is detected
    Raw vs applied gradient norm at each optimizer step.

    ## Example
    ```python
    clip_grad_norm_(model.parameters(), max_norm=1e6)
    ```

    ## Use instead
    A `max_norm` near the upper range of the typical gradient norms (see the plot).
    """

    code = "GD705"
    name = "clipping-never-binds"
    category = "missing-gradient-clipping"
    severity = Severity.INFO
    thresholds = {"min_steps": 10.0}


@register_check
class ClippingAlwaysBinds(TrainingCheck):
    """Gradient clipping rescales the gradients at every step.

    ## What it checks
    Runs of at least `min_steps` (10) steps where every step's gradients were reduced between
    `backward()` and `optimizer.step()`.

    ## Why is this bad?
    Informational: the optimizer then always sees a gradient of norm `max_norm`, so clipping acts
    as normalised gradient descent and the learning rate is effectively changed.

    ## How it is detected
    Raw vs applied gradient norm at each optimizer step.

    ## Example
    ```python
    clip_grad_norm_(model.parameters(), max_norm=1e-3)
    ```

    ## Use instead
    Raise `max_norm` so that only the spikes are clipped.
    """

    code = "GD706"
    name = "clipping-always-binds"
    category = "missing-gradient-clipping"
    severity = Severity.INFO
    thresholds = {"min_steps": 10.0}


@register_check
class TrainingScriptRaised(TrainingCheck):
    """The training script raised an exception or exited with an error status.

    ## What it checks
    The script run by `grudiag run` as `__main__`; its exception is reported with the line of
    the script where it surfaced.

    ## Why is this bad?
    The run did not finish; the steps recorded before the error are still judged.

    ## How it is detected
    The worker catches every exception the script lets escape. No threshold.

    ## Example
    ```python
    loss = criterion(out, y.view(-1))     # shape mismatch at step 1
    ```

    ## Use instead
    Fix the error named in the message.
    """

    code = "GD707"
    name = "training-script-raised"
    category = "crash"
    severity = Severity.ERROR


@register_check
class TrainingScriptStopped(TrainingCheck):
    """The training script hung past the time limit or ended the process.

    ## What it checks
    The worker that runs the script: a wall-clock limit (`--timeout`), and its exit status
    (`os._exit`, a signal, the out-of-memory killer).

    ## Why is this bad?
    The run was not observed to its end; only the steps recorded before are judged. Use
    `--max-steps` to diagnose the first steps of a long run.

    ## How it is detected
    The parent process watches the worker. No threshold besides `--timeout`.

    ## Example
    ```python
    while True:
        train_one_epoch()
    ```

    ## Use instead
    `grudiag run train.py --max-steps 200`
    """

    code = "GD708"
    name = "training-script-stopped"
    category = "crash"
    severity = Severity.ERROR
