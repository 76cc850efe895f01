"""Discovery over the torch corpus: exactly the expected subjects, and every corpus cell correct."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from grudiag.options import Options
from grudiag.reference import CHO, PYTORCH, conversions, np_forward
from grudiag.subjects import (
    Candidate,
    DiscoveryProblem,
    SubjectRaised,
    discover_object,
    discover_path,
)
from grudiag.subjects.torch_module import TorchCellSubject, adapt_module

CORPUS = os.path.join(os.path.dirname(__file__), "..", "corpus")

# file -> [(id, kind, input_size, hidden_size, layout)], in the order discovery must list them
EXPECTED = {
    "torch_fused_cell.py": [
        ("torch_fused_cell.py::FusedGRUCell", "torch-cell", 5, 7, "row")],
    "torch_cho_cell.py": [
        ("torch_cho_cell.py::ChoGRUCell", "torch-cell", 5, 7, "row")],
    "torch_keras_cell.py": [
        ("torch_keras_cell.py::KerasStyleGRUCell", "torch-cell", 5, 7, "row")],
    "torch_ng_concat.py": [
        ("torch_ng_concat.py::NgGRU", "torch-cell", 5, 7, "row")],
    "torch_seq_batch_first.py": [
        ("torch_seq_batch_first.py::GRUSequence", "torch-sequence", 5, 7, "batch-first")],
    "torch_seq_time_major.py": [
        ("torch_seq_time_major.py::MinimalGRUCell", "torch-cell", 5, 7, "row"),
        ("torch_seq_time_major.py::Recurrent", "torch-sequence", 5, 7, "time-major")],
    "torch_infer_batch_first.py": [
        ("torch_infer_batch_first.py::SensorEncoder", "torch-sequence", 5, 7, "batch-first")],
    "torch_gru_instance.py": [
        ("torch_gru_instance.py::rnn", "torch-sequence", 4, 9, "time-major")],
    "torch_grucell_instance.py": [
        ("torch_grucell_instance.py::cell", "torch-cell", 6, 10, "row")],
    "torch_classifier_gru.py": [
        ("torch_classifier_gru.py::SentimentClassifier.gru", "torch-sequence", 5, 7, "batch-first")],
    "torch_classifier_cell.py": [
        ("torch_classifier_cell.py::GRUUnit", "torch-cell", 5, 7, "row")],
    "torch_dim_kwargs.py": [
        ("torch_dim_kwargs.py::LayerNormFreeGRUCell", "torch-cell", 5, 7, "row")],
    "torch_default_args.py": [
        ("torch_default_args.py::SmallGRU", "torch-cell", 4, 12, "row")],
    "torch_out_h_cell.py": [
        ("torch_out_h_cell.py::GRUCellWithReadout", "torch-cell", 5, 7, "row")],
    "torch_hook.py": [
        ("torch_hook.py::configured", "torch-cell", 4, 6, "row")],
    "torch_autograd_fn.py": [
        ("torch_autograd_fn.py::HandGradGRUCell", "torch-cell", 5, 7, "row")],
    "torch_elman.py": [
        ("torch_elman.py::ElmanRNN", "torch-sequence", 5, 7, "time-major")],
    "torch_stacked_bidir.py": [
        ("torch_stacked_bidir.py::encoder", "torch-sequence", 8, 16, "batch-first")],
    "torch_messy_globals.py": [
        ("torch_messy_globals.py::NotebookGRUCell", "torch-cell", 5, 7, "row")],
}


def corpus(name: str) -> str:
    return os.path.abspath(os.path.join(CORPUS, name))


@pytest.fixture(scope="module")
def discovered() -> dict[str, list[Candidate]]:
    return {name: discover_path(corpus(name), Options())[1] for name in EXPECTED}


def build(name: str, discovered: dict, index: int = 0):
    return discovered[name][index].build()


def test_corpus_has_a_table_row_for_every_torch_file():
    files = {f for f in os.listdir(CORPUS) if f.startswith("torch_") and f.endswith(".py")}
    assert files - set(EXPECTED) == {"torch_no_subjects.py"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_discovers_exactly_the_expected_subjects(name, discovered):
    candidates = discovered[name]
    subjects = [c.build() for c in candidates]
    got = [(s.id, s.kind, s.input_size, s.hidden_size, s.layout) for s in subjects]
    assert got == EXPECTED[name]
    assert [c.id for c in candidates] == [s.id for s in subjects]
    assert [c.kind for c in candidates] == [s.kind for s in subjects]
    for s in subjects:
        assert s.backend == "torch" and s.gradient_source == "autograd"
        assert s.location is not None and s.location.file == corpus(name)


# --- every corpus model computes a correct GRU (bugs belong in other tests) -------------------

def _np(t) -> np.ndarray:
    return np.asarray(t, dtype=np.float64)


def _torch_cell(p, wi, wh, bi, bh):
    return conversions.from_torch_cell(p[wi], p[wh], p[bi] if bi else None, p[bh] if bh else None)


def _small_gru(p):
    H = p["U"].shape[1]
    return conversions.from_torch_cell(p["W"], p["U"], p["b"], np.concatenate([np.zeros(2 * H), p["c"]]))


def _notebook(p):
    H = p["cand_h.weight"].shape[0]
    W, b = p["gates.weight"], p["gates.bias"]
    I = W.shape[1] - H
    return {"W_ir": W[:H, :I], "W_hr": W[:H, I:], "b_ir": b[:H], "b_hr": np.zeros(H),
            "W_iz": W[H:, :I], "W_hz": W[H:, I:], "b_iz": b[H:], "b_hz": np.zeros(H),
            "W_in": p["cand_x.weight"], "b_in": p["cand_x.bias"],
            "W_hn": p["cand_h.weight"], "b_hn": p["cand_h.bias"]}


# (file, index of the subject) -> (canonical parameters from the subject's own, variant)
CANONICAL = {
    ("torch_fused_cell.py", 0): (lambda p: _torch_cell(p, "weight_ih", "weight_hh", "bias_ih", "bias_hh"), PYTORCH),
    ("torch_cho_cell.py", 0): (lambda p: conversions.from_split(
        p["W_z.weight"], p["U_z.weight"], p["W_z.bias"], p["W_r.weight"], p["U_r.weight"],
        p["W_r.bias"], p["W.weight"], p["U.weight"], p["W.bias"]), CHO),
    ("torch_keras_cell.py", 0): (lambda p: conversions.from_keras(
        p["kernel"], p["recurrent_kernel"], p["bias"]), CHO),
    ("torch_ng_concat.py", 0): (lambda p: conversions.from_concat_hx(
        p["Wu"], p["bu"][:, 0], p["Wr"], p["br"][:, 0], p["Wc"], p["bc"][:, 0]), CHO),
    ("torch_seq_batch_first.py", 0): (lambda p: _torch_cell(
        p, "cell.weight_ih", "cell.weight_hh", "cell.bias_ih", "cell.bias_hh"), PYTORCH),
    ("torch_seq_time_major.py", 0): (lambda p: _torch_cell(
        p, "x2h.weight", "h2h.weight", "x2h.bias", "h2h.bias"), PYTORCH),
    ("torch_seq_time_major.py", 1): (lambda p: _torch_cell(
        p, "cell.x2h.weight", "cell.h2h.weight", "cell.x2h.bias", "cell.h2h.bias"), PYTORCH),
    ("torch_infer_batch_first.py", 0): (lambda p: _torch_cell(
        p, "step.weight_ih", "step.weight_hh", "step.bias_ih", "step.bias_hh"), PYTORCH),
    ("torch_gru_instance.py", 0): (lambda p: _torch_cell(
        p, "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), PYTORCH),
    ("torch_grucell_instance.py", 0): (lambda p: _torch_cell(
        p, "weight_ih", "weight_hh", "bias_ih", "bias_hh"), PYTORCH),
    ("torch_classifier_gru.py", 0): (lambda p: _torch_cell(
        p, "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), PYTORCH),
    ("torch_classifier_cell.py", 0): (lambda p: _torch_cell(
        p, "Wx.weight", "Wh.weight", "Wx.bias", None), PYTORCH),
    ("torch_dim_kwargs.py", 0): (lambda p: _torch_cell(
        p, "ih.weight", "hh.weight", "ih.bias", "hh.bias"), PYTORCH),
    ("torch_default_args.py", 0): (_small_gru, PYTORCH),
    ("torch_out_h_cell.py", 0): (lambda p: _torch_cell(
        p, "gru.weight_ih", "gru.weight_hh", "gru.bias_ih", "gru.bias_hh"), PYTORCH),
    ("torch_hook.py", 0): (lambda p: _torch_cell(
        p, "lin_x.weight", "lin_h.weight", "lin_x.bias", "lin_h.bias"), PYTORCH),
    ("torch_autograd_fn.py", 0): (lambda p: _torch_cell(p, "w_ih", "w_hh", "b_ih", "b_hh"), PYTORCH),
    ("torch_stacked_bidir.py", 0): (lambda p: _torch_cell(
        p, "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), PYTORCH),
    ("torch_messy_globals.py", 0): (_notebook, PYTORCH),
}


def _inputs(subject, seed=0, T=6, B=3):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(T, B, subject.input_size))
    h0 = rng.uniform(-0.5, 0.5, size=(B, subject.hidden_size))
    if not getattr(subject, "accepts_h0", True):
        h0 = np.zeros_like(h0)
    return xs, h0


def test_every_gru_in_the_corpus_has_a_reference_mapping():
    gru_subjects = {(f, i) for f, rows in EXPECTED.items() for i in range(len(rows))} - {
        ("torch_elman.py", 0)}
    assert gru_subjects == set(CANONICAL)


@pytest.mark.parametrize("key", sorted(CANONICAL), ids=lambda k: f"{k[0]}[{k[1]}]")
def test_corpus_gru_matches_the_reference(key, discovered):
    mapping, variant = CANONICAL[key]
    subject = build(key[0], discovered, key[1])
    xs, h0 = _inputs(subject)
    expected, _ = np_forward(mapping(subject.parameters()), xs, h0, variant)
    np.testing.assert_allclose(subject.run(xs, h0), expected, rtol=1e-10, atol=1e-12)


def test_corpus_elman_rnn_matches_numpy(discovered):
    subject = build("torch_elman.py", discovered)
    p = subject.parameters()
    xs, h0 = _inputs(subject)
    h, hs = h0, []
    for x in xs:
        h = np.tanh(x @ p["W_xh"] + h @ p["W_hh"] + p["b_h"])
        hs.append(h)
    np.testing.assert_allclose(subject.run(xs, h0), np.stack(hs), rtol=1e-12, atol=1e-12)
    assert subject.h0_mode == "layers"  # h0 is (1, B, H), read as h0[0]


def test_hand_written_backward_is_what_vjp_reports(discovered):
    """The corpus Function's backward is correct, and vjp goes through it."""
    subject = build("torch_autograd_fn.py", discovered)
    xs, h0 = _inputs(subject)
    dhs = np.random.default_rng(1).normal(size=xs.shape[:2] + (subject.hidden_size,))
    grads = subject.vjp(xs, h0, dhs)
    plain = adapt_module(torch.nn.GRUCell(5, 7), id="plain")
    p = subject.parameters()
    plain = plain.with_parameters({"weight_ih": p["w_ih"], "weight_hh": p["w_hh"],
                                   "bias_ih": p["b_ih"], "bias_hh": p["b_hh"]})
    ref = plain.vjp(xs, h0, dhs)
    np.testing.assert_allclose(grads.xs, ref.xs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads.h0, ref.h0, rtol=1e-10, atol=1e-12)
    for mine, theirs in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"),
                         ("b_hh", "bias_hh")):
        np.testing.assert_allclose(grads.params[mine], ref.params[theirs], rtol=1e-10, atol=1e-12)


# --- details of the rules ---------------------------------------------------------------------

def test_nothing_found_says_what_was_looked_for_and_what_was_rejected():
    with pytest.raises(DiscoveryProblem) as info:
        discover_path(corpus("torch_no_subjects.py"), Options())
    message = info.value.message
    assert "no GRU/RNN subject found in torch_no_subjects.py" in message
    for style in ("nn.Module subclasses", "nn.Module instances", "inside models",
                  "NumPy classes", "functions f(x, h_prev, params)", "__grudiag_subjects__"):
        assert style in message
    assert "MLP: not recurrent" in message
    assert "Attention: its constructor takes (dim)" in message
    assert "lstm: nn.LSTM (LSTMs are not supported)" in message


def test_notes_explain_inferred_layout_and_fixed_stacks(discovered):
    inferred = build("torch_infer_batch_first.py", discovered)
    assert any("inferred as batch-first" in n for n in inferred.notes)
    assert inferred.accepts_h0 is False
    part = build("torch_classifier_gru.py", discovered)
    assert any(n.startswith("checked as a part of SentimentClassifier") for n in part.notes)
    stacked = build("torch_stacked_bidir.py", discovered)
    assert any("layer 0, forward direction" in n for n in stacked.notes)
    assert sorted(stacked.parameters()) == ["bias_hh_l0", "bias_ih_l0", "weight_hh_l0", "weight_ih_l0"]
    assert build("torch_gru_instance.py", discovered).sizes_fixed
    assert build("torch_default_args.py", discovered).sizes_fixed
    assert not build("torch_fused_cell.py", discovered).sizes_fixed


def test_locations_point_at_forward_or_assignment(discovered):
    fused = discovered["torch_fused_cell.py"][0]
    assert fused.location.qualname == "FusedGRUCell.forward"
    with open(corpus("torch_fused_cell.py")) as f:
        assert f.readlines()[fused.location.line - 1].strip().startswith("def forward")
    rnn = discovered["torch_gru_instance.py"][0]
    assert (rnn.location.line, rnn.location.qualname) == (7, "rnn")
    part = discovered["torch_classifier_gru.py"][0]
    assert part.location.line == 10  # self.gru = nn.GRU(...)


def test_builds_are_fresh_and_deterministic(discovered):
    a, b = (discovered["torch_fused_cell.py"][0].build() for _ in range(2))
    assert a.module is not b.module
    again = discover_path(corpus("torch_fused_cell.py"), Options())[1][0].build()
    for name, value in a.parameters().items():
        np.testing.assert_array_equal(value, again.parameters()[name])
    other_seed = discover_path(corpus("torch_fused_cell.py"), Options(seed=3))[1][0].build()
    assert not np.array_equal(a.parameters()["weight_ih"], other_seed.parameters()["weight_ih"])


def test_options_sizes_are_used():
    candidates = discover_path(corpus("torch_cho_cell.py"), Options(input_size=4, hidden_size=9))[1]
    s = candidates[0].build()
    assert (s.input_size, s.hidden_size) == (4, 9)


def test_discovery_and_import_leave_global_state_alone():
    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(9)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), np.geterr())
    _, candidates = discover_path(corpus("torch_messy_globals.py"), Options())
    candidates[0].build().run(*_inputs(candidates[0].build()))
    assert torch.get_default_dtype() == torch.float32
    assert torch.is_grad_enabled()
    assert torch.equal(torch.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1])
    assert random.getstate() == before[2]
    assert np.geterr() == before[3]


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


CELL = """
    import torch
    from torch import nn

    class TinyCell(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.lin = nn.Linear(input_size + hidden_size, hidden_size)

        def forward(self, x, h):
            return torch.tanh(self.lin(torch.cat([x, h], -1)))
"""


def test_hook_accepts_lists_pairs_subjects_and_named_instances(tmp_path):
    path = write(tmp_path, "hooked.py", CELL + """
    from grudiag.subjects.torch_module import adapt_module

    first = TinyCell(3, 4)
    made = adapt_module(nn.GRUCell(2, 5), id="made-by-hand")
    __grudiag_subjects__ = [first, ("second", nn.GRU(4, 6)), made]
    """)
    ids = [(c.id, c.kind) for c in discover_path(path, Options())[1]]
    assert ids == [("hooked.py::first", "torch-cell"), ("hooked.py::second", "torch-sequence"),
                   ("made-by-hand", "torch-cell")]


@pytest.mark.parametrize("hook, message", [
    ("__grudiag_subjects__ = 3", "must be a list"),
    ("__grudiag_subjects__ = []", "is empty"),
    ("def __grudiag_subjects__():\n    raise RuntimeError('no config')",
     "__grudiag_subjects__() raised RuntimeError: no config"),
])
def test_bad_hooks_are_discovery_problems(tmp_path, hook, message):
    path = tmp_path / "badhook.py"
    path.write_text(textwrap.dedent(CELL) + "\n" + hook + "\n")
    with pytest.raises(DiscoveryProblem, match=message.replace("(", r"\(").replace(")", r"\)")):
        discover_path(str(path), Options())


def test_candidates_follow_source_order_and_instances_of_checked_classes_are_not_repeated(tmp_path):
    path = write(tmp_path, "order.py", """
    import torch
    from torch import nn

    late = nn.GRUCell(3, 4)

    class Model(nn.Module):            # contains its cell, defined *below*
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.cell = Cell(input_size, hidden_size)
            self.out = nn.Linear(hidden_size, 2)

        def forward(self, x):
            h = x.new_zeros(x.shape[1], self.cell.hidden_size)
            for x_t in x:
                h = self.cell(x_t, h)
            return self.out(h)

    class Cell(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.hidden_size = hidden_size
            self.rnn = nn.RNNCell(input_size, hidden_size)

        def forward(self, x, h):
            return self.rnn(x, h)

    cell = Cell(4, 4)
    """)
    _, candidates = discover_path(path, Options())
    assert [c.id for c in candidates] == ["order.py::late", "order.py::Cell"]


def test_constructor_crash_of_a_recurrent_class_becomes_a_failing_candidate(tmp_path):
    path = write(tmp_path, "crashy.py", """
    from torch import nn

    class BrokenGRUCell(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            raise ValueError("hidden_size must be even")

        def forward(self, x, h):
            return h
    """)
    (candidate,) = discover_path(path, Options())[1]
    assert (candidate.id, candidate.kind) == ("crashy.py::BrokenGRUCell", "torch-cell")
    with pytest.raises(SubjectRaised) as info:
        candidate.build()
    assert info.value.during == "construct"
    assert "BrokenGRUCell(input_size=5, hidden_size=7) raised ValueError: hidden_size must be even" \
        in info.value.message
    assert info.value.location.line == 7


def test_a_crashing_cell_is_kept_so_its_crash_is_reported(tmp_path):
    path = write(tmp_path, "crash_forward.py", """
    import torch
    from torch import nn

    class MyGRUCell(nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.w = nn.Linear(input_size, hidden_size)

        def forward(self, x, h):
            return torch.tanh(self.w(h))   # bug: W applied to h
    """)
    (candidate,) = discover_path(path, Options())[1]
    subject = candidate.build()
    assert subject.kind == "torch-cell"
    with pytest.raises(SubjectRaised) as info:
        subject.run(*_inputs(subject))
    assert info.value.location.line == 11


def test_discover_object_handles_instances_classes_and_containers():
    (cell,) = discover_object(torch.nn.GRUCell(3, 4), Options())
    assert (cell.id, cell.kind) == ("GRUCell", "torch-cell")
    (named,) = discover_object(torch.nn.GRU(3, 4), Options(), name="encoder")
    assert named.id == "encoder"
    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    with pytest.raises(DiscoveryProblem, match="not recurrent"):
        discover_object(model, Options())

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.GRU(3, 4)
            self.head = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.body(x)[0][-1])

    (part,) = discover_object(Wrapper(), Options())
    assert (part.id, part.kind) == ("test_discovery_torch.py::Wrapper.body", "torch-sequence")
    with pytest.raises(DiscoveryProblem, match="does not know how to diagnose"):
        discover_object(42, Options())


def test_numpy_only_files_do_not_import_torch(tmp_path):
    path = write(tmp_path, "np_only.py", """
    import numpy as np

    WEIGHTS = np.ones(3)
    """)
    code = ("import sys\nfrom grudiag.subjects import discover_path, DiscoveryProblem\n"
            f"try:\n    discover_path({path!r})\nexcept DiscoveryProblem:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cell_subject_type(discovered):
    assert isinstance(build("torch_cho_cell.py", discovered), TorchCellSubject)
