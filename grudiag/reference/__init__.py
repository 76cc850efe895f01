"""Reference GRU implementations that grudiag measures user cells against.

* :mod:`.variants`: the conventions (reset-after / reset-before × torch / chung update × bias).
* :mod:`.numpy_gru`: float64 NumPy forward and exact analytic BPTT on canonical parameters.
* :mod:`.torch_gru`: the same maths in explicit torch ops (any device/dtype, autograd), plus
  drop-in ``nn.GRUCell``/``nn.GRU`` look-alikes.
* :mod:`.conversions`: exact mappings between canonical parameters and PyTorch, Keras, ONNX,
  TF1, Cho-split and Andrew Ng layouts.

The two implementation modules share function names (``step``, ``forward``), so they are
re-exported as modules and under prefixed names.
"""
from . import conversions, numpy_gru, torch_gru, variants
from .conversions import (
    flip_update,
    from_concat_hx,
    from_keras,
    from_onnx,
    from_split,
    from_tf1,
    from_torch_cell,
    from_torch_gru,
    load_into,
    to_concat_hx,
    to_keras,
    to_onnx,
    to_split,
    to_tf1,
    to_torch_cell,
    to_torch_gru_layer,
)
from .numpy_gru import BIAS_NAMES, PARAM_NAMES, WEIGHT_NAMES, StepCache, init_params
from .numpy_gru import backward as np_backward
from .numpy_gru import forward as np_forward
from .numpy_gru import gates as np_gates
from .numpy_gru import step as np_step
from .torch_gru import ReferenceGRU, ReferenceGRUCell, to_numpy, to_torch
from .torch_gru import forward as torch_forward
from .torch_gru import step as torch_step
from .variants import ALL_VARIANTS, CHO, PYTORCH, Family, Update, Variant

__all__ = [
    "ALL_VARIANTS", "BIAS_NAMES", "CHO", "PARAM_NAMES", "PYTORCH", "WEIGHT_NAMES",
    "Family", "ReferenceGRU", "ReferenceGRUCell", "StepCache", "Update", "Variant",
    "conversions", "flip_update", "from_concat_hx", "from_keras", "from_onnx", "from_split",
    "from_tf1", "from_torch_cell", "from_torch_gru", "init_params", "load_into",
    "np_backward", "np_forward", "np_gates", "np_step", "numpy_gru", "to_concat_hx",
    "to_keras", "to_numpy", "to_onnx", "to_split", "to_tf1", "to_torch", "to_torch_cell",
    "to_torch_gru_layer", "torch_forward", "torch_gru", "torch_step", "variants",
]
