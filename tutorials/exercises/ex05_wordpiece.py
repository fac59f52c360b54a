"""Exercise 05: greedy longest-match-first WordPiece (tutorials/05_tokenization.md).

Fill in ``wordpiece_tokenize`` below, then run

    python -m pytest --exercises tests/test_wordpiece.py -q

The tests are the same ones that check the library's WordPiece; the library's
version also reproduces transformers' BertTokenizer on real text.
"""

REFERENCE = "minibert.tokenization"


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

    Hint: two loops; ``start = 0``; while ``start < len(word)``: try
    ``end = len(word), len(word) - 1, ...`` until the piece is in vocab.
    """
    raise NotImplementedError(
        "Exercise 05 (tutorials/exercises/ex05_wordpiece.py): write wordpiece_tokenize; "
        "from each position take the longest piece in vocab ('##' + piece after the first), "
        "[unk_token] if none matches or the word is too long.")
