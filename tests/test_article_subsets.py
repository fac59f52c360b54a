"""scripts/article_subsets.py: nested training corpora and a held-out corpus of whole WikiText articles."""

from __future__ import annotations

from helpers import load_script

from minibert.wikitext import read_articles


def _wikitext(path, titles):
    lines = []
    for t in titles:
        lines += [f" = {t} = ", "", f" {t} is a topic @-@ word . ", "", " = = Section = = ", "", f" More on {t} . ", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_corpora_are_nested_disjoint_from_the_heldout_articles_and_copied_line_for_line(tmp_path):
    module = load_script("article_subsets")
    a, b = tmp_path / "a.raw", tmp_path / "b.raw"
    _wikitext(a, [f"Alpha{i}" for i in range(6)])
    _wikitext(b, [f"Beta{i}" for i in range(5)])
    out = tmp_path / "out"
    assert module.main([str(a), str(b), "--heldout", "3", "--sizes", "2", "4", "8", "--seed", "1",
                        "--out", str(out)]) == 0
    titles = {name: [x.title for x in read_articles(out / f"{name}.raw")]
              for name in ("heldout", "train_2", "train_4", "train_8")}
    assert len(titles["heldout"]) == 3 and [len(titles[f"train_{n}"]) for n in (2, 4, 8)] == [2, 4, 8]
    assert titles["train_4"][:2] == titles["train_2"] and titles["train_8"][:4] == titles["train_4"]
    assert not set(titles["heldout"]) & set(titles["train_8"])
    assert set(titles["heldout"]) | set(titles["train_8"]) == {f"Alpha{i}" for i in range(6)} | {
        f"Beta{i}" for i in range(5)}
    # an article is its lines, unchanged: sections, artefacts and all
    source = a.read_text(encoding="utf-8") + b.read_text(encoding="utf-8")
    for block in module.split_articles(out / "train_8.raw"):
        assert "\n".join(block).strip() in source
    # the same seed draws the same split
    again = tmp_path / "again"
    module.main([str(a), str(b), "--heldout", "3", "--sizes", "8", "--seed", "1", "--out", str(again)])
    assert (again / "heldout.raw").read_text() == (out / "heldout.raw").read_text()


def test_too_large_a_corpus_is_refused_with_the_number_left(tmp_path):
    import pytest
    module = load_script("article_subsets")
    a = tmp_path / "a.raw"
    _wikitext(a, ["One", "Two", "Three"])
    with pytest.raises(SystemExit, match=r"only 1 article\(s\) remain after 2 held out"):
        module.main([str(a), "--heldout", "2", "--sizes", "2", "--out", str(tmp_path / "o")])


def test_summarise_counts_each_rows_training_articles_and_tabulates_the_best_constant(tmp_path):
    import json
    module = load_script("article_subsets")
    for n in (2, 3):
        corpus = tmp_path / f"train_{n}.raw"
        _wikitext(corpus, [f"T{i}" for i in range(n)])
        folder = tmp_path / f"n{n}"
        (folder / "mimetic").mkdir(parents=True)
        (folder / "mimetic" / "results.json").write_text(json.dumps({"args": {"train": str(corpus)}}))
        (folder / "rows.json").write_text(json.dumps([{
            "row": "mimetic", "steps": 10, "valid_nsp_accuracy": 0.5 + n / 100, "best_valid_nsp_accuracy": 0.6,
            "nsp_majority_accuracy": 0.4, "train_nsp_accuracy_last_10pct": 0.55, "mlm_margin_points": 1.0,
            "train_seconds": 3.0}]))
    records = module.summarise([tmp_path / "n3", tmp_path / "n2"])
    assert [r["articles"] for r in records] == [2, 3]
    table = module.summary_table(records)
    assert "| `mimetic` | 2 | 10 | 52.0 / 60.0 | 40.0 / 60.0 |" in table, table
    module.plot_summary(records, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 0
