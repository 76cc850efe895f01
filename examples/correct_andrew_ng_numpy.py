"""The GRU of Andrew Ng's Sequence Models course: column vectors (n, m), weights acting on the
concatenation [a_prev; x], update gate Γu multiplying the candidate, and a hand-written
backward pass that is right.

Expected categories: none
"""
import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def initialize_parameters(n_x, n_a):
    rng = np.random.default_rng(3)
    k = 1 / np.sqrt(n_a)
    return {
        "Wu": rng.uniform(-k, k, (n_a, n_a + n_x)), "bu": rng.uniform(-k, k, (n_a, 1)),
        "Wr": rng.uniform(-k, k, (n_a, n_a + n_x)), "br": rng.uniform(-k, k, (n_a, 1)),
        "Wc": rng.uniform(-k, k, (n_a, n_a + n_x)), "bc": rng.uniform(-k, k, (n_a, 1)),
    }


def gru_cell_forward(xt, a_prev, parameters):
    Wu, bu = parameters["Wu"], parameters["bu"]
    Wr, br = parameters["Wr"], parameters["br"]
    Wc, bc = parameters["Wc"], parameters["bc"]
    concat = np.concatenate([a_prev, xt], axis=0)
    gamma_u = sigmoid(Wu @ concat + bu)
    gamma_r = sigmoid(Wr @ concat + br)
    concat_r = np.concatenate([gamma_r * a_prev, xt], axis=0)
    c_tilde = np.tanh(Wc @ concat_r + bc)
    a_next = gamma_u * c_tilde + (1 - gamma_u) * a_prev
    cache = (a_next, a_prev, xt, gamma_u, gamma_r, c_tilde, concat, concat_r, parameters)
    return a_next, cache


def gru_cell_backward(da_next, cache):
    a_next, a_prev, xt, gamma_u, gamma_r, c_tilde, concat, concat_r, parameters = cache
    n_a = a_prev.shape[0]
    Wu, Wr, Wc = parameters["Wu"], parameters["Wr"], parameters["Wc"]

    dc_tilde = da_next * gamma_u
    dgamma_u = da_next * (c_tilde - a_prev)
    da_prev = da_next * (1 - gamma_u)

    dzc = dc_tilde * (1 - c_tilde ** 2)
    dWc = dzc @ concat_r.T
    dbc = np.sum(dzc, axis=1, keepdims=True)
    dconcat_r = Wc.T @ dzc
    dgamma_r = dconcat_r[:n_a] * a_prev
    da_prev += dconcat_r[:n_a] * gamma_r
    dxt = dconcat_r[n_a:]

    dzu = dgamma_u * gamma_u * (1 - gamma_u)
    dzr = dgamma_r * gamma_r * (1 - gamma_r)
    dWu, dbu = dzu @ concat.T, np.sum(dzu, axis=1, keepdims=True)
    dWr, dbr = dzr @ concat.T, np.sum(dzr, axis=1, keepdims=True)
    dconcat = Wu.T @ dzu + Wr.T @ dzr
    da_prev += dconcat[:n_a]
    dxt += dconcat[n_a:]
    return {"dxt": dxt, "da_prev": da_prev, "dWu": dWu, "dbu": dbu, "dWr": dWr, "dbr": dbr,
            "dWc": dWc, "dbc": dbc}


if __name__ == "__main__":
    params = initialize_parameters(5, 7)
    a = np.zeros((7, 3))
    for _ in range(4):
        a, cache = gru_cell_forward(np.random.default_rng(0).normal(size=(5, 3)), a, params)
    grads = gru_cell_backward(np.ones_like(a), cache)
    print({k: v.shape for k, v in grads.items()})
