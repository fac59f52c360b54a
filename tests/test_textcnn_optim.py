"""Adadelta (Zeiler 2012) with its sparse, row-lazy path for embedding rows."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from helpers import max_abs_diff, random_token_batch as _random_batch, toy_textcnn as _model
from textcnn.model import pad_batch
from textcnn.optim import Adadelta


def test_sparse_adadelta_equals_dense_adadelta():
    """Our row-lazy Adadelta (rho 0.95, eps 1e-6) matches torch.optim.Adadelta step for step."""
    a = _model(sparse=True, dropout=0.0)
    b = _model(sparse=False, dropout=0.0)
    b.load_state_dict(a.state_dict())
    opt_a = Adadelta([p for p in a.parameters() if p.requires_grad], lr=1.0, rho=0.95, eps=1e-6)
    opt_b = torch.optim.Adadelta([p for p in b.parameters() if p.requires_grad], lr=1.0, rho=0.95, eps=1e-6)
    for step in range(15):
        lists, y = _random_batch(100 + step, n=3)  # small batches: many rows skip many steps
        ids, lengths = pad_batch(lists, min_length=5)
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            F.cross_entropy(model(ids, lengths), y).backward()
            opt.step()
    diff = max(max_abs_diff(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))
    assert diff <= 1e-5, f"parameters differ by {diff:.2e} after 15 steps"
