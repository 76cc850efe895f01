"""Every plot kind draws from what the real probes measure (not only from hand-built data)."""
from __future__ import annotations

from pathlib import Path

import pytest

from grudiag.api import check
from grudiag.plots import PLOTS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("example, select, probe, marker", [
    ("exploding_gradients_torch.py", "GD202", "conventions", "<svg"),       # subject vs reference
    ("exploding_gradients_torch.py", "GD403", "jacobian_spectrum", "<svg"),  # norms, singular values
    ("gate_saturation_torch.py", "GD241", "gate_activations", "<svg"),      # histograms, heatmap
    ("bad_shapes_torch.py", "GD104", "batch-dependence", "<svg"),
    ("bad_shapes_torch.py", "GD105", "time-dependence", "<svg"),
    ("zero_init_symmetry_torch.py", "GD604", "unit_copies", "<svg"),         # unit similarity
    ("wrong_gradient_numpy.py", "GD401", "gradient_check", "<svg"),          # analytic vs numeric
    ("truncated_bptt_torch.py", "GD402", "gradient_flow", "<svg"),
])
def test_plot_draws_from_the_probe_measurement(example, select, probe, marker):
    report = check(str(EXAMPLES / example), isolate=False, select=(select,))
    measurement = report.results[0].measurements[probe]
    drawn = PLOTS[probe](measurement)
    assert drawn is not None and marker in drawn
    if probe == "gate_activations":
        gate = measurement["gates"][0]
        assert sum(gate["histogram"]["counts"]) > 0
        assert len(gate["time_unit"]) == measurement["time"]
