"""How fast does the pretraining data pipeline make batches, compared with how fast tiny eats them?

    python scripts/benchmark_data_pipeline.py --train ../shared/data/wikitext-2-raw/wiki.valid.raw

Steps, each timed: parse WikiText into documents of sentences; train a
SentencePiece vocabulary (the preset's size); tokenise every sentence; cut NSP
pairs; build the padded tensors (the one-off cost). Then serve masked batches
with ``iterate_batches`` (the per-step cost) and, unless ``--no-model``, time
training steps of ``BertForPreTraining`` at the same preset, batch and
sequence length (forward + backward + AdamW). The issue asks for a pipeline
at least 10x faster than the model.

This script times the readable list path on one file; the path
``minibert pretrain`` uses at scale (token cache, range pairs) and its memory
at 1 M - 100 M tokens are measured by ``scripts/benchmark_token_cache.py``.
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from minibert.pretraining_data import PretrainingDataset, create_nsp_examples, generator_for_epoch, iterate_batches
from minibert.wikitext import documents, find_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", help="a WikiText .raw file (default: find_corpus's training file)")
    parser.add_argument("--preset", default="tiny", help="model preset for the vocabulary size and the model timing")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--whole-word-mask", action="store_true")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the data when timing batches")
    parser.add_argument("--model-steps", type=int, default=20, help="training steps to time (after 3 warm-up)")
    parser.add_argument("--no-model", action="store_true", help="skip timing the model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from minibert.model import BertConfig, BertForPreTraining
    from minibert.tokenization import SentencePieceTokenizer

    config = BertConfig.from_preset(args.preset)
    path = args.train or find_corpus()[0]
    print(f"corpus {path}; torch {torch.__version__}, {torch.get_num_threads()} threads")

    t = time.perf_counter()
    docs = documents(path)
    n_sentences = sum(len(d) for d in docs)
    print(f"parse:      {time.perf_counter() - t:7.2f} s  {len(docs)} documents, {n_sentences} sentences")

    t = time.perf_counter()
    tokenizer = SentencePieceTokenizer.train((s for d in docs for s in d), config.vocab_size, seed=args.seed)
    print(f"vocabulary: {time.perf_counter() - t:7.2f} s  SentencePiece, {tokenizer.vocab_size} pieces")

    t = time.perf_counter()
    tokenised = [[tokenizer.text_to_ids(s) for s in d] for d in docs]
    n_tokens = sum(len(s) for d in tokenised for s in d)
    print(f"tokenise:   {time.perf_counter() - t:7.2f} s  {n_tokens} tokens")

    t = time.perf_counter()
    examples = create_nsp_examples(tokenised, args.seq_len, random.Random(args.seed))
    dataset = PretrainingDataset(examples, tokenizer, args.seq_len, whole_word_mask=args.whole_word_mask)
    print(f"NSP pairs:  {time.perf_counter() - t:7.2f} s  {len(dataset)} pairs of <= {args.seq_len} tokens")

    t, n = time.perf_counter(), 0
    for epoch in range(args.epochs):
        for _ in iterate_batches(dataset, args.batch_size, generator_for_epoch(args.seed, epoch)):
            n += 1
    data_rate = n / (time.perf_counter() - t)
    print(f"batches:    {data_rate:7.1f} batches/s of {args.batch_size}x{args.seq_len} "
          f"({n} batches, {'whole-word' if args.whole_word_mask else 'token'} masking)")
    if args.no_model:
        return

    torch.manual_seed(args.seed)
    model = BertForPreTraining(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = iterate_batches(dataset, args.batch_size, generator_for_epoch(args.seed, 99))
    times = []
    for step in range(3 + args.model_steps):
        batch = next(batches)
        t = time.perf_counter()
        loss = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
                     mlm_labels=batch["mlm_labels"], nsp_labels=batch["nsp_labels"])["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= 3:
            times.append(time.perf_counter() - t)
    model_rate = len(times) / sum(times)
    print(f"model:      {model_rate:7.1f} training steps/s ({args.preset}, {args.batch_size}x{args.seq_len})")
    print(f"ratio:      {data_rate / model_rate:7.1f}x (the pipeline must be >= 10x the model)")


if __name__ == "__main__":
    main()
