r"""Mini-BERT: configuration, embeddings, post-LN encoder, pooler, MLM/NSP and classification heads.

The whole model reads top to bottom in this one file:

1. :class:`BertConfig` -- the hyper-parameters, with ``transformers``' field names
   so that a ``config.json`` converts both ways, and named presets.
2. Formulas: :func:`gelu`, :func:`layer_norm` (written out; the modules use
   PyTorch's fused kernels, and ``tests/test_model.py`` proves them equal).
3. :class:`BertEmbeddings` -- word + position + token type, LayerNorm, dropout.
4. :class:`BertLayer` -- one post-LN encoder layer:
   $h = \mathrm{LN}(x + \mathrm{MHA}(x))$, $y = \mathrm{LN}(h + \mathrm{FFN}(h))$.
5. :class:`BertModel` -- embeddings, $L$ layers, pooler $\tanh(W h_{[CLS]} + b)$.
6. :class:`BertForPreTraining` -- masked-LM head tied to the word embeddings
   (decoding only the masked positions when labels are given) and the
   next-sentence head.
7. :class:`BertForSequenceClassification` and feature-extraction helpers.
8. :func:`count_parameters` -- the closed-form parameter count.

Shapes: B batch, T sequence length, C ``hidden_size``, H heads, I
``intermediate_size``, V ``vocab_size``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from minibert.attention import MultiHeadAttention, padding_mask
from minibert.positional import SinusoidalPositionalEncoding
from minibert.textio import atomic_write_text

IGNORE_INDEX = -100  # label value of positions that are not predicted (transformers' convention)


# --------------------------------------------------------------------------- config

@dataclass
class BertConfig:
    """Hyper-parameters of a BERT model, named as in ``transformers.BertConfig``.

    ``position_embedding_type`` is ours: ``"absolute"`` (learned positions, as in
    BERT) or ``"sinusoidal"`` (the fixed table of :mod:`minibert.positional`;
    exported to ``transformers`` as a frozen-looking learned table).
    ``classifier_dropout`` (``None`` = use ``hidden_dropout_prob``) is the
    dropout before a classification layer.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0
    classifier_dropout: float | None = None
    position_embedding_type: str = "absolute"

    def __post_init__(self):
        positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "max_position_embeddings", "type_vocab_size")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"BertConfig.{name} must be a positive integer, got {value!r}.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"BertConfig.hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_attention_heads ({self.num_attention_heads}).")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"BertConfig.hidden_act {self.hidden_act!r} is not supported; "
                             f"choose one of {sorted(ACTIVATIONS)}.")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"BertConfig.{name} must be a probability in [0, 1), got {value!r}.")
        if not isinstance(self.layer_norm_eps, (int, float)) or self.layer_norm_eps <= 0:
            raise ValueError(f"BertConfig.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}.")
        if not isinstance(self.initializer_range, (int, float)) or self.initializer_range <= 0:
            raise ValueError(f"BertConfig.initializer_range must be > 0, got {self.initializer_range!r}.")
        if (isinstance(self.pad_token_id, bool) or not isinstance(self.pad_token_id, int)
                or not 0 <= self.pad_token_id < self.vocab_size):
            raise ValueError(f"BertConfig.pad_token_id must be an id in [0, vocab_size={self.vocab_size}), "
                             f"got {self.pad_token_id!r}.")
        if self.position_embedding_type not in ("absolute", "sinusoidal"):
            raise ValueError(f"BertConfig.position_embedding_type must be 'absolute' or 'sinusoidal', "
                             f"got {self.position_embedding_type!r}.")

    @property
    def head_dim(self) -> int:
        """Size of one attention head, $d_k = C / H$."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "BertConfig":
        """The preset ``name`` (see :data:`PRESETS`) with some fields replaced.

        >>> BertConfig.from_preset("tiny", hidden_dropout_prob=0.0).hidden_size
        128
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        """A plain dict with ``model_type: "bert"``, as in a transformers ``config.json``."""
        return {"model_type": "bert", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "BertConfig":
        """Build a config from a dict; keys we do not use (transformers' extras) are ignored.

        A ``model_type`` other than ``"bert"`` is refused with a ``ValueError``.
        """
        model_type = d.get("model_type", "bert")
        if model_type != "bert":
            raise ValueError(f"this config has model_type {model_type!r}; minibert only reads BERT "
                             f"configs (model_type 'bert').")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if kwargs.get("position_embedding_type") not in (None, "absolute", "sinusoidal"):
            raise ValueError(f"position_embedding_type {kwargs['position_embedding_type']!r} "
                             f"(e.g. relative positions) is not supported by minibert.")
        if kwargs.get("pad_token_id", 0) is None:
            kwargs["pad_token_id"] = 0
        return cls(**kwargs)

    def save(self, path) -> None:
        """Write the config as JSON to ``path`` (e.g. ``folder/config.json``), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", path)

    @classmethod
    def load(cls, path) -> "BertConfig":
        """Read a config written by :meth:`save` or by transformers (a file or a folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"no BERT config at {path}; expected a config.json file.")
        with path.open(encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


def _preset(layers: int, hidden: int, heads: int, vocab: int) -> dict:
    return dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                intermediate_size=4 * hidden, vocab_size=vocab,
                max_position_embeddings=512, type_vocab_size=2)


#: Named model sizes: layers / hidden / heads / vocabulary, intermediate = 4 x hidden.
PRESETS = {
    "tiny": _preset(2, 128, 2, 8000),
    "mini": _preset(4, 256, 4, 16000),
    "small": _preset(4, 512, 8, 30522),
    "medium": _preset(8, 512, 8, 30522),
    "base": _preset(12, 768, 12, 30522),
}


# --------------------------------------------------------------------------- formulas

def gelu(x: torch.Tensor) -> torch.Tensor:
    r"""Exact Gaussian error linear unit (Hendrycks & Gimpel 2016), element-wise:

    $\mathrm{GELU}(x) = x\,\Phi(x) = \tfrac{x}{2}\,(1 + \mathrm{erf}(x/\sqrt{2}))$.

    $\Phi$ is the standard normal CDF; ``x`` has any shape. BERT uses this exact
    (erf) form, not the tanh approximation. The model calls the fused
    ``torch.nn.functional.gelu``, which computes the same function.
    """
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    r"""Layer normalisation over the last dimension (Ba et al. 2016):

    $y = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta$.

    $\mu = \frac1C\sum_c x_c$ and $\sigma^2 = \frac1C\sum_c (x_c - \mu)^2$ (biased
    variance) are taken over the last dimension of ``x`` (..., C);
    $\gamma$ = ``weight`` (C,), $\beta$ = ``bias`` (C,), $\epsilon$ = ``eps``.
    The model uses ``nn.LayerNorm``, which computes the same function.
    """
    if weight.shape != x.shape[-1:] or bias.shape != x.shape[-1:]:
        raise ValueError(f"layer_norm: weight {tuple(weight.shape)} and bias {tuple(bias.shape)} must both "
                         f"have shape ({x.shape[-1]},), the last dimension of x.")
    mean = x.mean(dim=-1, keepdim=True)                           # (..., 1)
    var = (x - mean).pow(2).mean(dim=-1, keepdim=True)            # (..., 1)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias     # (..., C)


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


#: ``hidden_act`` names (as in transformers) and the functions the model calls.
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "gelu_new": _gelu_tanh, "gelu_pytorch_tanh": _gelu_tanh}


def init_bert_weights(module: nn.Module, std: float) -> None:
    r"""BERT initialisation, applied with ``model.apply``: weights $\sim\mathcal N(0, \mathrm{std}^2)$,
    biases 0, LayerNorm $\gamma=1, \beta=0$, the padding token's embedding row 0."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# --------------------------------------------------------------------------- embeddings

class BertEmbeddings(nn.Module):
    r"""$e_t = \mathrm{Dropout}(\mathrm{LN}(W^{tok}_{x_t} + P_t + W^{seg}_{s_t}))$ for every position $t$.

    $x_t$ = ``input_ids`` (B, T), $s_t$ = ``token_type_ids`` (B, T), $P_t$ a
    learned row of ``position_embeddings`` or, with
    ``position_embedding_type="sinusoidal"``, the fixed sinusoid of
    :mod:`minibert.positional`. Output (B, T, C).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        C = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, C, padding_idx=config.pad_token_id)
        if config.position_embedding_type == "sinusoidal":
            self.position_embeddings = None
            self.sinusoidal = SinusoidalPositionalEncoding(config.max_position_embeddings, C)
        else:
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, C)
            self.sinusoidal = None
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, C)
        self.norm = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.max_positions = config.max_position_embeddings
        self.type_vocab_size = config.type_vocab_size

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids`` (B, T) and optional ``token_type_ids`` (B, T, default 0) -> (B, T, C)."""
        B, T = input_ids.shape
        if T > self.max_positions:
            raise ValueError(f"sequence length {T} exceeds max_position_embeddings={self.max_positions}; "
                             f"truncate the input or use a larger config.")
        x = self.word_embeddings(input_ids)                                   # (B, T, C)
        if token_type_ids is not None:
            x = x + self.token_type_embeddings(token_type_ids)                # (B, T, C)
        else:
            x = x + self.token_type_embeddings.weight[0]                      # segment 0 everywhere
        if self.sinusoidal is not None:
            x = self.sinusoidal(x)                                            # x + PE[:T]
        else:
            x = x + self.position_embeddings.weight[:T]                       # (T, C) broadcast over B
        return self.dropout(self.norm(x))


# --------------------------------------------------------------------------- encoder

class BertLayer(nn.Module):
    r"""One post-LN Transformer encoder layer (Vaswani et al. 2017; BERT):

    $h = \mathrm{LN}_1(x + \mathrm{Dropout}(\mathrm{MHA}(x)))$,
    $y = \mathrm{LN}_2(h + \mathrm{Dropout}(W_2\,\mathrm{GELU}(W_1 h + b_1) + b_2))$.

    $x$ (B, T, C); $W_1$ = ``intermediate`` (C -> I), $W_2$ = ``output`` (I -> C);
    $\mathrm{LN}_1$ = ``attention_norm``, $\mathrm{LN}_2$ = ``output_norm``;
    MHA = ``attention`` (:class:`minibert.attention.MultiHeadAttention`).
    "Post-LN": the normalisation comes after each residual sum.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        C, I = config.hidden_size, config.intermediate_size
        self.attention = MultiHeadAttention(C, config.num_attention_heads,
                                            dropout=config.attention_probs_dropout_prob)
        self.attention_norm = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(C, I)
        self.output = nn.Linear(I, C)
        self.output_norm = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, output_attentions: bool = False,
                positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x`` (B, T, C), ``mask`` bool broadcastable to (B, H, T, T) (True = may attend).

        ``positions`` (B, Q) long, optional: compute the output only at these
        positions of each sequence (their queries still attend to every
        position); ``y`` is then the full output gathered there. Everything
        after the keys and values is per position, so the rest is skipped.
        Returns ``(y, weights)``: ``y`` (B, T, C), or (B, Q, C) with
        ``positions``, and the attention weights (B, H, T or Q, T) when
        ``output_attentions`` else ``None``.
        """
        xq = x if positions is None else x.gather(1, positions[..., None].expand(-1, -1, x.shape[-1]))  # (B, Q, C)
        a, weights = self.attention(x, mask=mask, return_weights=output_attentions, queries=xq)  # (B, Q, C)
        h = self.attention_norm(xq + self.dropout(a))                                # (B, Q, C); Q = T by default
        f = self.output(self.act(self.intermediate(h)))                              # (B, Q, I) -> (B, Q, C)
        y = self.output_norm(h + self.dropout(f))                                    # (B, Q, C)
        return y, weights


#: Where the last layer runs after its keys and values (``--last-layer`` of the commands): ``read`` = only at
#: the positions the heads read, ``all`` = at every position.
LAST_LAYER_CHOICES = ("read", "all")


def last_layer_positions(wanted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the last layer must run when only the ``wanted`` (B, T) positions' outputs are used.

    Returns ``(positions, picked)``, both (B, Q): ``positions[b]`` holds
    position 0 ([CLS], which the pooler reads) in slot 0, then the wanted
    positions of sequence b in increasing order, then filler positions up
    to Q = the largest count in the batch (computed, never used);
    ``picked`` is True at the slots of wanted positions, so that
    ``y[picked]`` lists the wanted outputs in row-major order, as
    ``full_y[wanted]`` does.
    """
    needed = wanted.clone()
    needed[:, 0] = True                                                  # the pooler reads [CLS]
    order = torch.argsort((~needed).to(torch.uint8), dim=1, stable=True)  # needed positions first, in order
    positions = order[:, :last_layer_width(wanted)]                      # (B, Q)
    return positions, wanted.gather(1, positions)


def last_layer_width(wanted: torch.Tensor) -> int:
    """Q of :func:`last_layer_positions`: the most positions any sequence needs, [CLS] included."""
    return int((wanted.sum(dim=1) + ~wanted[:, 0]).max())


class BertModel(nn.Module):
    r"""The BERT encoder: embeddings, ``num_hidden_layers`` :class:`BertLayer`, and the pooler.

    Pooler: $p = \tanh(W_p\, h_{[CLS]} + b_p)$, with $h_{[CLS]}$ = ``last_hidden_state[:, 0]`` (B, C)
    and $W_p$ = ``pooler`` (C -> C).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.apply(lambda m: init_bert_weights(m, config.initializer_range))

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, output_attentions: bool = False,
                wanted: torch.Tensor | None = None) -> dict:
        """Encode a batch.

        ``input_ids`` (B, T) long; ``token_type_ids`` (B, T) segment ids (default 0);
        ``attention_mask`` (B, T) with 1 = real token, 0 = padding (default: all real).
        Returns a dict with ``last_hidden_state`` (B, T, C), ``pooler_output``
        (B, C) and, when ``output_attentions``, ``attentions``: one (B, H, T, T)
        tensor per layer.

        ``wanted`` (B, T) bool, optional: the positions whose final hidden
        state will be used (in pretraining, the masked-LM positions). The
        last layer then runs only there and at [CLS] (for the pooler): see
        :func:`last_layer_positions`. ``last_hidden_state`` is then (N, C),
        equal to the full one indexed by ``wanted`` (row-major order), and
        the last layer's attention weights, if asked for, are (B, H, Q, T).
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (B, T); got {tuple(input_ids.shape)}.")
        if wanted is not None and wanted.dtype != torch.bool:
            raise TypeError(f"wanted must be a boolean (B, T) tensor (True = position used), got {wanted.dtype}.")
        for name, t in (("token_type_ids", token_type_ids), ("attention_mask", attention_mask),
                        ("wanted", wanted)):
            if t is not None and t.shape != input_ids.shape:
                raise ValueError(f"{name} has shape {tuple(t.shape)} but input_ids has "
                                 f"{tuple(input_ids.shape)}; they must match.")
        mask = padding_mask(attention_mask) if attention_mask is not None else None   # (B, 1, 1, T)
        x = self.embeddings(input_ids, token_type_ids)                                 # (B, T, C)
        positions, picked = last_layer_positions(wanted) if wanted is not None else (None, None)   # (B, Q)
        attentions = []
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            x, weights = layer(x, mask=mask, output_attentions=output_attentions,
                               positions=positions if last else None)     # the last layer: (B, Q, C)
            attentions.append(weights)
        pooled = torch.tanh(self.pooler(x[:, 0]))                  # (B, C); [CLS] is position 0 or slot 0
        out = {"last_hidden_state": x if wanted is None else x[picked], "pooler_output": pooled}
        if output_attentions:
            out["attentions"] = tuple(attentions)
        return out


# --------------------------------------------------------------------------- pretraining heads

class BertMLMHead(nn.Module):
    r"""Masked-LM head: $z = \mathrm{LN}(\mathrm{GELU}(W_t h + b_t))\,E^\top + b$.

    $h$ (N, C) hidden states of the positions to predict, $W_t$ = ``transform``
    (C -> C), LN = ``norm``; the decoder's weight $E$ (V, C) *is* the word
    embedding matrix (tied, one tensor) and $b$ (V,) = ``decoder.bias``.
    Output: logits (N, V).
    """

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.decoder.weight = word_embeddings.weight      # tie: the same Parameter object
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` (..., C) -> logits (..., V)."""
        return self.decoder(self.norm(self.act(self.transform(h))))


class BertForPreTraining(nn.Module):
    r"""BERT with the two pretraining heads: masked-LM (tied decoder) and next-sentence prediction.

    NSP: logits $= W_{nsp}\, p + b_{nsp}$ (B, 2) from the pooled output $p$;
    label 0 = sentence B follows A, 1 = B is random (transformers' convention).

    MLM loss: mean cross-entropy over the positions whose label is not -100,
    $\mathcal L_{mlm} = -\frac1N \sum_{(b,t):\, y_{bt} \ne -100} \log \mathrm{softmax}(z_{bt})_{y_{bt}}$.
    Sparse prediction: because only those $N$ positions enter the loss, the
    decoder (the largest matrix product for a small model) runs only on them,
    and so does the last encoder layer after its keys and values
    (``sparse_last_layer``, default True; see :class:`BertModel`'s ``wanted``).
    Nothing else depends on the other positions' final states, so the loss
    and every gradient are the same as when all positions are computed.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.mlm = BertMLMHead(config, self.bert.embeddings.word_embeddings)
        self.nsp = nn.Linear(config.hidden_size, 2)
        init_bert_weights(self.mlm.transform, config.initializer_range)
        init_bert_weights(self.mlm.norm, config.initializer_range)
        nn.init.zeros_(self.mlm.decoder.bias)
        init_bert_weights(self.nsp, config.initializer_range)
        self.sparse_last_layer = True   # False: with sparse MLM, the last layer still runs at every position

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, mlm_labels: torch.Tensor | None = None,
                nsp_labels: torch.Tensor | None = None, sparse_mlm: bool | None = None) -> dict:
        """Logits and, when labels are given, losses.

        ``mlm_labels`` (B, T): the original token id at predicted positions,
        -100 elsewhere. ``nsp_labels`` (B,) in {0, 1}. ``sparse_mlm``: ``None``
        (default) decodes only labelled positions when ``mlm_labels`` is given;
        ``False`` always decodes all positions.

        Returns a dict: ``mlm_logits`` -- (N, V) in row-major (batch, position)
        order, aligned with ``mlm_labels[mlm_labels != -100]``, when sparse,
        otherwise (B, T, V); ``nsp_logits`` (B, 2); and with labels ``mlm_loss``,
        ``nsp_loss`` and ``loss`` (their sum, or the one that was computed).
        """
        if sparse_mlm and mlm_labels is None:
            raise ValueError("sparse_mlm=True needs mlm_labels: they say which positions to decode.")
        if mlm_labels is not None and mlm_labels.shape != input_ids.shape:
            raise ValueError(f"mlm_labels has shape {tuple(mlm_labels.shape)} but input_ids has "
                             f"{tuple(input_ids.shape)}; they must match (-100 = not predicted).")
        if nsp_labels is not None and nsp_labels.shape != input_ids.shape[:1]:
            raise ValueError(f"nsp_labels must have shape ({input_ids.shape[0]},), "
                             f"got {tuple(nsp_labels.shape)}.")
        sparse = mlm_labels is not None and sparse_mlm is not False
        selected = mlm_labels != IGNORE_INDEX if sparse else None           # (B, T) bool
        out = self.bert(input_ids, token_type_ids, attention_mask,
                        wanted=selected if self.sparse_last_layer else None)
        h = out["last_hidden_state"]                                        # (B, T, C), or (N, C) when wanted
        if sparse:
            mlm_logits = self.mlm(h if self.sparse_last_layer else h[selected])   # (N, V), row-major order
            targets = mlm_labels[selected]                                  # (N,)
        else:
            mlm_logits = self.mlm(h)                                        # (B, T, V)
            targets = mlm_labels.reshape(-1) if mlm_labels is not None else None
        result = {"mlm_logits": mlm_logits, "nsp_logits": self.nsp(out["pooler_output"])}   # (B, 2)

        losses = []
        if mlm_labels is not None:
            logits2d = mlm_logits.reshape(-1, mlm_logits.shape[-1])
            result["mlm_loss"] = F.cross_entropy(logits2d, targets, ignore_index=IGNORE_INDEX)
            losses.append(result["mlm_loss"])
        if nsp_labels is not None:
            result["nsp_loss"] = F.cross_entropy(result["nsp_logits"], nsp_labels)
            losses.append(result["nsp_loss"])
        if losses:
            result["loss"] = sum(losses[1:], losses[0])
        return result


# --------------------------------------------------------------------------- classification

def cls_pooling(last_hidden_state: torch.Tensor) -> torch.Tensor:
    """The [CLS] vector $h_{[CLS]}$: ``last_hidden_state[:, 0]``, (B, T, C) -> (B, C)."""
    return last_hidden_state[:, 0]


def mean_pooling(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Mean over real tokens, $\bar h = \frac{\sum_t m_t h_t}{\sum_t m_t}$: (B, T, C) -> (B, C).

    $m$ = ``attention_mask`` (B, T), 1 = real token, 0 = padding (default all 1).
    """
    if attention_mask is None:
        return last_hidden_state.mean(dim=1)
    m = attention_mask.to(last_hidden_state.dtype).unsqueeze(-1)            # (B, T, 1)
    count = m.sum(dim=1).clamp(min=1.0)                                      # (B, 1)
    return (last_hidden_state * m).sum(dim=1) / count                        # (B, C)


#: Sentence vectors a classifier can read: the pooler output, the raw [CLS] vector, the masked mean.
POOLINGS = ("pooler", "cls", "mean")


def sentence_features(encoder_output: dict, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    r"""One vector per sentence from a :class:`BertModel` output dict: (B, C).

    ``pooling``: ``"pooler"`` -> $p = \tanh(W_p h_{[CLS]} + b_p)$ (``pooler_output``,
    what BERT's NSP head was trained on); ``"cls"`` -> $h_{[CLS]}$
    (:func:`cls_pooling`); ``"mean"`` -> the mean over real tokens
    (:func:`mean_pooling` with ``attention_mask`` (B, T)).
    """
    if pooling == "pooler":
        return encoder_output["pooler_output"]
    if pooling == "cls":
        return cls_pooling(encoder_output["last_hidden_state"])
    if pooling == "mean":
        return mean_pooling(encoder_output["last_hidden_state"], attention_mask)
    raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}.")


class BertForSequenceClassification(nn.Module):
    r"""A classifier on a sentence vector $p$ (B, C) of the encoder.

    Linear (the BERT paper): $y = \mathrm{softmax}(W_o\,\mathrm{Dropout}(p) + b_o)$,
    $W_o$ = ``classifier`` (C -> K). With ``hidden_layer_size=D``, one hidden
    ReLU layer: $y = \mathrm{softmax}(W_o\,\mathrm{ReLU}(W_h\,\mathrm{Dropout}(p) + b_h) + b_o)$,
    $W_h$ = ``hidden`` (C -> D). ``forward`` returns the logits (before the softmax).
    ``classifier_dropout`` overrides ``config.classifier_dropout`` /
    ``hidden_dropout_prob``. ``pooling`` chooses $p$ (see :func:`sentence_features`):
    ``"pooler"`` (default; the only one ``transformers``' class of the same name has),
    ``"cls"`` or ``"mean"``.

    ``sparse_last_layer`` (off by default): with ``"pooler"`` or ``"cls"``
    pooling only [CLS]'s final vector is read, so the last layer can run at
    [CLS] alone after computing every position's keys and values (as in
    pretraining, :func:`last_layer_positions`). Same logits up to float
    round-off and the same gradients; in training the last layer's dropout
    draws differ from the full layer's. ``"mean"`` reads every position and
    always runs the full layer.
    """

    #: Run the last layer only at [CLS] when the pooling reads nothing else (see the class docstring).
    sparse_last_layer = False

    def __init__(self, config: BertConfig, num_labels: int, hidden_layer_size: int | None = None,
                 classifier_dropout: float | None = None, pooling: str = "pooler"):
        super().__init__()
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 2:
            raise ValueError(f"num_labels must be an integer >= 2, got {num_labels!r}.")
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}.")
        self.pooling = pooling
        if hidden_layer_size is not None and (not isinstance(hidden_layer_size, int) or hidden_layer_size <= 0):
            raise ValueError(f"hidden_layer_size must be a positive integer or None, got {hidden_layer_size!r}.")
        self.config = config
        self.num_labels = num_labels
        self.bert = BertModel(config)
        p = classifier_dropout
        if p is None:
            p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        C = config.hidden_size
        self.hidden = nn.Linear(C, hidden_layer_size) if hidden_layer_size else None
        self.classifier = nn.Linear(hidden_layer_size or C, num_labels)
        for m in (self.hidden, self.classifier):
            if m is not None:
                init_bert_weights(m, config.initializer_range)

    def classify_features(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        r"""The head alone on sentence vectors ``features`` (B, C): ``logits`` (B, K) and, with labels, ``loss``.

        The loss is the softmax cross-entropy over the K classes,
        $\mathcal L = -\frac1B \sum_b \log \mathrm{softmax}(z_b)_{y_b}$ (one label per example).
        """
        z = self.dropout(features)
        if self.hidden is not None:
            z = F.relu(self.hidden(z))                                                     # (B, D)
        result = {"logits": self.classifier(z)}                                            # (B, K)
        if labels is not None:
            result["loss"] = F.cross_entropy(result["logits"], labels)
        return result

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict:
        """``logits`` (B, K) and, with ``labels`` (B,) in [0, K), the cross-entropy ``loss``."""
        if self.sparse_last_layer and self.pooling != "mean":
            cls = torch.zeros_like(input_ids, dtype=torch.bool)
            cls[:, 0] = True                                             # the only position read
            out = self.bert(input_ids, token_type_ids, attention_mask, wanted=cls)
            # last_hidden_state is then (B, C): the [CLS] rows, h_[CLS] itself
            features = out["pooler_output"] if self.pooling == "pooler" else out["last_hidden_state"]
        else:
            out = self.bert(input_ids, token_type_ids, attention_mask)
            features = sentence_features(out, attention_mask, self.pooling)
        return self.classify_features(features, labels)


# --------------------------------------------------------------------------- parameter count

def count_parameters(config: BertConfig, heads: str = "none", num_labels: int = 2,
                     hidden_layer_size: int | None = None) -> int:
    r"""Closed-form number of trainable parameters (tied weights counted once).

    With $V, P, S$ = vocabulary, positions, segments, $C$ hidden, $I$
    intermediate, $L$ layers:

    - embeddings: $(V + P + S)\,C + 2C$ ($P = 0$ for sinusoidal positions);
    - one layer: $4(C^2 + C)$ attention $+\ 2C$ LN $+\ (CI + I) + (IC + C)$ FFN $+\ 2C$ LN
      $= 4C^2 + 2CI + 9C + I$;
    - pooler: $C^2 + C$.

    ``heads="none"`` -> :class:`BertModel`; ``"pretraining"`` adds
    $C^2 + 3C$ (transform + LN) $+\ V$ (decoder bias; its weight is tied)
    $+\ 2C + 2$ (NSP); ``"classification"`` adds $CK + K$, or
    $CD + D + DK + K$ with a hidden layer of size $D$.
    """
    V, C, I, L = config.vocab_size, config.hidden_size, config.intermediate_size, config.num_hidden_layers
    P = 0 if config.position_embedding_type == "sinusoidal" else config.max_position_embeddings
    S = config.type_vocab_size
    total = (V + P + S) * C + 2 * C
    total += L * (4 * C * C + 2 * C * I + 9 * C + I)
    total += C * C + C
    if heads == "pretraining":
        total += C * C + 3 * C + V + 2 * C + 2
    elif heads == "classification":
        K, D = num_labels, hidden_layer_size
        total += C * D + D + D * K + K if D else C * K + K
    elif heads != "none":
        raise ValueError(f"heads must be 'none', 'pretraining' or 'classification', got {heads!r}.")
    return total
