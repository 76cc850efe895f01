"""GRU step as a pure function over a params dict (PyTorch gate order r, z, n; row vectors)."""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def init_gru_params(input_size, hidden_size, seed=0):
    rng = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(hidden_size)
    return {
        "W_ih": rng.uniform(-k, k, (input_size, 3 * hidden_size)),
        "W_hh": rng.uniform(-k, k, (hidden_size, 3 * hidden_size)),
        "b_ih": rng.uniform(-k, k, 3 * hidden_size),
        "b_hh": rng.uniform(-k, k, 3 * hidden_size),
    }


def gru_step(x, h_prev, params):
    H = h_prev.shape[-1]
    gi = x @ params["W_ih"] + params["b_ih"]
    gh = h_prev @ params["W_hh"] + params["b_hh"]
    r = sigmoid(gi[..., :H] + gh[..., :H])
    z = sigmoid(gi[..., H:2 * H] + gh[..., H:2 * H])
    n = np.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
    h = (1 - z) * n + z * h_prev
    return h, (x, h_prev, r, z, n)


def run_gru(xs, h0, params):
    """xs: (T, B, input_size) -> all states (T, B, hidden_size)."""
    h = h0
    out = []
    for x in xs:
        h, _ = gru_step(x, h, params)
        out.append(h)
    return np.stack(out)
