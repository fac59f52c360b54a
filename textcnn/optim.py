"""Adadelta (Zeiler 2012), the optimizer of Kim (2014), with a sparse path for embedding rows."""

from __future__ import annotations

import torch


class Adadelta(torch.optim.Optimizer):
    """Adadelta (Zeiler 2012) that also takes sparse gradients, updating only the rows they touch.

    For a parameter $\\theta$ with gradient $g_t$ at step $t$:

    $$E[g^2]_t = \\rho E[g^2]_{t-1} + (1-\\rho) g_t^2, \\quad
      \\Delta_t = \\frac{\\sqrt{E[\\Delta^2]_{t-1} + \\epsilon}}{\\sqrt{E[g^2]_t + \\epsilon}} g_t, \\quad
      E[\\Delta^2]_t = \\rho E[\\Delta^2]_{t-1} + (1-\\rho) \\Delta_t^2, \\quad
      \\theta_t = \\theta_{t-1} - \\eta \\Delta_t.$$

    A row of an embedding matrix that is not in the batch has $g_t = 0$, so
    $\\Delta_t = 0$ and both averages just shrink by $\\rho$. Instead of
    touching all $V$ rows every step, the sparse path remembers the step at
    which each row was last updated and applies the missed $\\rho^k$ when the
    row comes back: the same numbers as dense Adadelta (``torch.optim.Adadelta``),
    at the cost of the batch's rows only. Dense gradients take the ordinary path.
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.95, eps: float = 1e-6):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = torch.zeros_like(p)
                    state["acc_delta"] = torch.zeros_like(p)
                    if p.grad.is_sparse:
                        state["last"] = torch.zeros(p.shape[0], dtype=torch.long, device=p.device)
                state["step"] += 1
                sq, acc = state["square_avg"], state["acc_delta"]
                if not p.grad.is_sparse:
                    g = p.grad
                    sq.mul_(rho).addcmul_(g, g, value=1 - rho)
                    delta = acc.add(eps).sqrt_().div_(sq.add(eps).sqrt_()).mul_(g)
                    acc.mul_(rho).addcmul_(delta, delta, value=1 - rho)
                    p.add_(delta, alpha=-lr)
                    continue
                grad = p.grad.coalesce()
                rows, g = grad.indices()[0], grad.values()  # (n,), (n, k)
                # the k steps this row missed had g = 0: both averages shrank by rho^k
                missed = (state["step"] - 1 - state["last"][rows]).to(p.dtype)  # (n,)
                decay = torch.pow(torch.tensor(rho, dtype=p.dtype, device=p.device), missed)[:, None]
                sq_rows = sq[rows] * (decay * rho) + (1 - rho) * g * g  # E[g^2]_t
                acc_rows = acc[rows] * decay  # E[Delta^2]_{t-1}
                delta = (acc_rows + eps).sqrt() / (sq_rows + eps).sqrt() * g
                acc[rows] = rho * acc_rows + (1 - rho) * delta * delta
                sq[rows] = sq_rows
                p.index_add_(0, rows, delta, alpha=-lr)
                state["last"][rows] = state["step"]
        return None
