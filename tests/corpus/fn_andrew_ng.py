"""Gated Recurrent Unit, as in the Sequence Models course (week 1, "Full GRU").

Column convention: xt is (n_x, m), a_prev is (n_a, m), every gate acts on [a_prev; xt].
    c~ = tanh(Wc [Γr * a_prev, xt] + bc)
    Γu = σ(Wu [a_prev, xt] + bu)
    Γr = σ(Wr [a_prev, xt] + br)
    a  = Γu * c~ + (1 - Γu) * a_prev
"""
import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def initialize_parameters(n_x, n_a):
    np.random.seed(1)
    Wu = np.random.randn(n_a, n_a + n_x) * 0.5
    bu = np.random.randn(n_a, 1) * 0.1
    Wr = np.random.randn(n_a, n_a + n_x) * 0.5
    br = np.random.randn(n_a, 1) * 0.1
    Wc = np.random.randn(n_a, n_a + n_x) * 0.5
    bc = np.random.randn(n_a, 1) * 0.1
    parameters = {"Wu": Wu, "bu": bu, "Wr": Wr, "br": br, "Wc": Wc, "bc": bc}
    return parameters


def gru_cell_forward(xt, a_prev, parameters):
    Wu, bu = parameters["Wu"], parameters["bu"]
    Wr, br = parameters["Wr"], parameters["br"]
    Wc, bc = parameters["Wc"], parameters["bc"]

    n_x, m = xt.shape
    n_a, _ = Wu.shape

    concat = np.zeros((n_a + n_x, m))
    concat[:n_a, :] = a_prev
    concat[n_a:, :] = xt

    gamma_u = sigmoid(np.dot(Wu, concat) + bu)
    gamma_r = sigmoid(np.dot(Wr, concat) + br)

    concat_r = np.concatenate((gamma_r * a_prev, xt), axis=0)
    c_tilde = np.tanh(np.dot(Wc, concat_r) + bc)

    a_next = gamma_u * c_tilde + (1 - gamma_u) * a_prev

    cache = (a_next, a_prev, xt, gamma_u, gamma_r, c_tilde, parameters)
    return a_next, cache


def gru_cell_backward(da_next, cache):
    (a_next, a_prev, xt, gamma_u, gamma_r, c_tilde, parameters) = cache
    Wu, Wr, Wc = parameters["Wu"], parameters["Wr"], parameters["Wc"]
    n_a = a_prev.shape[0]

    dc_tilde = da_next * gamma_u
    dgamma_u = da_next * (c_tilde - a_prev)
    da_prev = da_next * (1 - gamma_u)

    # candidate
    dzc = dc_tilde * (1 - c_tilde ** 2)
    concat_r = np.concatenate((gamma_r * a_prev, xt), axis=0)
    dWc = np.dot(dzc, concat_r.T)
    dbc = np.sum(dzc, axis=1, keepdims=True)
    dconcat_r = np.dot(Wc.T, dzc)
    dra = dconcat_r[:n_a, :]
    dxt = dconcat_r[n_a:, :]
    dgamma_r = dra * a_prev
    da_prev += dra * gamma_r

    # gates
    concat = np.concatenate((a_prev, xt), axis=0)
    dzu = dgamma_u * gamma_u * (1 - gamma_u)
    dzr = dgamma_r * gamma_r * (1 - gamma_r)
    dWu = np.dot(dzu, concat.T)
    dbu = np.sum(dzu, axis=1, keepdims=True)
    dWr = np.dot(dzr, concat.T)
    dbr = np.sum(dzr, axis=1, keepdims=True)
    dconcat = np.dot(Wu.T, dzu) + np.dot(Wr.T, dzr)
    da_prev += dconcat[:n_a, :]
    dxt += dconcat[n_a:, :]

    gradients = {"dxt": dxt, "da_prev": da_prev, "dWu": dWu, "dbu": dbu,
                 "dWr": dWr, "dbr": dbr, "dWc": dWc, "dbc": dbc}
    return gradients


def gru_forward(x, a0, parameters):
    """x: (n_x, m, T_x). Returns a: (n_a, m, T_x) and the caches for gru_backward."""
    caches = []
    n_x, m, T_x = x.shape
    n_a = parameters["Wu"].shape[0]
    a = np.zeros((n_a, m, T_x))
    a_next = a0
    for t in range(T_x):
        a_next, cache = gru_cell_forward(x[:, :, t], a_next, parameters)
        a[:, :, t] = a_next
        caches.append(cache)
    caches = (caches, x)
    return a, caches


def gru_backward(da, caches):
    (caches, x) = caches
    n_a, m, T_x = da.shape
    n_x = x.shape[0]
    dx = np.zeros((n_x, m, T_x))
    da_prevt = np.zeros((n_a, m))
    grads = {k: np.zeros_like(caches[0][6][k]) for k in ("Wu", "bu", "Wr", "br", "Wc", "bc")}
    for t in reversed(range(T_x)):
        g = gru_cell_backward(da[:, :, t] + da_prevt, caches[t])
        dx[:, :, t] = g["dxt"]
        da_prevt = g["da_prev"]
        for k in grads:
            grads[k] += g["d" + k]
    gradients = {"dx": dx, "da0": da_prevt}
    gradients.update({"d" + k: v for k, v in grads.items()})
    return gradients


def update_parameters(parameters, gradients, learning_rate):
    for k in ("Wu", "bu", "Wr", "br", "Wc", "bc"):
        parameters[k] -= learning_rate * gradients["d" + k]
    return parameters
