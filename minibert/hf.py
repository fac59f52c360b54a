"""Conversion between minibert models and ``transformers`` BERT checkpoints, both ways.

Everything rests on one table, :data:`NAME_MAP`: each row pairs a parameter
name of ours with the name ``transformers`` gives the same tensor. The
tensors themselves are identical (same shapes, same layout: both libraries
store ``nn.Linear`` weights as (out, in)), so converting is renaming.

- :func:`from_transformers` / :func:`to_transformers`: live model objects.
- :func:`load_pretrained` / :func:`save_pretrained`: checkpoint folders
  (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``).
- :func:`load_checkpoint`: a training checkpoint written by ``minibert pretrain``.
- ``minibert export --checkpoint ckpt.pt --out folder``: :func:`main`.

Tied weights: the masked-LM decoder of BERT *is* the word-embedding matrix, so
checkpoints store it once; ``cls.predictions.decoder.*`` keys, when present,
must equal the tensors they are tied to.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from minibert.cli import ArgumentParser, CLIError, run_command
from minibert.model import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel
from minibert.training_utils import atomic_write, atomic_write_folder, read_checkpoint

# ---------------------------------------------------------------------------- the mapping table

#: (our name, transformers' name) for every parameter. ``{i}`` is a layer index,
#: ``{p}`` is ``weight`` or ``bias``. Names are relative to the model classes
#: named in :data:`PREFIXES`.
NAME_MAP = [
    # BertModel: embeddings
    ("bert.embeddings.word_embeddings.weight",       "bert.embeddings.word_embeddings.weight"),
    ("bert.embeddings.position_embeddings.weight",   "bert.embeddings.position_embeddings.weight"),
    ("bert.embeddings.token_type_embeddings.weight", "bert.embeddings.token_type_embeddings.weight"),
    ("bert.embeddings.norm.{p}",                     "bert.embeddings.LayerNorm.{p}"),
    # BertModel: one encoder layer
    ("bert.layers.{i}.attention.query.{p}",          "bert.encoder.layer.{i}.attention.self.query.{p}"),
    ("bert.layers.{i}.attention.key.{p}",            "bert.encoder.layer.{i}.attention.self.key.{p}"),
    ("bert.layers.{i}.attention.value.{p}",          "bert.encoder.layer.{i}.attention.self.value.{p}"),
    ("bert.layers.{i}.attention.output.{p}",         "bert.encoder.layer.{i}.attention.output.dense.{p}"),
    ("bert.layers.{i}.attention_norm.{p}",           "bert.encoder.layer.{i}.attention.output.LayerNorm.{p}"),
    ("bert.layers.{i}.intermediate.{p}",             "bert.encoder.layer.{i}.intermediate.dense.{p}"),
    ("bert.layers.{i}.output.{p}",                   "bert.encoder.layer.{i}.output.dense.{p}"),
    ("bert.layers.{i}.output_norm.{p}",              "bert.encoder.layer.{i}.output.LayerNorm.{p}"),
    # BertModel: pooler
    ("bert.pooler.{p}",                              "bert.pooler.dense.{p}"),
    # BertForPreTraining: masked-LM head (decoder weight tied to the word embeddings) and NSP head
    ("mlm.transform.{p}",                            "cls.predictions.transform.dense.{p}"),
    ("mlm.norm.{p}",                                 "cls.predictions.transform.LayerNorm.{p}"),
    ("mlm.decoder.bias",                             "cls.predictions.bias"),
    ("nsp.{p}",                                      "cls.seq_relationship.{p}"),
    # BertForSequenceClassification
    ("classifier.{p}",                               "classifier.{p}"),
]

#: transformers keys that duplicate another tensor (tied) -> the key they must equal.
TIED_HF_KEYS = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}

#: Our keys that duplicate another of ours (tied), dropped before renaming.
TIED_OUR_KEYS = {"mlm.decoder.weight": "bert.embeddings.word_embeddings.weight"}

#: Our class -> the transformers class with the same heads.
HF_CLASS_NAMES = {
    BertModel: "BertModel",
    BertForPreTraining: "BertForPreTraining",
    BertForSequenceClassification: "BertForSequenceClassification",
}

#: config.json entry naming the sentence vector a minibert classifier reads (see ``model.POOLINGS``).
POOLING_KEY = "minibert_pooling"

#: Head keys that belong to one class only; ignored when loading into a class without that head.
_HEAD_PREFIXES = ("cls.", "classifier.")
#: Non-parameter buffers that old checkpoints contain; never needed.
_BUFFER_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")


def _compile(pattern: str) -> re.Pattern:
    regex = re.escape(pattern).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{p\}", r"(?P<p>weight|bias)")
    return re.compile(regex + "$")


_OURS_TO_HF = [(_compile(ours), hf) for ours, hf in NAME_MAP]
_HF_TO_OURS = [(_compile(hf), ours) for ours, hf in NAME_MAP]


def _rename(key: str, rules) -> str | None:
    for regex, template in rules:
        match = regex.match(key)
        if match:
            return template.format(**match.groupdict())
    return None


def our_key_to_hf(key: str) -> str:
    """transformers' name of one of our parameters (full names, e.g. ``bert.pooler.weight``)."""
    name = _rename(key, _OURS_TO_HF)
    if name is None:
        raise KeyError(f"minibert parameter {key!r} has no transformers counterpart in NAME_MAP.")
    return name


def hf_key_to_ours(key: str) -> str:
    """Our name of one of transformers' parameters (full names, with the ``bert.`` prefix)."""
    name = _rename(key, _HF_TO_OURS)
    if name is None:
        raise KeyError(f"transformers parameter {key!r} has no minibert counterpart in NAME_MAP.")
    return name


# ---------------------------------------------------------------------------- state dicts

def _our_full_state(model: nn.Module) -> dict:
    """Our state dict with every key given the ``bert.`` prefix (a bare BertModel has none)."""
    state = model.state_dict()
    if isinstance(model, BertModel):
        state = {f"bert.{k}": v for k, v in state.items()}
    return state


def to_hf_state_dict(model: nn.Module) -> dict:
    """Our model's tensors under transformers' names (full names, ``bert.`` prefix kept).

    Fixed sinusoidal positions are written as the position-embedding table.
    The tied decoder weight is stored once, as transformers does.
    """
    if isinstance(model, BertForSequenceClassification) and model.hidden is not None:
        raise ValueError("this classifier has a hidden ReLU layer, which transformers' "
                         "BertForSequenceClassification cannot hold; export the encoder (model.bert) instead.")
    state = _our_full_state(model)
    out = {}
    for key, tensor in state.items():
        if key in TIED_OUR_KEYS:
            continue
        out[our_key_to_hf(key)] = tensor.detach().clone()
    embeddings = _bert_of(model).embeddings
    if embeddings.sinusoidal is not None:
        out["bert.embeddings.position_embeddings.weight"] = embeddings.sinusoidal.pe.detach().clone()
    return out


def _bert_of(model: nn.Module) -> BertModel:
    return model if isinstance(model, BertModel) else model.bert


def _normalise_hf_keys(state: dict) -> dict:
    """Give every key the ``bert.`` prefix, rename TF-style ``gamma``/``beta``, drop known buffers."""
    out = {}
    for key, tensor in state.items():
        if key.endswith(_BUFFER_SUFFIXES):
            continue
        key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
        key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
        if not key.startswith(("bert.",) + _HEAD_PREFIXES):
            key = "bert." + key
        out[key] = tensor
    return out


def _check_tied(state: dict) -> dict:
    """Drop tied duplicate keys after checking they equal what they are tied to."""
    state = dict(state)
    for key, target in TIED_HF_KEYS.items():
        if key in state:
            tensor = state.pop(key)
            if target in state and not torch.equal(tensor, state[target]):
                raise ValueError(f"checkpoint tensor {key!r} differs from {target!r}; minibert ties them "
                                 f"(one tensor), so an untied checkpoint cannot be loaded.")
    return state


def load_hf_state_dict(model: nn.Module, hf_state: dict) -> nn.Module:
    """Copy a transformers-named state dict into our ``model`` (in place) and return the model.

    Keys may come with or without the ``bert.`` prefix. Head tensors that
    ``model`` has no use for (e.g. ``cls.*`` when loading a :class:`BertModel`)
    are ignored; a classification head missing from the checkpoint keeps its
    fresh initialisation (with a warning). Any other missing, unexpected or
    mis-shaped tensor raises a ``ValueError`` that names it.
    """
    hf_state = _check_tied(_normalise_hf_keys(hf_state))
    own = _our_full_state(model)
    expected = {k for k in own if k not in TIED_OUR_KEYS}
    sinusoidal = _bert_of(model).embeddings.sinusoidal is not None
    wants_cls = isinstance(model, BertForPreTraining)
    wants_classifier = isinstance(model, BertForSequenceClassification)

    converted, unexpected = {}, []
    for hf_key, tensor in hf_state.items():
        if hf_key.startswith("cls.") and not wants_cls:
            continue
        if hf_key.startswith("classifier.") and not wants_classifier:
            continue
        if hf_key == "bert.embeddings.position_embeddings.weight" and sinusoidal:
            continue  # fixed positions are computed, not loaded
        try:
            converted[hf_key_to_ours(hf_key)] = tensor
        except KeyError:
            unexpected.append(hf_key)
    if wants_classifier and model.hidden is not None:
        expected -= {k for k in expected if k.startswith(("classifier.", "hidden."))}
        converted = {k: v for k, v in converted.items() if not k.startswith("classifier.")}
    missing = sorted(expected - set(converted))
    fresh = [k for k in missing if k.startswith(("classifier.", "hidden."))]
    missing = [k for k in missing if k not in fresh]
    unexpected += [k for k in converted if k not in expected]
    if missing or unexpected:
        raise ValueError(f"checkpoint does not fit {type(model).__name__}: missing tensors "
                         f"{[our_key_to_hf(k) for k in missing]}, unexpected tensors {sorted(unexpected)}.")
    wrong = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
             for k, v in converted.items() if v.shape != own[k].shape]
    if wrong:
        raise ValueError("checkpoint tensors have the wrong shape: " + "; ".join(wrong) + ".")
    if fresh:
        warnings.warn(f"classification head {fresh} not in the checkpoint: freshly initialised "
                      f"(train it by fine-tuning).", stacklevel=2)
    with torch.no_grad():
        for key, tensor in converted.items():
            own[key].copy_(tensor)      # own[...] share storage with the model's parameters
    return model


# ---------------------------------------------------------------------------- live models

def config_from_hf(hf_config) -> BertConfig:
    """Our :class:`BertConfig` from a ``transformers.BertConfig`` (or its dict)."""
    d = hf_config if isinstance(hf_config, dict) else hf_config.to_dict()
    return BertConfig.from_dict(d)


def config_to_hf(config: BertConfig, **extra):
    """A ``transformers.BertConfig`` with our values (sinusoidal positions become a learned table)."""
    import transformers

    d = config.to_dict()
    d.pop("model_type")
    d.pop("position_embedding_type")
    return transformers.BertConfig(**d, **extra)


def from_transformers(hf_model) -> nn.Module:
    """Our model with the weights of a live ``transformers`` BERT model.

    ``transformers.BertModel`` -> :class:`BertModel`, ``BertForPreTraining`` ->
    :class:`BertForPreTraining`, ``BertForSequenceClassification`` ->
    :class:`BertForSequenceClassification` (same ``num_labels``). The result is in
    eval mode, like a model from ``from_pretrained``.
    """
    name = type(hf_model).__name__
    config = config_from_hf(hf_model.config)
    if name == "BertModel":
        model = BertModel(config)
    elif name == "BertForPreTraining":
        model = BertForPreTraining(config)
    elif name == "BertForSequenceClassification":
        model = BertForSequenceClassification(config, hf_model.config.num_labels)
    else:
        raise TypeError(f"cannot convert a transformers {name}; use BertModel, BertForPreTraining "
                        f"or BertForSequenceClassification.")
    return load_hf_state_dict(model, hf_model.state_dict()).eval()


def to_transformers(model: nn.Module, attn_implementation: str = "eager"):
    """The matching ``transformers`` model (see :data:`HF_CLASS_NAMES`) with our weights.

    ``attn_implementation`` is passed to transformers ("eager" returns attention
    weights; "sdpa" is faster). The returned model is in eval mode.
    """
    import transformers

    cls_name = HF_CLASS_NAMES.get(type(model))
    if cls_name is None:
        raise TypeError(f"cannot convert a {type(model).__name__}; use one of "
                        f"{', '.join(c.__name__ for c in HF_CLASS_NAMES)}.")
    extra = {"num_labels": model.num_labels} if isinstance(model, BertForSequenceClassification) else {}
    hf_config = config_to_hf(_bert_of(model).config, **extra)
    hf_config._attn_implementation = attn_implementation
    hf_model = getattr(transformers, cls_name)(hf_config)
    state = to_hf_state_dict(model)
    if cls_name == "BertModel":
        state = {k[len("bert."):]: v for k, v in state.items()}
    result = hf_model.load_state_dict(state, strict=False)
    tied = set(TIED_HF_KEYS)
    missing = [k for k in result.missing_keys if k not in tied]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"transformers {cls_name} did not take our tensors: missing {missing}, "
                           f"unexpected {result.unexpected_keys}.")
    return hf_model.eval()


# ---------------------------------------------------------------------------- folders

def _read_weights(folder: Path) -> dict:
    """The state dict of ``model.safetensors`` (preferred) or ``pytorch_model.bin``; a damaged file is named."""
    safetensors_file, bin_file = folder / "model.safetensors", folder / "pytorch_model.bin"
    for path in (safetensors_file, bin_file):
        if not path.is_file():
            continue
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty (0 bytes); export the model again.")
        try:
            if path == safetensors_file:
                from safetensors.torch import load_file

                return load_file(str(path))
            state = torch.load(path, map_location="cpu", weights_only=True)
        except ImportError:
            raise
        except Exception as exc:   # safetensors' and torch's errors for truncated / foreign bytes
            raise ValueError(f"{path} cannot be read: the file is truncated or not a weights file "
                             f"({type(exc).__name__}); export the model again.") from None
        if not isinstance(state, dict):
            raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors.")
        return state
    raise FileNotFoundError(f"{folder} holds neither model.safetensors nor pytorch_model.bin "
                            f"(sharded checkpoints are not supported).")


def _read_config(config_file: Path) -> dict:
    """``config.json`` as a dict, or a ``ValueError`` naming the file and what is wrong with it."""
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{config_file} is not UTF-8 text, so it is not a transformers config.json.") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{config_file} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}).") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{config_file} holds a JSON {type(raw).__name__}, not the object of a model config.")
    return raw


def load_pretrained(folder, cls=BertModel, **kwargs) -> nn.Module:
    """Load a transformers BERT checkpoint folder into a new ``cls`` model (eval mode).

    ``folder`` holds ``config.json`` (``model_type`` must be ``"bert"``) and
    ``model.safetensors`` or ``pytorch_model.bin`` (read with
    ``weights_only=True``). ``cls`` is :class:`BertModel`,
    :class:`BertForPreTraining` or :class:`BertForSequenceClassification`
    (then pass ``num_labels=...``; a missing classifier is freshly initialised).
    ``kwargs`` go to ``cls`` after the config; a classifier's ``pooling`` is
    read from the config's ``minibert_pooling`` entry unless given.
    """
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} is not a checkpoint folder: it has no config.json.")
    raw = _read_config(config_file)
    if raw.get("model_type") != "bert":
        raise ValueError(f"{config_file} describes a {raw.get('model_type')!r} model; minibert loads only "
                         f"BERT checkpoints (model_type 'bert').")
    try:
        config = BertConfig.from_dict(raw)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{config_file} is not a usable BERT config: {str(exc).rstrip('.')}.") from None
    if cls is BertForSequenceClassification:
        if "num_labels" not in kwargs:
            kwargs["num_labels"] = len(raw.get("id2label") or {}) or 2
        if "pooling" not in kwargs and raw.get(POOLING_KEY):
            kwargs["pooling"] = raw[POOLING_KEY]
    model = cls(config, **kwargs)
    return load_hf_state_dict(model, _read_weights(folder)).eval()


def save_pretrained(model: nn.Module, folder, safe_serialization: bool = True,
                    label_names: list[str] | None = None) -> Path:
    """Write ``model`` as a transformers checkpoint folder and return its path.

    The folder holds ``config.json`` (with ``architectures``) and
    ``model.safetensors`` (or ``pytorch_model.bin`` with
    ``safe_serialization=False``), so that ``transformers.<Class>.from_pretrained(folder)``
    loads it with no missing or unexpected keys. Files are written to a
    temporary name first and renamed.

    A classifier's ``label_names`` (default ``LABEL_0``, ...) become the
    config's ``id2label``/``label2id``; its pooling is saved as
    ``minibert_pooling``. transformers' ``BertForSequenceClassification``
    always classifies the pooler output, so only ``pooling="pooler"``
    gives the same logits there (a warning says so otherwise).
    """
    cls_name = HF_CLASS_NAMES.get(type(model))
    if cls_name is None:
        raise TypeError(f"cannot export a {type(model).__name__}; use one of "
                        f"{', '.join(c.__name__ for c in HF_CLASS_NAMES)}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = to_hf_state_dict(model)
    if cls_name == "BertModel":
        state = {k[len("bert."):]: v for k, v in state.items()}
    state = {k: v.contiguous() for k, v in state.items()}

    config = _bert_of(model).config.to_dict()
    config.pop("position_embedding_type")
    config["architectures"] = [cls_name]
    if isinstance(model, BertForSequenceClassification):
        names = [str(n) for n in label_names] if label_names is not None else [
            f"LABEL_{i}" for i in range(model.num_labels)]
        if len(names) != model.num_labels or len(set(names)) != len(names):
            raise ValueError(f"label_names must be {model.num_labels} distinct names, got {names}.")
        config["id2label"] = {str(i): name for i, name in enumerate(names)}
        config["label2id"] = {name: i for i, name in enumerate(names)}
        config[POOLING_KEY] = model.pooling
        if model.pooling != "pooler":
            warnings.warn(f"this classifier reads {model.pooling!r} sentence vectors; transformers' "
                          f"BertForSequenceClassification reads the pooler output, so its logits will differ "
                          f"(minibert.hf.load_pretrained reproduces them).", stacklevel=2)
    atomic_write(folder / "config.json", lambda path: path.write_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"))
    if safe_serialization:
        from safetensors.torch import save_file

        atomic_write(folder / "model.safetensors", lambda path: save_file(state, str(path), metadata={"format": "pt"}))
        other = folder / "pytorch_model.bin"
    else:
        atomic_write(folder / "pytorch_model.bin", lambda path: torch.save(state, path))
        other = folder / "model.safetensors"
    if other.exists():   # one weights file per folder, so what loads is what was just written
        other.unlink()
    return folder


# ---------------------------------------------------------------------------- training checkpoints

def load_checkpoint(path) -> BertForPreTraining:
    """The :class:`BertForPreTraining` saved by ``minibert pretrain`` (eval mode).

    The checkpoint is a ``torch.save``d dict with ``model`` (our state dict)
    and ``config`` (``BertConfig.to_dict()``), read with ``weights_only=True``.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path, "minibert checkpoint",
                                 hint="give the checkpoint.pt of a minibert pretrain run (--checkpoint)")
    try:
        config = BertConfig.from_dict(checkpoint["config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise CLIError(f"{path} holds an unusable BertConfig ({str(exc).rstrip('.')})") from None
    model = BertForPreTraining(config)
    state = {}
    for key, tensor in checkpoint["model"].items():
        for prefix in ("module.", "_orig_mod."):      # DDP / torch.compile wrappers
            while key.startswith(prefix):
                key = key[len(prefix):]
        state[key] = tensor
    if "mlm.decoder.weight" not in state and "bert.embeddings.word_embeddings.weight" in state:
        state["mlm.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError:
        raise CLIError(f"{path} holds weights whose shapes do not fit its own config; the file is damaged") from None
    if result.missing_keys or result.unexpected_keys:
        raise CLIError(f"{path} does not fit BertForPreTraining: missing {len(result.missing_keys)} tensors "
                       f"(e.g. {result.missing_keys[:2]}), unexpected {len(result.unexpected_keys)} "
                       f"(e.g. {result.unexpected_keys[:2]})")
    return model.eval()


def _add_tokenizer_json(source: Path, folder: Path, model_max_length: int) -> None:
    """Write tokenizer.json etc. into ``folder`` when ``source`` holds a minibert SentencePiece tokenizer."""
    from minibert.tokenization import SentencePieceTokenizer, load_tokenizer, save_for_transformers

    try:
        tokenizer = load_tokenizer(source)
    except (FileNotFoundError, ValueError):
        return   # not a minibert tokenizer folder: its files were copied as they are
    if isinstance(tokenizer, SentencePieceTokenizer):
        save_for_transformers(tokenizer, folder, model_max_length)


def build_parser(prog: str = "minibert export") -> ArgumentParser:
    """The options of ``minibert export``."""
    parser = ArgumentParser(
        prog=prog,
        description="Convert a minibert training checkpoint (written by `minibert pretrain`) into a "
                    "folder that transformers loads with BertForPreTraining/BertModel.from_pretrained.")
    parser.add_argument("--checkpoint", required=True,
                        help="path to the checkpoint .pt file (a dict with 'model' and 'config')")
    parser.add_argument("--out", required=True,
                        help="output folder; it is written as a whole (temporary folder, then swapped in)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out when it already holds files (otherwise refused)")
    parser.add_argument("--model", choices=["pretraining", "bert"], default="pretraining",
                        help="'pretraining' exports encoder + MLM/NSP heads (BertForPreTraining); "
                             "'bert' exports the encoder only (BertModel)")
    parser.add_argument("--format", choices=["safetensors", "bin"], default="safetensors",
                        help="weights file: model.safetensors or pytorch_model.bin")
    parser.add_argument("--tokenizer", default=None,
                        help="optional tokenizer folder whose files (e.g. vocab.txt) are copied into --out; "
                             "a SentencePiece one also gets tokenizer.json for transformers' AutoTokenizer")
    return parser


def export(args) -> int:
    """Run ``minibert export`` for parsed ``args``."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file, not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise CLIError(f"--out {out} already holds files; pass --overwrite to replace the whole folder, or "
                       f"choose another --out")
    if args.tokenizer and not Path(args.tokenizer).is_dir():
        raise CLIError(f"--tokenizer {args.tokenizer} is not a folder")
    model = load_checkpoint(args.checkpoint)
    target = model if args.model == "pretraining" else model.bert

    def fill(folder: Path) -> None:
        save_pretrained(target, folder, safe_serialization=args.format == "safetensors")
        if args.tokenizer:
            for file in Path(args.tokenizer).iterdir():
                if file.is_file() and file.name != "config.json":
                    shutil.copy(file, folder / file.name)
            _add_tokenizer_json(Path(args.tokenizer), folder, model.config.max_position_embeddings)

    try:
        folder = atomic_write_folder(out, fill)
    except OSError as exc:
        raise CLIError(f"--out {out} cannot be written ({exc.strerror or exc}); choose a folder you can "
                       f"write to") from None
    print(f"wrote {folder} ({HF_CLASS_NAMES[type(target)]}, "
          f"{sum(p.numel() for p in target.parameters()):,} parameters)")
    return 0


def main(argv: list[str] | None = None, prog: str = "minibert export") -> int:
    """``minibert export``: convert a training checkpoint into a transformers folder."""
    return run_command(prog, build_parser(prog), export, argv)


if __name__ == "__main__":
    sys.exit(main())
