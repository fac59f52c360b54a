r"""Copy a pretrained BERT export with some of its parts drawn afresh: which part of pretraining helps or hurts?

Tutorial 09 finds that our pretrained ``tiny`` fine-tunes *worse* than the
same model from scratch. This script makes the in-between starting points:
the export folder of a ``minibert pretrain`` run (or any transformers BERT
folder with ``model.safetensors``) copied to ``--out``, with the parts named
in ``--reinit`` replaced by BERT's initialisation (weights ~ N(0, 0.02^2),
biases 0, LayerNorm 1 and 0 — what ``--mode scratch`` starts from), drawn
with ``--seed``:

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
import json
import shutil
import sys
from pathlib import Path

import torch

PARTS = ("embeddings", "layers", "pooler")


def prefixes(part: str) -> tuple[str, ...]:
    """The state-dict key prefixes (transformers' names) of one ``--reinit`` part."""
    if part == "embeddings":
        return ("bert.embeddings.",)
    if part == "layers":
        return ("bert.encoder.layer.",)
    if part == "pooler":
        return ("bert.pooler.",)
    if part.startswith("layer") and part[5:].isdigit():
        return (f"bert.encoder.layer.{int(part[5:])}.",)
    raise SystemExit(f"--reinit {part!r}: choose from {', '.join(PARTS)} or layerN (layer0, layer1, ...).")


def fresh_value(key: str, tensor: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """BERT's initial value for one tensor, by its name: LayerNorm 1/0, biases 0, other weights N(0, std^2)."""
    if "LayerNorm" in key:
        return torch.ones_like(tensor) if key.endswith("weight") else torch.zeros_like(tensor)
    if key.endswith("bias"):
        return torch.zeros_like(tensor)
    return torch.randn(tensor.shape, generator=generator, dtype=torch.float32).mul_(std).to(tensor.dtype)


def embedding_stats(weight: torch.Tensor, skip: int = 5) -> dict:
    """Median row norm and length of the mean unit row of an embedding matrix, rows from ``skip`` on (specials)."""
    rows = weight[skip:].float()
    unit = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return {"median_row_norm": rows.norm(dim=1).median().item(), "mean_unit_row_length": unit.mean(0).norm().item()}


def main(argv=None) -> int:
    from safetensors.torch import load_file, save_file

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="a transformers BERT folder (config.json + model.safetensors), "
                                              "e.g. a pretraining run's export/")
    p.add_argument("--reinit", nargs="+", default=[], help=f"parts to draw afresh: {', '.join(PARTS)}, layerN")
    p.add_argument("--center-word-embeddings", action="store_true",
                   help="subtract the mean word embedding (over the vocabulary) from every row")
    p.add_argument("--seed", type=int, default=0, help="seed of the fresh weights (default 0)")
    p.add_argument("--out", type=Path, help="the new folder")
    p.add_argument("--stats", action="store_true", help="only print word-embedding statistics (see above)")
    args = p.parse_args(argv)
    if args.stats:
        weight = load_file(str(args.source / "model.safetensors"))["bert.embeddings.word_embeddings.weight"]
        fresh = fresh_value("word_embeddings.weight", weight, 0.02, torch.Generator().manual_seed(args.seed))
        for name, w in ((str(args.source), weight), ("a fresh N(0, 0.02^2) draw", fresh)):
            st = embedding_stats(w)
            print(f"{name}: word embeddings {tuple(w.shape)}, median row norm {st['median_row_norm']:.3f}, "
                  f"length of the mean unit row {st['mean_unit_row_length']:.3f}")
        return 0
    if args.out is None:
        p.error("give --out (or --stats).")
    if not (args.reinit or args.center_word_embeddings):
        p.error("give --reinit PART ... and/or --center-word-embeddings.")
    weights = args.source / "model.safetensors"
    if not weights.is_file():
        raise SystemExit(f"{weights} not found: give a folder with model.safetensors (a pretraining run's export/).")
    config = json.loads((args.source / "config.json").read_text(encoding="utf-8"))
    std = float(config.get("initializer_range", 0.02))
    state = load_file(str(weights))
    chosen = tuple(x for part in args.reinit for x in prefixes(part))
    generator = torch.Generator().manual_seed(args.seed)
    changed = [k for k in sorted(state) if chosen and k.startswith(chosen)]
    if args.reinit and not changed:
        raise SystemExit(f"no tensor of {weights} belongs to {' '.join(args.reinit)}.")
    for key in changed:
        state[key] = fresh_value(key, state[key], std, generator)
    if args.center_word_embeddings:
        key = "bert.embeddings.word_embeddings.weight"
        state[key] = state[key] - state[key].mean(dim=0, keepdim=True)
        changed.append(key)
    if "bert.embeddings.word_embeddings.weight" in changed and "cls.predictions.decoder.weight" in state:
        state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]  # tied
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.source, args.out)
    save_file({k: v.contiguous() for k, v in state.items()}, str(args.out / "model.safetensors"),
              metadata={"format": "pt"})
    n = sum(state[k].numel() for k in set(changed))
    what = [f"{' '.join(args.reinit)} drawn afresh (N(0, {std}^2) weights, zero biases, unit LayerNorm)"] \
        if args.reinit else []
    what += ["word embeddings centred"] if args.center_word_embeddings else []
    print(f"{args.out}: {len(set(changed))} tensors ({n:,} numbers) changed: {'; '.join(what)}; the rest as in "
          f"{args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
