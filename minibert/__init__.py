"""minibert: a from-scratch, tested, tutorial-first BERT in pure PyTorch.

The formulas (``attention``, ``positional``), the model (``model``), checkpoint
conversion (``hf``), tokenizers (``tokenization``), WikiText (``wikitext``) and
BERT's pretraining data (``pretraining_data``); ``minibert pretrain`` runs
``minibert.pretrain``. The most used names are re-exported here.
"""

from minibert.attention import MultiHeadAttention, padding_mask, scaled_dot_product_attention
from minibert.hf import from_transformers, load_pretrained, save_pretrained, to_transformers
from minibert.model import (
    PRESETS,
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
    POOLINGS,
    cls_pooling,
    count_parameters,
    mean_pooling,
    sentence_features,
)
from minibert.positional import SinusoidalPositionalEncoding, sinusoidal_positional_encoding
from minibert.pretraining_data import PretrainingDataset, create_nsp_examples, iterate_batches, mask_tokens
from minibert.tokenization import SentencePieceTokenizer, WordPieceTokenizer, load_tokenizer
from minibert.wikitext import documents, find_corpus

__version__ = "0.1.0"

__all__ = [
    "scaled_dot_product_attention", "MultiHeadAttention", "padding_mask",
    "sinusoidal_positional_encoding", "SinusoidalPositionalEncoding",
    "BertConfig", "PRESETS", "BertModel", "BertForPreTraining", "BertForSequenceClassification",
    "count_parameters", "cls_pooling", "mean_pooling", "sentence_features", "POOLINGS",
    "from_transformers", "to_transformers", "load_pretrained", "save_pretrained",
    "WordPieceTokenizer", "SentencePieceTokenizer", "load_tokenizer",
    "find_corpus", "documents",
    "create_nsp_examples", "mask_tokens", "PretrainingDataset", "iterate_batches",
]
