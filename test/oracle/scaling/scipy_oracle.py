"""scipy.optimize.minimize(method="L-BFGS-B") on the problems the TypeScript tests give it, with objectives
written here independently: reads a JSON list of problems on stdin, prints a JSON list of results.

A "grid" problem is FLAME-MoE's fit (analysis/find_scaling_law.ipynb): minimize from each start in turn,
keep the lowest objective among the results with result.success; it returns that result and its start's
index. The scaling objectives are the Huber losses' np.mean, as the notebook's huber_loss, or their sum
("reduction": "sum"), with their exact gradients (the notebook let scipy difference them)."""
import json
import sys

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber


def rosenbrock(x):
    x = np.asarray(x)
    f = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    g = np.zeros_like(x)
    g[:-1] += -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return f, g


def quadratic(A, b):
    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    return lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b)


def scaling(runs, delta, param, reduction):
    logN = np.log([r["N"] for r in runs])
    logD = np.log([r["D"] for r in runs])
    logL = np.log([r["loss"] for r in runs])

    def fun(x):
        if param == "raw":
            E, A, alpha, B, beta = x
            pred = E + A * np.exp(-alpha * logN) + B * np.exp(-beta * logD)
            if np.any(pred <= 0):
                return np.inf, np.full(5, np.nan)
            r = np.log(pred) - logL
            w = np.clip(r, -delta, delta) / pred
            g = np.array([w.sum(), (w * np.exp(-alpha * logN)).sum(),
                          -(w * A * np.exp(-alpha * logN) * logN).sum(),
                          (w * np.exp(-beta * logD)).sum(),
                          -(w * B * np.exp(-beta * logD) * logD).sum()])
        else:
            e, a, alpha, b, beta = x
            terms = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
            top = terms.max(axis=0)
            w = np.exp(terms - top)
            s = w.sum(axis=0)
            r = top + np.log(s) - logL
            h = np.clip(r, -delta, delta) / s
            g = np.array([(h * w[2]).sum(), (h * w[0]).sum(), -(h * w[0] * logN).sum(),
                          (h * w[1]).sum(), -(h * w[1] * logD).sum()])
        losses = huber(delta, r)
        if reduction == "mean":
            return float(np.mean(losses)), g / len(losses)
        return float(losses.sum()), g

    return fun


def lbfgsb(fun, x0, bounds):
    r = minimize(fun, np.asarray(x0, dtype=float), jac=True, method="L-BFGS-B", bounds=bounds)
    return r, {"x": r.x.tolist(), "fun": float(r.fun), "nit": int(r.nit), "nfev": int(r.nfev),
               "status": int(r.status), "message": str(r.message)}


def main():
    out = []
    for p in json.load(sys.stdin):
        if p["kind"] == "rosenbrock":
            fun = rosenbrock
        elif p["kind"] == "quadratic":
            fun = quadratic(p["A"], p["b"])
        else:
            fun = scaling(p["runs"], p["delta"], p["param"], p.get("reduction", "mean"))
        bounds = None
        if p.get("bounds") is not None:
            bounds = [(None if lo is None else lo, None if hi is None else hi) for lo, hi in p["bounds"]]
        if p["kind"] != "grid":
            out.append(lbfgsb(fun, p["x0"], bounds)[1])
            continue
        best, lowest = None, np.inf
        for i, x0 in enumerate(p["starts"]):
            r, summary = lbfgsb(fun, x0, bounds)
            if r.success:
                current = fun(r.x)[0]
                if current < lowest:
                    best, lowest = dict(summary, start=i), current
        out.append(best)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
