import numpy as np

sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731


class DictGRU:
    """GRU cell keeping its weights in a dict, like most course notebooks.

    forward returns (h, cache); backward(dh_next, cache) returns the gradients under the
    same keys as self.params, plus "x" and "h_prev".
    """

    def __init__(self, n_in, n_hidden):
        rng = np.random.default_rng(1)
        self.params = {}
        for gate in ("z", "r", "h"):
            self.params["W_" + gate] = rng.normal(0.0, 0.3, (n_in, n_hidden))
            self.params["U_" + gate] = rng.normal(0.0, 0.3, (n_hidden, n_hidden))
            self.params["b_" + gate] = rng.normal(0.0, 0.1, n_hidden)

    def forward(self, x, h_prev):
        p = self.params
        z = sigmoid(x @ p["W_z"] + h_prev @ p["U_z"] + p["b_z"])
        r = sigmoid(x @ p["W_r"] + h_prev @ p["U_r"] + p["b_r"])
        h_cand = np.tanh(x @ p["W_h"] + (r * h_prev) @ p["U_h"] + p["b_h"])
        h = (1 - z) * h_prev + z * h_cand
        return h, (x, h_prev, z, r, h_cand)

    def backward(self, dh_next, cache):
        x, h_prev, z, r, h_cand = cache
        p = self.params
        grads = {}

        d_cand = dh_next * z * (1 - h_cand ** 2)
        grads["W_h"] = x.T @ d_cand
        grads["U_h"] = (r * h_prev).T @ d_cand
        grads["b_h"] = d_cand.sum(0)
        d_rh = d_cand @ p["U_h"].T

        d_z = dh_next * (h_cand - h_prev) * z * (1 - z)
        d_r = d_rh * h_prev * r * (1 - r)
        for gate, d in (("z", d_z), ("r", d_r)):
            grads["W_" + gate] = x.T @ d
            grads["U_" + gate] = h_prev.T @ d
            grads["b_" + gate] = d.sum(0)

        grads["x"] = d_cand @ p["W_h"].T + d_z @ p["W_z"].T + d_r @ p["W_r"].T
        grads["h_prev"] = dh_next * (1 - z) + d_rh * r + d_z @ p["U_z"].T + d_r @ p["U_r"].T
        return grads
