import numpy as np


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def make_params(D, H, scale=0.3, seed=3):
    """Weights for a GRU cell: W* are (D, H), U* are (H, H), b* are (H,)."""
    rng = np.random.default_rng(seed)
    p = {}
    for g in ("u", "r", "c"):
        p["W" + g] = rng.normal(0, scale, (D, H))
        p["U" + g] = rng.normal(0, scale, (H, H))
        p["b" + g] = rng.normal(0, 0.1, H)
    return p


def cell_forward(x, h, p):
    u = _sig(x @ p["Wu"] + h @ p["Uu"] + p["bu"])
    r = _sig(x @ p["Wr"] + h @ p["Ur"] + p["br"])
    c = np.tanh(x @ p["Wc"] + (r * h) @ p["Uc"] + p["bc"])
    h_new = u * h + (1 - u) * c
    cache = dict(x=x, h=h, u=u, r=r, c=c, p=p)
    return h_new, cache


def cell_backward(dh_new, cache):
    """Returns (dx, dh, grads) where grads has the same keys as p."""
    x, h, u, r, c, p = (cache[k] for k in ("x", "h", "u", "r", "c", "p"))
    du = dh_new * (h - c)
    dc = dh_new * (1 - u)
    dh = dh_new * u

    dac = dc * (1 - c * c)
    grads = {"Wc": x.T @ dac, "Uc": (r * h).T @ dac, "bc": dac.sum(0)}
    drh = dac @ p["Uc"].T
    dh += drh * r
    dr = drh * h

    dau = du * u * (1 - u)
    dar = dr * r * (1 - r)
    grads.update(Wu=x.T @ dau, Uu=h.T @ dau, bu=dau.sum(0))
    grads.update(Wr=x.T @ dar, Ur=h.T @ dar, br=dar.sum(0))
    dx = dac @ p["Wc"].T + dau @ p["Wu"].T + dar @ p["Wr"].T
    dh += dau @ p["Uu"].T + dar @ p["Ur"].T
    return dx, dh, grads
