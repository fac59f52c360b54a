"""Statistics and figures of tutorials/06_pretraining_data.md, measured on real WikiText.

    python scripts/figures/ch06_pretraining_data.py --train ../shared/data/wikitext-2-raw/wiki.valid.raw

(without ``--train`` it uses ``minibert.wikitext.find_corpus``). Prints the
numbers the chapter quotes and writes

* tutorials/figures/ch06_pair_lengths.png: length of the NSP pairs
  (with [CLS]/[SEP]), real next vs random next;
* tutorials/figures/ch06_mask_by_position.png: how often each position is
  selected over 20 epochs of dynamic masking, and what selected tokens become.

About 15 s on a 2-core CPU (most of it training the SentencePiece vocabulary).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from minibert.pretraining_data import (IGNORE_INDEX, EpochPairs, PretrainingDataset,  # noqa: E402
                                       create_nsp_examples, generator_for_epoch, iterate_batches,
                                       pair_seed_for_epoch)
from minibert.tokenization import SentencePieceTokenizer  # noqa: E402
from minibert.wikitext import documents, find_corpus, read_articles  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tutorials" / "figures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", help="WikiText .raw file (default: find_corpus's training file)")
    parser.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece vocabulary (tiny preset: 8000)")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of dynamic masking to count")
    parser.add_argument("--seed", type=int, default=1234,
                        help="minibert pretrain's default seed, so the numbers describe chapter 07's run")
    args = parser.parse_args()
    path = args.train or find_corpus()[0]

    articles = read_articles(path)
    docs = documents(path)
    sentences = [s for d in docs for s in d]
    print(f"corpus: {path}")
    print(f"articles {len(articles)}, documents {len(docs)}, sentences {len(sentences)}, "
          f"words/sentence {sum(len(s.split()) for s in sentences) / len(sentences):.1f}")

    tokenizer = SentencePieceTokenizer.train(sentences, args.vocab_size, seed=args.seed)
    tokenised = [[tokenizer.text_to_ids(s) for s in d] for d in docs]
    n_tokens = sum(len(s) for d in tokenised for s in d)
    print(f"SentencePiece {tokenizer.vocab_size}: tokens {n_tokens}, tokens/sentence {n_tokens / len(sentences):.1f}")

    pairs = EpochPairs(tokenised, tokenizer, args.seq_len, args.seed)   # what minibert pretrain trains on
    examples = pairs.examples(0)
    forced = create_nsp_examples(tokenised, args.seq_len, random.Random(pair_seed_for_epoch(args.seed, 0)),
                                 nsp_prob=0.0)
    lengths = torch.tensor([len(e.tokens_a) + len(e.tokens_b) + 3 for e in examples])
    is_random = torch.tensor([e.is_random_next for e in examples])
    print(f"NSP pairs (seq_len {args.seq_len}): {len(examples)}, random next {is_random.float().mean():.3f}, "
          f"random when nsp_prob=0 (one-sentence chunks) {sum(e.is_random_next for e in forced) / len(forced):.3f}")
    print(f"pair length incl. specials: mean {lengths.float().mean():.1f}, "
          f"= {args.seq_len}: {(lengths == args.seq_len).float().mean():.3f}, "
          f"< {args.seq_len // 2}: {(lengths < args.seq_len // 2).float().mean():.3f}, max {lengths.max().item()}")
    print(f"negative B from A's document: {sum(e.is_random_next and e.document_a == e.document_b for e in examples)}")

    seen, negatives, per_epoch = set(), set(), []
    for epoch in range(args.epochs):
        cut = pairs.examples(epoch)
        per_epoch.append(len(cut))
        keys = [(tuple(e.tokens_a), tuple(e.tokens_b)) for e in cut]
        seen.update(keys)
        negatives.update(k for k, e in zip(keys, cut) if e.is_random_next)
    print(f"dynamic pairs over {args.epochs} epochs: {min(per_epoch)}-{max(per_epoch)} pairs per epoch, "
          f"{len(seen)} distinct pairs ({len(seen) / len(examples):.1f} x one epoch's), {len(negatives)} distinct "
          f"random-next pairs (static pairs: {len(examples)} and {int(is_random.sum())})")

    ex = examples[0]
    print(f"example 0 ({'random' if ex.is_random_next else 'real'} next):")
    print(f"  A: {tokenizer.decode(ex.tokens_a)[:300]}")
    print(f"  B: {tokenizer.decode(ex.tokens_b)[:300]}")

    dataset = PretrainingDataset(examples, tokenizer, args.seq_len)
    T = args.seq_len
    selected_count = torch.zeros(T)
    real_count = torch.zeros(T)
    outcome = torch.zeros(3)  # [MASK], random, unchanged
    n_selected = n_candidates = 0
    for epoch in range(args.epochs):
        for batch in iterate_batches(dataset, 32, generator_for_epoch(args.seed, epoch), drop_last=False):
            labels, ids = batch["mlm_labels"], batch["input_ids"]
            sel = labels != IGNORE_INDEX
            selected_count += sel.sum(0)
            candidates = batch["attention_mask"].bool() & (ids != tokenizer.cls_id) & (ids != tokenizer.sep_id)
            real_count += candidates.sum(0)
            n_selected += sel.sum().item()
            n_candidates += candidates.sum().item()
            outcome += torch.tensor([((ids == tokenizer.mask_id) & sel).sum().item(),
                                     (sel & (ids != tokenizer.mask_id) & (ids != labels)).sum().item(),
                                     (sel & (ids == labels)).sum().item()], dtype=torch.float)
    outcome /= outcome.sum()
    print(f"dynamic masking over {args.epochs} epochs: selected {n_selected / n_candidates:.4f} of non-special "
          f"tokens; [MASK] {outcome[0]:.4f}, random {outcome[1]:.4f}, unchanged {outcome[2]:.4f}")
    wwm = PretrainingDataset(examples, tokenizer, args.seq_len, whole_word_mask=True)
    b = wwm.batch(torch.arange(len(wwm)), torch.Generator().manual_seed(args.seed))
    frac = (b["mlm_labels"] != IGNORE_INDEX).sum().item() / (~wwm.special_mask).sum().item()
    print(f"whole-word masking: selected {frac:.4f} of non-special tokens "
          f"({wwm.word_starts[~wwm.special_mask].float().mean():.3f} of tokens start a word)")

    OUT.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = torch.arange(0, T + 1, 8).tolist()
    ax.hist([lengths[~is_random].tolist(), lengths[is_random].tolist()], bins=bins, stacked=True,
            label=["B really follows A (label 0)", "B from another document (label 1)"])
    ax.set_xlabel("tokens in [CLS] A [SEP] B [SEP]")
    ax.set_ylabel("pairs (log scale)")
    ax.set_yscale("log")
    ax.set_title(f"NSP pairs from {Path(path).name} (max {T}, SentencePiece {tokenizer.vocab_size})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(OUT / "ch06_pair_lengths.png", dpi=120)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw=dict(width_ratios=[3, 1]))
    rate = selected_count / real_count.clamp(min=1)
    ax1.plot(range(T), rate.tolist(), lw=1)
    ax1.axhline(0.15, color="gray", ls="--", lw=1, label="15%")
    ax1.set_xlabel("position in the sequence")
    ax1.set_ylabel("selected / non-special tokens")
    ax1.set_ylim(0, 0.2)
    ax1.set_title(f"Dynamic masking, {args.epochs} epochs: ~15% at every position")
    ax1.legend()
    ax2.bar(["[MASK]", "random", "same"], outcome.tolist(), color=["C0", "C1", "C2"])
    for i, v in enumerate(outcome.tolist()):
        ax2.text(i, v + 0.01, f"{v:.3f}", ha="center")
    ax2.set_ylim(0, 1)
    ax2.set_title("selected tokens become")
    fig.tight_layout()
    fig.savefig(OUT / "ch06_mask_by_position.png", dpi=120)
    print(f"wrote {OUT / 'ch06_pair_lengths.png'} and {OUT / 'ch06_mask_by_position.png'}")


if __name__ == "__main__":
    main()
