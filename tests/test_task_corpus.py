"""scripts/task_corpus.py: a classification set's texts as a pretraining corpus, and the text fine-tuning then reads.

The script's promise (tutorial 09, task-adaptive pretraining): ``minibert pretrain`` reads from the corpus
exactly the sentences that the detokenised labelled copy gives ``minibert finetune`` -- same text, same order,
labels nowhere in the corpus.
"""

from __future__ import annotations

import pytest

from minibert.classification_data import read_examples
from minibert.wikitext import documents

from helpers import load_script

task_corpus = load_script("task_corpus")

LINES = ["1 it 's a charming , often affecting journey .", "0 they wo n't sit still for a lesson .",
         "1 a stirring , funny and finally transporting film", "0 the film is strictly routine .",
         "1 béart and berling are both superb ( and huppert ... is magnificent ) ."]


def test_the_corpus_holds_the_texts_the_labelled_copy_gives_finetuning(tmp_path):
    source = tmp_path / "train.txt"
    source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    corpus, labelled = tmp_path / "corpus.txt", tmp_path / "detok" / "train.txt"
    assert task_corpus.main([str(source), "--corpus", str(corpus), "--labelled", str(labelled),
                             "--per-document", "2"]) == 0
    docs = documents(corpus)
    assert [len(d) for d in docs] == [2, 2, 1]                       # blocks of --per-document texts
    texts, labels = read_examples(labelled)
    assert [s for d in docs for s in d] == texts                     # what pretrain reads = what finetune reads
    assert labels == [line.split(" ", 1)[0] for line in LINES]
    assert texts[0] == "it's a charming, often affecting journey." and "won't" in texts[1]
    body = corpus.read_text(encoding="utf-8")
    assert not any(line.startswith(("0 ", "1 ")) for line in body.splitlines()), "a label leaked into the corpus"


def test_nothing_to_write_is_refused(tmp_path):
    source = tmp_path / "train.txt"
    source.write_text(LINES[0] + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        task_corpus.main([str(source)])
    assert exit_.value.code == 2


def test_corpus_text_blocks_and_bad_block_size():
    assert task_corpus.corpus_text(["a", "b", "c"], 2) == "a\nb\n\nc\n"
    with pytest.raises(ValueError):
        task_corpus.corpus_text(["a"], 0)
