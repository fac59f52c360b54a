"""Exercise 05: greedy longest-match-first WordPiece, and the unigram model's Viterbi
segmentation (tutorials/05_tokenization.md).

Fill in ``wordpiece_tokenize`` and ``viterbi_segment`` below, then run

    python -m pytest --exercises 05

The tests are the same ones that check the library; the library's WordPiece
also reproduces transformers' BertTokenizer on real text, and its Viterbi
reproduces SentencePiece's own encoding.
"""

REFERENCE = "minibert.tokenization"

# Graded hints, shown by `python -m pytest --exercises 05 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
    "viterbi_segment": [
        "you never need the list of all segmentations: the best cut of the first j characters only depends "
        "on the best cuts of shorter prefixes.",
        "walk over the end positions j = 1 .. len(text); for each j try every piece that ends at j, add its log "
        "probability to the best score of the prefix before it, keep the maximum and remember where that "
        "piece started. At the end, follow the remembered starts back from the last position.",
        "best(0) = 0; best(j) = max over i < j with text[i:j] in the vocabulary of best(i) + log p(text[i:j]); "
        "best(j) = -infinity when no such i exists. The answer is best(len(text)) and its pieces; a text whose "
        "best(len(text)) is -infinity cannot be cut (ValueError naming the text); '' gives ([], 0.0).",
    ],
    "wordpiece_tokenize": [
        "greedy means: never reconsider a piece once taken. At each position only one question matters: "
        "what is the longest vocabulary piece that starts here?",
        "an outer walk over start positions and an inner search over end positions, from the end of the "
        "word down towards start + 1; every piece except the first is looked up with '##' in front. If the "
        "inner search finds nothing, the whole word is unknown.",
        "j* = max{ j > i : p(w[i:j]) in V } with p(s) = s at i = 0 and '##' + s after; emit p(w[i:j*]) and "
        "continue at i = j*. Return [unk_token] when no j exists at some i, or when len(word) > "
        "max_input_chars_per_word; the empty word gives [].",
    ],
}


def wordpiece_tokenize(word, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
    r"""Cut one word into vocabulary pieces, taking the longest match first.

    From position $i$ (starting at 0) take the longest piece in ``vocab``:
    $j^* = \max\{ j > i : p(w_{i:j}) \in V \}$ with $p(s) = s$ when $i = 0$ and
    $p(s) = $ "##" + s otherwise; emit it and continue from $j^*$.

    - word: a str without spaces (one word of the basic tokenizer);
      vocab: a set/dict of str; returns a list of str.
    - If at some position no piece matches, return ``[unk_token]`` (the whole
      word is unknown; do not back-track to try shorter earlier pieces).
    - If ``len(word) > max_input_chars_per_word``, return ``[unk_token]``.
    - ``""`` gives ``[]``.

    Stuck? ``python -m pytest --exercises 05`` shows a hint; ``--hint 2`` and ``--hint 3`` show more.
    """
    raise NotImplementedError("Exercise 05 (tutorials/exercises/ex05_wordpiece.py): "
                              "wordpiece_tokenize is not written yet")


def viterbi_segment(text, log_probs):
    r"""The most probable segmentation of ``text`` under a unigram model: ``(pieces, log-probability)``.

    $x^* = \arg\max_{x \in S(\text{text})} \sum_i \log p(x_i)$ over the segmentations $S$ of
    ``text`` into pieces of ``log_probs`` (a dict ``{piece: log p(piece)}``).

    - Returns the list of pieces (they concatenate to ``text``) and their summed log-probability.
    - Raises ``ValueError`` (with ``text`` in the message, e.g. ``{text!r}``) when no segmentation exists.
    - ``""`` gives ``([], 0.0)``.

    Stuck? ``python -m pytest --exercises 05`` shows a hint; ``--hint 2`` and ``--hint 3`` show more.
    """
    raise NotImplementedError("Exercise 05 (tutorials/exercises/ex05_wordpiece.py): "
                              "viterbi_segment is not written yet")
