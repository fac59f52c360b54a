r"""Copy a pretrained BERT export with some of its parts drawn afresh: which part of pretraining helps or hurts?

Tutorial 09 finds that our pretrained ``tiny`` fine-tunes *worse* than the
same model from scratch. This script makes the in-between starting points:
the export folder of a ``minibert pretrain`` run (or any transformers BERT
folder with ``model.safetensors``) copied to ``--out``, with the parts named
in ``--reinit`` re-drawn by the model's own initialisation
(:func:`minibert.model.init_bert_weights`: weights ~ N(0, initializer_range^2),
biases 0, LayerNorm 1 and 0, the padding row 0 — what ``--mode scratch``
starts from), with ``torch.manual_seed(--seed)``:

* ``embeddings``: word, position and token-type embeddings and their LayerNorm;
* ``layers``: every encoder layer; ``layer0``, ``layer1``, ...: one of them;
* ``pooler``: the pooler's dense layer.

``--center-word-embeddings`` instead (or as well) subtracts the mean row from
the word embeddings, removing the direction that MLM with a tied decoder
gives every piece in common (tutorial 09 measures it). ``--stats`` only prints
how far the word embeddings are from BERT's initialisation: the median row
norm and the length of the mean *unit* row, $\lVert \frac1V \sum_v e_v /
\lVert e_v \rVert \rVert$ (about $1/\sqrt V$ for random rows, 1 if all rows
pointed the same way), next to the same numbers for a fresh draw.

The tokenizer files are copied unchanged, so ``minibert finetune --init OUT``
reads the same pieces::

    python scripts/partial_init.py runs/tiny_default/export --reinit embeddings --out runs/reinit_embeddings
    python scripts/compare_classifiers.py --tiny runs/reinit_embeddings --tasks sst2 \
        --sst2-train ../shared/data/classification/SST-2/stsa.binary.train --rows tiny-full --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minibert.hf import load_pretrained, save_pretrained  # noqa: E402
from minibert.model import BertForPreTraining, init_bert_weights  # noqa: E402

PARTS = ("embeddings", "layers", "pooler")


def part_modules(model: BertForPreTraining, part: str) -> list[torch.nn.Module]:
    """The submodules of one ``--reinit`` part: embeddings, layers, layerN or pooler."""
    bert = model.bert
    if part == "embeddings":
        return [bert.embeddings]
    if part == "layers":
        return list(bert.layers)
    if part == "pooler":
        return [bert.pooler]
    if part.startswith("layer") and part[5:].isdigit() and int(part[5:]) < len(bert.layers):
        return [bert.layers[int(part[5:])]]
    raise SystemExit(f"--reinit {part!r}: choose from {', '.join(PARTS)} or layer0..layer{len(bert.layers) - 1}.")


def embedding_stats(weight: torch.Tensor, skip: int = 5) -> dict:
    """Median row norm and length of the mean unit row of an embedding matrix, rows from ``skip`` on (specials)."""
    rows = weight[skip:].float()
    unit = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return {"median_row_norm": rows.norm(dim=1).median().item(), "mean_unit_row_length": unit.mean(0).norm().item()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="a transformers BERT folder (config.json + weights), "
                                              "e.g. a pretraining run's export/")
    p.add_argument("--reinit", nargs="+", default=[], help=f"parts to draw afresh: {', '.join(PARTS)}, layerN")
    p.add_argument("--center-word-embeddings", action="store_true",
                   help="subtract the mean word embedding (over the vocabulary) from every row")
    p.add_argument("--seed", type=int, default=0, help="seed of the fresh weights (default 0)")
    p.add_argument("--out", type=Path, help="the new folder")
    p.add_argument("--stats", action="store_true", help="only print word-embedding statistics (see above)")
    args = p.parse_args(argv)
    if not args.stats and args.out is None:
        p.error("give --out (or --stats).")
    if not (args.stats or args.reinit or args.center_word_embeddings):
        p.error("give --reinit PART ... and/or --center-word-embeddings.")
    try:
        model = load_pretrained(args.source, BertForPreTraining)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(str(exc)) from None
    words = model.bert.embeddings.word_embeddings.weight            # tied to the MLM decoder: one tensor
    std = model.config.initializer_range
    if args.stats:
        torch.manual_seed(args.seed)
        fresh = BertForPreTraining(model.config)
        for name, w in ((str(args.source), words), (f"a fresh N(0, {std}^2) draw",
                                                    fresh.bert.embeddings.word_embeddings.weight)):
            st = embedding_stats(w.detach())
            print(f"{name}: word embeddings {tuple(w.shape)}, median row norm {st['median_row_norm']:.3f}, "
                  f"length of the mean unit row {st['mean_unit_row_length']:.3f}")
        return 0
    modules = [m for part in args.reinit for m in part_modules(model, part)]
    torch.manual_seed(args.seed)
    for module in modules:
        module.apply(lambda m: init_bert_weights(m, std))
    if args.center_word_embeddings:
        with torch.no_grad():
            words -= words.mean(dim=0, keepdim=True)
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.source, args.out)                          # tokenizer files and all
    save_pretrained(model, args.out)
    shutil.copy(args.source / "config.json", args.out / "config.json")   # the source's config, unchanged
    what = [f"{' '.join(args.reinit)} drawn afresh by init_bert_weights (std {std})"] if args.reinit else []
    what += ["word embeddings centred"] if args.center_word_embeddings else []
    print(f"{args.out}: {'; '.join(what)}; the rest as in {args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
