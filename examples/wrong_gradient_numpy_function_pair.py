"""A GRU step written as a forward/backward function pair with a params factory (PyTorch's
update h = (1 - z) * n + z * h_prev). The backward returns the candidate's gradient with the
wrong sign (dn = dh * (z - 1) instead of dh * (1 - z)), so every gradient that flows through
the candidate n points the wrong way; the forward pass is correct.

Expected categories: wrong-gradient
"""
import numpy as np


def init_params(input_size, hidden_size, seed=0):
    rng = np.random.default_rng(seed)
    s = 1 / np.sqrt(hidden_size)
    p = {}
    for g in "rzn":
        p[f"W_{g}"] = rng.uniform(-s, s, (hidden_size, input_size))
        p[f"U_{g}"] = rng.uniform(-s, s, (hidden_size, hidden_size))
        p[f"b_{g}"] = rng.uniform(-s, s, hidden_size)
    return p


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def gru_step(x, h_prev, params):
    p = params
    r = sigmoid(x @ p["W_r"].T + h_prev @ p["U_r"].T + p["b_r"])
    z = sigmoid(x @ p["W_z"].T + h_prev @ p["U_z"].T + p["b_z"])
    n = np.tanh(x @ p["W_n"].T + r * (h_prev @ p["U_n"].T) + p["b_n"])
    h = (1 - z) * n + z * h_prev
    return h, (params, x, h_prev, r, z, n)


def gru_step_backward(dh, cache):
    p, x, h_prev, r, z, n = cache
    dn = dh * (z - 1)                     # BUG: sign flipped, should be dh * (1 - z)
    dz = dh * (h_prev - n)
    da_n = dn * (1 - n ** 2)
    hn = h_prev @ p["U_n"].T
    da_r = da_n * hn * r * (1 - r)
    da_z = dz * z * (1 - z)
    dhn = da_n * r
    dx = da_n @ p["W_n"] + da_r @ p["W_r"] + da_z @ p["W_z"]
    dh_prev = dh * z + dhn @ p["U_n"] + da_r @ p["U_r"] + da_z @ p["U_z"]
    return {
        "W_r": da_r.T @ x, "U_r": da_r.T @ h_prev, "b_r": da_r.sum(0),
        "W_z": da_z.T @ x, "U_z": da_z.T @ h_prev, "b_z": da_z.sum(0),
        "W_n": da_n.T @ x, "U_n": dhn.T @ h_prev, "b_n": da_n.sum(0),
        "x": dx, "h_prev": dh_prev,
    }


if __name__ == "__main__":
    params = init_params(5, 7)
    h, cache = gru_step(np.ones((3, 5)), np.zeros((3, 7)), params)
    print(sorted(gru_step_backward(np.ones_like(h), cache)))
