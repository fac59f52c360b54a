r"""How well do predictors that ignore the context do on a run's masked valid tokens?

A pretrained model's MLM accuracy means little on its own: some tokens
(``▁the``, ``,``, ``.``) are so frequent that always guessing them is right
surprisingly often. This script scores three context-free predictors on
*exactly* the masked positions that ``minibert pretrain`` evaluates (same
tokenizer, same valid pairs, same fixed-seed masks), with unigram
probabilities $p(w) = c(w) / \sum_v c(v)$ counted on the run's *training*
file (special tokens excluded):

* **most frequent token**: predict $\arg\max_w p(w)$ everywhere;
  accuracy $= \frac{1}{|M|} \sum_{i \in M} [x_i = \arg\max_w p(w)]$;
* **sampling by unigram frequency**: draw the guess from $p$; its *expected*
  accuracy is $\frac{1}{|M|} \sum_{i \in M} p(x_i)$ (computed exactly, no
  sampling noise);
* **unigram cross-entropy**: $\frac{1}{|M|} \sum_{i \in M} -\log p(x_i)$
  (add-one smoothed) and its perplexity, to set beside the model's;
* **NSP majority label**: always answer the NSP label that is most frequent
  among the *training* pairs. The pair generator makes a "random" B whenever
  a chunk holds a single sentence, so the labels are not exactly 50/50 and
  this, not 50%, is the NSP accuracy to beat.

Usage (after a run, or while it runs: only its ``checkpoint.pt`` and
``tokenizer/`` are read)::

    python scripts/unigram_baseline.py runs/tiny
    python scripts/unigram_baseline.py runs/tiny --json runs/tiny/unigram_baseline.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from minibert.cli import CLIError
from minibert.model import IGNORE_INDEX
from minibert.pretrain import build_dataset, fixed_valid_batches, read_documents, run_settings
from minibert.pretraining_data import tokenize_documents
from minibert.tokenization import load_tokenizer


def unigram_counts(docs, tokenizer) -> torch.Tensor:
    """Counts $c(w)$ of every token id in the tokenised documents; special tokens get 0."""
    counts = torch.zeros(tokenizer.vocab_size, dtype=torch.float64)
    for doc in tokenize_documents(docs, tokenizer):
        for sentence in doc:
            counts += torch.bincount(torch.tensor(sentence), minlength=tokenizer.vocab_size).double()
    counts[sorted(tokenizer.special_ids)] = 0
    return counts


def baseline(run: Path) -> dict:
    """The three context-free scores on the masked valid tokens of the run in folder ``run``."""
    try:
        args = run_settings(run)
    except CLIError as exc:
        raise SystemExit(f"unigram_baseline: error: {exc}.") from None
    tokenizer = load_tokenizer(run / "tokenizer")
    if args.train is None:
        raise SystemExit("unigram_baseline: the run found its data automatically and has no results.json yet; "
                         "rerun when it has finished.")

    train_docs = read_documents(args.train, "train")
    counts = unigram_counts(train_docs, tokenizer)
    p = counts / counts.sum()                                            # (V,) unigram probabilities
    p_smooth = (counts + 1) / (counts.sum() + tokenizer.vocab_size)      # (V,) add-one smoothed
    _, batches = fixed_valid_batches(read_documents(args.valid, "valid"), tokenizer, args)
    targets = torch.cat([b["mlm_labels"][b["mlm_labels"] != IGNORE_INDEX] for b in batches])  # (|M|,)

    top = int(p.argmax())
    train_nsp = build_dataset(train_docs, tokenizer, args, args.seed, "train").nsp_labels      # (N_train,)
    majority = int(train_nsp.float().mean() > 0.5)                    # 1 = "B is random"
    valid_nsp = torch.cat([b["nsp_labels"] for b in batches])        # (N_valid,)
    loss = float(-p_smooth[targets].log().mean())
    return {
        "run": str(run),
        "train": str(args.train),
        "valid": str(args.valid),
        "masked_tokens": int(targets.numel()),
        "most_frequent_token": tokenizer.convert_ids_to_tokens([top])[0],
        "most_frequent_token_accuracy": float((targets == top).double().mean()),
        "unigram_sampling_expected_accuracy": float(p[targets].mean()),
        "unigram_cross_entropy": loss,
        "unigram_perplexity": math.exp(loss),
        "valid_pairs": int(valid_nsp.numel()),
        "nsp_majority_label": majority,
        "nsp_train_fraction_random": float(train_nsp.float().mean()),
        "nsp_majority_accuracy": float((valid_nsp == majority).double().mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="output folder of a minibert pretrain run (e.g. runs/tiny)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    result = baseline(args.run)
    print(f"masked valid tokens: {result['masked_tokens']:,} ({result['valid']})")
    print(f"always '{result['most_frequent_token']}' (most frequent training token): "
          f"accuracy {result['most_frequent_token_accuracy']:.4f}")
    print(f"sampling by unigram frequency: expected accuracy {result['unigram_sampling_expected_accuracy']:.4f}")
    print(f"unigram cross-entropy {result['unigram_cross_entropy']:.4f} nats, "
          f"perplexity {result['unigram_perplexity']:.1f}")
    label = "random" if result["nsp_majority_label"] else "follows"
    print(f"NSP: {result['nsp_train_fraction_random']:.1%} of the training pairs are random; always "
          f"'{label}': accuracy {result['nsp_majority_accuracy']:.4f} on {result['valid_pairs']:,} valid pairs")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
