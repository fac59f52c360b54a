r"""Two checks of why NSP is (not) learned by a pretraining run: is the task solvable, and does it get gradient?

1. **A bag-of-pieces baseline.** NSP on WikiText is mostly topic detection:
   a real B shares rare pieces (names, terms) with A, a random B from
   another article does not. The score of a pair is the idf-weighted overlap
   of the pieces of A and B,

   $$s(A, B) = \frac{\sum_{w \in A \cap B} \log \frac{N}{1 + \mathrm{df}(w)}}{\sqrt{1 + |A|\,|B|}},$$

   with $A$, $B$ the *sets* of non-special piece ids of the two segments,
   $N$ the number of training pairs and $\mathrm{df}(w)$ the number of
   training pairs that contain $w$. "Random" is predicted when
   $s < \theta$; $\theta$ is chosen on the training pairs and applied to the
   run's fixed valid pairs. No learning beyond one threshold: if this scores
   far above the majority label, the task is solvable from lexical overlap
   alone, and a model that stays at the majority label has an optimisation
   (or capacity) problem, not a data problem.
2. **Gradient share.** The norms of $\nabla L_{\mathrm{mlm}}$ and
   $\nabla L_{\mathrm{nsp}}$ on the encoder (embeddings + layers), the pooler
   and the NSP head, averaged over the first 8 fixed valid batches, with the
   run's final weights in training mode (dropout on). Adam normalises each
   parameter's update by the size of its *total* gradient, so on the shared
   encoder an NSP gradient much smaller than the MLM one barely steers the
   update.
3. **Seen vs unseen articles.** The model's NSP accuracy (eval mode) on
   fresh pairs cut from the *training* articles with a seed no training
   epoch used (new split points and partners, but articles -- topics,
   names, sentences -- the model has trained on), next to its accuracy on
   the valid pairs (articles it never saw). A model that scores well on the
   first and at the majority label on the second has learned NSP for its
   training articles, not the general rule.

4. **The training batches** (``--batches STEPS``; reads the run's settings,
   ``tokenizer/``, token cache and ``metrics.jsonl``, not its weights). The first
   ``STEPS`` batches of the run's own training stream, rebuilt exactly as
   ``minibert pretrain`` served them: the overlap score's AUC on their rows
   ("follows" above "random": are the labels right and the task present in
   what the model trains on?), the fraction of "random" labels in each
   logging window, and in how many windows the logged training NSP accuracy
   equals that fraction or its complement -- the signature of a model that
   answers the same label for every pair of the window.

Usage::

    python scripts/nsp_diagnostics.py runs/tiny                  # a finished minibert pretrain run
    python scripts/nsp_diagnostics.py runs/q_dyn runs/tiny --json out.json   # several runs side by side
    python scripts/nsp_diagnostics.py runs/tiny --batches 500    # also check 4 on the first 500 steps
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
from pathlib import Path

import torch

from minibert.hf import load_checkpoint
from minibert.pretrain import CHECKPOINT, build_dataset, fixed_valid_batches, read_documents, run_settings
from minibert.pretraining_data import iterate_batches
from minibert.tokenization import load_tokenizer


def segment_sets(dataset, row: int) -> tuple[set, set]:
    """The sets of non-special piece ids of segment A and segment B of one pair of ``dataset``."""
    n = int(dataset.lengths[row])
    ids = dataset.input_ids[row, :n].tolist()
    types = dataset.token_type_ids[row, :n].tolist()
    special = dataset.special_mask[row, :n].tolist()
    a = {i for i, t, s in zip(ids, types, special) if t == 0 and not s}
    b = {i for i, t, s in zip(ids, types, special) if t == 1 and not s}
    return a, b


def pair_score(a: set, b: set, df: collections.Counter, n_pairs: int) -> float:
    """$s(A, B)$ of the module docstring: idf-weighted overlap of two piece sets."""
    return sum(math.log(n_pairs / (1 + df[w])) for w in a & b) / math.sqrt(1 + len(a) * len(b))


def overlap_scores(dataset, df: collections.Counter, n_pairs: int) -> torch.Tensor:
    """$s(A, B)$ of every pair of ``dataset`` (see the module docstring), shape (N,)."""
    return torch.tensor([pair_score(*segment_sets(dataset, row), df, n_pairs) for row in range(len(dataset))],
                        dtype=torch.float64)


def best_threshold(scores: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """The threshold $\\theta$ (over the score quantiles) with the best accuracy of "random iff s < θ"."""
    best = (0.0, float("nan"))
    for theta in torch.quantile(scores, torch.linspace(0.01, 0.99, 197, dtype=torch.float64)).tolist():
        accuracy = float(((scores < theta).long() == labels).double().mean())
        best = max(best, (accuracy, theta))
    return best[1], best[0]


def gradient_norms(model, batches: list[dict]) -> dict:
    """Mean norm of the MLM and NSP gradients on encoder, pooler and NSP head over ``batches``."""
    groups = {"encoder": [p for n, p in model.named_parameters() if n.startswith("bert.") and "pooler" not in n],
              "pooler": list(model.bert.pooler.parameters()), "nsp_head": list(model.nsp.parameters())}
    model.train()
    torch.manual_seed(0)   # dropout masks: the same numbers on every call
    norms = {}
    for loss_name in ("mlm_loss", "nsp_loss"):
        total = {k: 0.0 for k in groups}
        for batch in batches:
            model.zero_grad(set_to_none=True)
            out = model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                        attention_mask=batch["attention_mask"], mlm_labels=batch["mlm_labels"],
                        nsp_labels=batch["nsp_labels"])
            out[loss_name].backward()
            for key, params in groups.items():
                grads = [p.grad.norm() ** 2 for p in params if p.grad is not None]
                total[key] += float(sum(grads)) ** 0.5 if grads else 0.0
        norms[loss_name] = {k: v / len(batches) for k, v in total.items()}
    return norms


def diagnose(run: Path, all_valid: bool = False, checkpoint: Path | None = None) -> dict:
    """Checks 1-3 for the run in folder ``run``: its final weights, or those of ``checkpoint`` (e.g. one of its
    ``--keep-every`` snapshots); on the valid pairs the run evaluates on, or on all of them with ``all_valid``."""
    if not (run / CHECKPOINT).is_file():
        raise SystemExit(f"nsp_diagnostics: no {CHECKPOINT} in {run}; point it at a minibert pretrain output folder.")
    checkpoint = checkpoint or run / CHECKPOINT
    args = run_settings(run)
    if all_valid:
        args.eval_batches = 0
    tokenizer = load_tokenizer(run / "tokenizer")
    train_set = build_dataset(read_documents(args.train, "train"), tokenizer, args, args.seed, "train")
    valid_set, batches = fixed_valid_batches(read_documents(args.valid, "valid"), tokenizer, args)
    valid_rows = sum(len(b["nsp_labels"]) for b in batches)                 # the pairs the run evaluates on
    df = collections.Counter()
    for row in range(len(train_set)):
        a, b = segment_sets(train_set, row)
        df.update(a | b)
    train_scores = overlap_scores(train_set, df, len(train_set))
    theta, train_accuracy = best_threshold(train_scores, train_set.nsp_labels)
    valid_scores = overlap_scores(valid_set, df, len(train_set))[:valid_rows]
    valid_labels = valid_set.nsp_labels[:valid_rows]
    valid_accuracy = float(((valid_scores < theta).long() == valid_labels).double().mean())
    majority = int(train_set.nsp_labels.double().mean() > 0.5)
    model = load_checkpoint(checkpoint)
    seen_set = build_dataset(read_documents(args.train, "train"), tokenizer, args, args.seed + 7919, "train")
    seen_rows = min(valid_rows, len(seen_set))
    seen_batches = list(iterate_batches(seen_set, 32, torch.Generator().manual_seed(args.seed + 7920),
                                        shuffle=True, drop_last=False))
    return {
        "run": str(run), "checkpoint": str(checkpoint),
        "train_pairs": len(train_set), "valid_pairs": valid_rows,
        "overlap_threshold": theta,
        "overlap_train_accuracy": train_accuracy,
        "overlap_valid_accuracy": valid_accuracy,
        "majority_valid_accuracy": float((valid_labels == majority).double().mean()),
        "gradient_norms": gradient_norms(model, batches[:8]),
        "model_nsp_accuracy_seen_articles": nsp_accuracy(model, seen_batches, seen_rows),
        "model_nsp_accuracy_valid": nsp_accuracy(model, batches, valid_rows),
        "seen_article_pairs": seen_rows,
    }


@torch.no_grad()
def training_batches_check(run: Path, steps: int) -> dict:
    """Check 4 of the module docstring on the first ``steps`` training batches of ``run``."""
    from minibert.pretrain import token_cache_folder, training_pairs, training_stream
    from minibert.token_cache import token_cache
    from minibert.training_utils import Distributed

    args = run_settings(run)
    results_file = run / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    recorded, world_size = results.get("args", {}), results.get("world_size", 1)
    args.token_cache = recorded.get("token_cache", args.token_cache)
    tokenizer = load_tokenizer(run / "tokenizer")
    cache, _ = token_cache(token_cache_folder(args, run), Path(args.train), tokenizer, run / "tokenizer")
    # as minibert pretrain: the stream serves global micro-batches, --grad-accum of them per step
    micro = args.batch_size * world_size
    stream = training_stream(training_pairs(args, cache, tokenizer), micro, args.seed, 0, 0, Distributed())
    special = set(tokenizer.special_ids)
    rows, labels = [], []
    for _ in range(steps * args.grad_accum):
        _, _, batch = next(stream)
        ids = torch.where(batch["mlm_labels"] != -100, batch["mlm_labels"], batch["input_ids"])   # unmasked
        for r in range(ids.shape[0]):
            real = batch["attention_mask"][r].bool()
            a = set(ids[r][real & (batch["token_type_ids"][r] == 0)].tolist()) - special
            b = set(ids[r][real & (batch["token_type_ids"][r] == 1)].tolist()) - special
            rows.append((a, b))
            labels.append(int(batch["nsp_labels"][r]))
    df = collections.Counter(w for a, b in rows for w in a | b)
    n = len(rows)
    scores = torch.tensor([pair_score(a, b, df, n) for a, b in rows], dtype=torch.float64)
    y = torch.tensor(labels)
    follows, random_ = scores[y == 0], scores[y == 1]
    auc = float((follows[:, None] > random_[None, :]).double().mean()
                + 0.5 * (follows[:, None] == random_[None, :]).double().mean())
    every = recorded.get("log_every", args.log_every)
    rows_per_step = micro * args.grad_accum
    logged = {r["step"]: r["nsp_accuracy"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if r.get("split") == "train" and "nsp_accuracy" in r}
    windows, constant = [], 0
    for end in range(every, steps + 1, every):
        fraction = float(y[(end - every) * rows_per_step:end * rows_per_step].double().mean())
        accuracy = logged.get(end)
        same = accuracy is not None and min(abs(accuracy - fraction), abs(accuracy - (1 - fraction))) < 1e-9
        constant += same
        windows.append({"step": end, "random_fraction": fraction, "logged_train_nsp_accuracy": accuracy,
                        "one_label_answered": same})
    return {"batch_rows": n, "random_fraction": float(y.double().mean()), "overlap_auc": auc,
            "windows": windows, "windows_answering_one_label": constant}


def nsp_accuracy(model, batches: list[dict], rows: int) -> float:
    """NSP accuracy of ``model`` (eval mode) on the first ``rows`` pairs of ``batches``."""
    was_training = model.training
    model.eval()
    correct = seen = 0
    for batch in batches:
        if seen >= rows:
            break
        take = min(rows - seen, len(batch["nsp_labels"]))
        out = model(batch["input_ids"][:take], token_type_ids=batch["token_type_ids"][:take],
                    attention_mask=batch["attention_mask"][:take])
        correct += int((out["nsp_logits"].argmax(-1) == batch["nsp_labels"][:take]).sum())
        seen += take
    model.train(was_training)
    return correct / max(seen, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="output folders of minibert pretrain runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the results (a list, one per run) here")
    parser.add_argument("--batches", type=int, default=0, metavar="STEPS",
                        help="also rebuild the first STEPS training batches and check their labels (check 4)")
    parser.add_argument("--batches-only", action="store_true", help="only check 4 (skips checks 1-3)")
    parser.add_argument("--all-valid-pairs", action="store_true",
                        help="score every valid pair, not only the first --eval-batches batches the run evaluates on")
    parser.add_argument("--snapshots", action="store_true",
                        help="checks 1-3 for every snapshots/*.pt of each run (minibert pretrain --keep-every) "
                             "as well as for its final checkpoint")
    options = parser.parse_args(argv)
    if options.batches_only and options.batches <= 0:
        parser.error("--batches-only needs --batches STEPS")
    results = []
    for run in options.runs:
        if options.batches > 0:
            check = training_batches_check(run, options.batches)
            windows = check["windows"]
            print(f"{run}: first {options.batches} training steps ({check['batch_rows']:,} rows): "
                  f"{100 * check['random_fraction']:.1f}% 'random'; overlap AUC {check['overlap_auc']:.3f} "
                  f"('follows' scores above 'random'); the logged train NSP accuracy equals the label mix in "
                  f"{check['windows_answering_one_label']} of {len(windows)} logging windows (one label answered)")
            print("  'random' fraction per window: " + " ".join(f"{w['random_fraction']:.2f}" for w in windows))
            if options.batches_only:
                results.append({"run": str(run), "batches": check})
                continue
        for checkpoint in [*(sorted((run / "snapshots").glob("*.pt")) if options.snapshots else []), None]:
            result = diagnose(run, options.all_valid_pairs, checkpoint)
            if options.batches > 0:
                result["batches"] = check
            results.append(result)
            report(result)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


def report(result: dict) -> None:
    """Print checks 1-3 of one run (or snapshot)."""
    print(f"{result['checkpoint']}: bag-of-pieces overlap: accuracy {result['overlap_train_accuracy']:.4f} on the "
          f"{result['train_pairs']:,} training pairs (threshold chosen there), "
          f"{result['overlap_valid_accuracy']:.4f} on the {result['valid_pairs']:,} valid pairs "
          f"(majority label: {result['majority_valid_accuracy']:.4f})")
    print(f"  model NSP accuracy: {result['model_nsp_accuracy_seen_articles']:.4f} on "
          f"{result['seen_article_pairs']:,} fresh pairs of the training articles, "
          f"{result['model_nsp_accuracy_valid']:.4f} on the valid pairs (unseen articles)")
    for loss_name, norms in result["gradient_norms"].items():
        print(f"  |grad {loss_name}|: " + ", ".join(f"{k} {v:.2e}" for k, v in norms.items()))


if __name__ == "__main__":
    sys.exit(main())
