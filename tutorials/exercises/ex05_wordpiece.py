"""Exercise 05: greedy longest-match-first WordPiece (tutorials/05_tokenization.md).

Fill in ``wordpiece_tokenize`` below, then run

    python -m pytest --exercises tests/test_wordpiece.py -q

The tests are the same ones that check the library's WordPiece; the library's
version also reproduces transformers' BertTokenizer on real text.
"""

REFERENCE = "minibert.tokenization"

# Graded hints, shown by `python -m pytest --exercises 05 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
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
