"""Fine-tuning, linear probes and the from-scratch control (``minibert finetune`` / ``minibert classify``).

Checks: one fine-tuning step of a converted ``transformers`` model gives the
same loss and gradients as ``transformers.BertForSequenceClassification``
with the same weights; the sentence-transformers layout loads; a probe
changes no encoder parameter and trains exactly $C K + K$ numbers; the cached
features are the encoder's output; padding changes no prediction (masked
mean pooling); the export loads in ``transformers`` with the same logits and
labels; and the commands run end to end on a tiny data set in seconds.
"""

from __future__ import annotations

import json
import random

import pytest
import torch

from helpers import max_abs_diff, require_reference
from minibert import classify, finetune
from minibert.hf import hf_key_to_ours, load_pretrained, save_pretrained
from minibert.model import BertConfig, BertForSequenceClassification, BertModel, mean_pooling
from minibert.tokenization import SPECIAL_TOKENS, WordPieceTokenizer

POSITIVE = ["good", "great", "fine", "superb", "lovely", "warm"]
NEGATIVE = ["bad", "awful", "dull", "boring", "poor", "cold"]
FILLER = ["the", "film", "was", "a", "story", "and", "very", "plot", "acting", "quite"]


def _sentences(n: int, seed: int) -> list[tuple[str, str]]:
    """``(label, text)`` pairs: a filler sentence with one or two sentiment words; label 1 = positive."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 9))]
        for _ in range(rng.randint(1, 2)):
            words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if label else NEGATIVE))
        out.append((str(label), " ".join(words)))
    return out


def _write(path, pairs) -> str:
    path.write_text("".join(f"{label} {text}\n" for label, text in pairs), encoding="utf-8")
    return str(path)


TINY = dict(vocab_size=len(SPECIAL_TOKENS) + len(POSITIVE + NEGATIVE + FILLER), hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random tiny BERT folder (transformers layout + vocab.txt) and train/dev/test files."""
    root = tmp_path_factory.mktemp("finetune")
    torch.manual_seed(0)
    init = root / "init"
    save_pretrained(BertModel(BertConfig(**TINY)), init)
    WordPieceTokenizer(list(SPECIAL_TOKENS) + POSITIVE + NEGATIVE + FILLER).save(init)
    files = {name: _write(root / f"{name}.txt", _sentences(n, seed))
             for name, n, seed in (("train", 240, 1), ("dev", 60, 2), ("test", 60, 3))}
    return {"root": root, "init": str(init), **files}


def _finetune(tiny, out, *extra) -> dict:
    argv = ["--init", tiny["init"], "--train", tiny["train"], "--dev", tiny["dev"], "--test", tiny["test"],
            "--out", str(out), "--device", "cpu", "--log-every", "0", "--max-seq-len", "16", *extra]
    assert finetune.main(argv) == 0
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# equality with transformers


def test_one_finetuning_step_matches_transformers(tmp_path):
    """A transformers checkpoint converted by --init: same loss and gradients as transformers' classifier."""
    transformers = require_reference("transformers")
    torch.manual_seed(0)
    hf_config = transformers.BertConfig(**TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                        num_labels=3)
    reference = transformers.BertForSequenceClassification(hf_config)
    reference.save_pretrained(tmp_path / "hf")
    WordPieceTokenizer(list(SPECIAL_TOKENS) + POSITIVE + NEGATIVE + FILLER).save(tmp_path / "hf")

    ours, tokenizer, _ = finetune.load_initial_model(tmp_path / "hf", 3, "pooler", "full")
    with torch.no_grad():   # the head is always new in finetune; give both the same one
        ours.classifier.weight.copy_(reference.classifier.weight)
        ours.classifier.bias.copy_(reference.classifier.bias)
    ours.train()
    reference.train()
    texts = ["the film was good", "awful and boring plot , very dull", "fine"]
    ids, mask = classify.collate(classify.encode_texts(tokenizer, texts, 16), tokenizer.pad_id)
    labels = torch.tensor([2, 0, 1])
    loss = ours(ids, attention_mask=mask, labels=labels)["loss"]
    ref_loss = reference(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    ref_loss.backward()
    d_loss = abs(loss.item() - ref_loss.item())
    params = dict(ours.named_parameters())
    d_grad = 0.0
    for name, p in reference.named_parameters():
        mine = params[hf_key_to_ours(name)]
        d_grad = max(d_grad, max_abs_diff(mine.grad, p.grad))
    print(f"\none step vs transformers: |d loss| = {d_loss:.2e}, max |d grad| = {d_grad:.2e}")
    assert d_loss <= 1e-5, f"loss differs by {d_loss:.2e}"
    assert d_grad <= 1e-5, f"gradients differ by up to {d_grad:.2e}"
    assert len(params) == len(list(reference.parameters()))


def test_sentence_transformers_layout_loads(tmp_path):
    """Keys without 'bert.', a position_ids buffer and extra files (modules.json, 1_Pooling/) load as the encoder."""
    transformers = require_reference("transformers")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    reference = transformers.BertModel(transformers.BertConfig(**TINY)).eval()
    folder = tmp_path / "st"
    reference.save_pretrained(folder)
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    assert not any(k.startswith("bert.") for k in state)
    state["embeddings.position_ids"] = torch.arange(TINY["max_position_embeddings"])[None]
    save_file(state, str(folder / "model.safetensors"))
    (folder / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "x.Transformer"}]\n')
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}\n')
    WordPieceTokenizer(list(SPECIAL_TOKENS) + FILLER).save(folder)

    ours, _, _ = finetune.load_initial_model(folder, 2, "mean", "probe")
    ids = torch.tensor([[2, 5, 6, 7, 3, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    want = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    got = ours.eval().bert(ids, attention_mask=mask)["last_hidden_state"]
    d = max_abs_diff(got, want)
    assert d <= 1e-5, f"encoder output differs by {d:.2e}"


def test_scratch_keeps_the_architecture_but_not_the_weights(tiny):
    """--mode scratch: the same config and tokenizer as --init, freshly initialised weights."""
    full, tok_full, _ = finetune.load_initial_model(tiny["init"], 2, "pooler", "full")
    torch.manual_seed(1)
    scratch, tok_scratch, _ = finetune.load_initial_model(tiny["init"], 2, "pooler", "scratch")
    assert full.config == scratch.config and tok_full.tokens == tok_scratch.tokens
    w_full = full.bert.embeddings.word_embeddings.weight
    w_scratch = scratch.bert.embeddings.word_embeddings.weight
    assert w_full.shape == w_scratch.shape and not torch.equal(w_full, w_scratch)


# ---------------------------------------------------------------------------
# the probe


def test_probe_changes_no_encoder_parameter_and_trains_only_the_head(tiny):
    """A probe run: encoder tensors bit-identical to --init, exactly hidden*classes + classes trained."""
    out = tiny["root"] / "probe"
    results = _finetune(tiny, out, "--mode", "probe", "--epochs", "3", "--pooling", "cls")
    C, K = TINY["hidden_size"], 2
    assert results["num_trainable_parameters"] == C * K + K, results["num_trainable_parameters"]
    before = load_pretrained(tiny["init"], BertModel)
    after = load_pretrained(out / "export", BertForSequenceClassification, pooling="cls")
    changed = [n for n, p in before.named_parameters() if not torch.equal(p, dict(after.bert.named_parameters())[n])]
    assert not changed, f"the probe changed encoder tensors {changed}"
    assert not torch.equal(after.classifier.weight, torch.zeros_like(after.classifier.weight))


def test_cached_features_are_the_encoders_output(tiny):
    """Probe features computed once (batched, padded) equal the encoder's output sentence by sentence; reused."""
    model, tokenizer, _ = finetune.load_initial_model(tiny["init"], 2, "mean", "probe")
    model.train()   # encoder_features must switch dropout off by itself
    texts = ["the film was good", "awful", "a very dull , boring plot and poor acting , quite cold"]
    cache = finetune.FeatureCache()
    first = cache.get(model, tokenizer, texts, 16, torch.device("cpu"), "fp32", key="k")
    assert torch.equal(first, cache.get(model, tokenizer, texts, 16, torch.device("cpu"), "fp32", key="k"))
    model.eval()    # the reference below: the encoder without dropout
    for pooling in ("pooler", "cls", "mean"):
        model.pooling = pooling
        again = cache.get(model, tokenizer, texts, 16, torch.device("cpu"), "fp32", key="k")
        for i, text in enumerate(texts):
            enc = tokenizer.encode_batch([text], max_length=16)
            with torch.no_grad():
                out = model.bert(enc["input_ids"], attention_mask=enc["attention_mask"])
                want = {"pooler": out["pooler_output"], "cls": out["last_hidden_state"][:, 0],
                        "mean": mean_pooling(out["last_hidden_state"], enc["attention_mask"])}[pooling][0]
            d = max_abs_diff(again[i], want)
            assert d <= 1e-5, f"{pooling} feature of {text!r} differs by {d:.2e}"
    seconds = cache.seconds
    model.pooling = "mean"
    cache.get(model, tokenizer, texts[:2], 16, torch.device("cpu"), "fp32", key="k")
    assert cache.seconds == seconds, "texts already in the cache went through the encoder again"


# ---------------------------------------------------------------------------
# padding


@pytest.mark.parametrize("pooling", ["pooler", "cls", "mean"])
def test_padding_does_not_change_a_prediction(pooling, tiny):
    """A sentence alone and padded next to a longer one gets the same logits (masked mean pooling)."""
    model, tokenizer, _ = finetune.load_initial_model(tiny["init"], 2, pooling, "full")
    model.eval()
    short, long = "good film", "the film was a very dull story and the acting was quite poor"
    alone = tokenizer.encode_batch([short])
    batch = tokenizer.encode_batch([short, long])
    assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1]   # really padded
    with torch.no_grad():
        a = model(alone["input_ids"], attention_mask=alone["attention_mask"])["logits"][0]
        b = model(batch["input_ids"], attention_mask=batch["attention_mask"])["logits"][0]
        h = model.bert(batch["input_ids"], attention_mask=batch["attention_mask"])["last_hidden_state"]
    d = max_abs_diff(a, b)
    assert d <= 1e-5, f"{pooling}: padding changed the logits by {d:.2e}"
    if pooling == "mean":   # the same mean taken over the padding too would differ: the mask matters
        unmasked = h[0].mean(0)
        assert max_abs_diff(unmasked, mean_pooling(h, batch["attention_mask"])[0]) > 1e-3


# ---------------------------------------------------------------------------
# export and the commands


def test_export_loads_in_transformers_with_the_same_logits_and_labels(tiny):
    """export/: AutoModelForSequenceClassification + AutoTokenizer give our ids, logits and label names."""
    transformers = require_reference("transformers")
    out = tiny["root"] / "full"
    results = _finetune(tiny, out, "--mode", "full", "--epochs", "2", "--lr", "1e-3")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out / "export").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(out / "export")
    assert model.config.id2label == {0: "0", 1: "1"} and model.config.label2id == {"0": 0, "1": 1}
    clf = classify.load_classifier(out)
    texts = ["the film was good", "awful and boring", "a lovely , warm story with poor acting"]
    ours = classify.predict_logits(clf, texts)
    enc = tokenizer(texts, padding=True, return_tensors="pt", truncation=True, max_length=clf.max_seq_len)
    assert enc["input_ids"].tolist() == clf.tokenizer.encode_batch(texts, max_length=16)["input_ids"].tolist()
    with torch.no_grad():
        want = model(**enc).logits
    d = max_abs_diff(ours, want)
    assert d <= 1e-5, f"exported logits differ by {d:.2e}"
    assert ours.dtype == torch.float32 and ours.shape == (3, 2)
    assert results["num_trainable_parameters"] == results["num_parameters"]


def test_finetune_learns_the_tiny_task_and_writes_the_run_folder(tiny):
    """full mode on the toy sentiment task: test accuracy well above chance; every output file written."""
    out = tiny["root"] / "learn"
    results = _finetune(tiny, out, "--epochs", "6", "--lr", "2e-3", "--pooling", "mean")
    for key in ("test_accuracy", "test_precision_macro", "test_recall_macro", "test_f1_macro", "best_epoch",
                "num_parameters", "num_trainable_parameters", "train_seconds"):
        assert key in results, key
    assert results["test_accuracy"] >= 0.8, results["test_accuracy"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    dev = [r for r in records if r["split"] == "dev"]
    assert [r["epoch"] for r in dev] == list(range(1, 7))
    assert [r["epoch"] for r in records if r["split"] == "train"] == list(range(1, 7))
    best = max(dev, key=lambda r: (r["accuracy"], -r["epoch"]))
    assert results["best_epoch"] == best["epoch"]
    assert (out / "confusion_matrix.png").stat().st_size > 0


def test_finetune_with_the_last_layer_at_cls_only_learns_and_says_so(tiny, monkeypatch):
    """--last-layer read (pooler pooling): every encoder call of the run trims its last layer, the run learns the
    toy task and records the setting, and the export classifies as the trained model does with the full last
    layer (same logits up to round-off)."""
    from minibert.model import BertModel as Encoder
    trimmed_calls = []
    encoder_forward = Encoder.forward

    def spy(self, *args, wanted=None, **kwargs):
        trimmed_calls.append(wanted is not None)
        return encoder_forward(self, *args, wanted=wanted, **kwargs)

    monkeypatch.setattr(Encoder, "forward", spy)
    out = tiny["root"] / "read"
    results = _finetune(tiny, out, "--epochs", "6", "--lr", "2e-3", "--last-layer", "read")
    assert trimmed_calls and all(trimmed_calls)
    monkeypatch.undo()
    assert results["last_layer"] == "read"
    assert results["test_accuracy"] >= 0.8, results["test_accuracy"]
    texts = ["good film", "the plot was awful and dull", "very lovely acting"]
    full = classify.predict_logits(classify.load_classifier(out), texts)
    trimmed = classify.load_classifier(out, last_layer="read")
    assert trimmed.model.sparse_last_layer
    assert max_abs_diff(classify.predict_logits(trimmed, texts), full) <= 1e-5
    mean_run = tiny["root"] / "learn"          # the --pooling mean run above
    if not (mean_run / "results.json").exists():
        _finetune(tiny, mean_run, "--epochs", "1", "--pooling", "mean")
    with pytest.raises(classify.ClassifierError, match="pooling mean"):
        classify.load_classifier(mean_run, last_layer="read")


def test_finetune_fast_cpu_step_uses_16_bit_dropout_and_fused_adamw_and_says_so(tiny, monkeypatch):
    """--fast-dropout on --fused-adamw: every dropout of the run draws the 16-bit masks (FastDropout, and the
    attention through attention_with_fast_dropout), the optimizer is built with fused=True, the run learns the toy
    task, and results.json records both; by default neither is used."""
    from minibert.attention import MultiHeadAttention
    from minibert.fast_dropout import FastDropout, attention_with_fast_dropout, use_fast_dropout
    seen = {"masks": 0, "attention": 0, "fused": []}
    fast_forward, adamw = FastDropout.forward, torch.optim.AdamW

    def counting_forward(self, x):
        seen["masks"] += self.training
        return fast_forward(self, x)

    def counting_attention(*args):
        seen["attention"] += 1
        return attention_with_fast_dropout(*args)

    def recording_adamw(params, **kwargs):
        seen["fused"].append(kwargs.get("fused"))
        return adamw(params, **kwargs)

    def counting_use_fast_dropout(model):
        use_fast_dropout(model)
        for m in model.modules():
            if isinstance(m, MultiHeadAttention):
                m.training_attention = counting_attention
        return model

    monkeypatch.setattr(FastDropout, "forward", counting_forward)
    monkeypatch.setattr(finetune, "use_fast_dropout", counting_use_fast_dropout)
    monkeypatch.setattr(torch.optim, "AdamW", recording_adamw)
    results = _finetune(tiny, tiny["root"] / "fast", "--epochs", "6", "--lr", "2e-3", "--fast-dropout", "on",
                        "--fused-adamw")
    steps = 6 * 8                             # 240 sentences in batches of 32: 8 steps per epoch
    assert seen["fused"] == [True]
    assert seen["attention"] == 2 * steps     # two layers, every training step
    assert seen["masks"] >= 3 * 2 * steps     # embeddings, two per layer, the classifier's
    assert results["fast_dropout"] is True and results["fused_adamw"] is True
    assert results["test_accuracy"] >= 0.8, results["test_accuracy"]

    seen.update(masks=0, attention=0, fused=[])
    results = _finetune(tiny, tiny["root"] / "default_step", "--epochs", "1")
    assert seen == {"masks": 0, "attention": 0, "fused": [None]}
    assert results["fast_dropout"] is False and results["fused_adamw"] is False


def test_cross_validation_reports_means_and_stds(tiny):
    """--cv 2: one folder per fold and cv_* means and standard deviations over the folds."""
    out = tiny["root"] / "cv"
    argv = ["--init", tiny["init"], "--train", tiny["train"], "--cv", "2", "--mode", "probe", "--epochs", "2",
            "--out", str(out), "--device", "cpu", "--log-every", "0"]
    assert finetune.main(argv) == 0
    summary = json.loads((out / "results.json").read_text())
    folds = [json.loads((out / f"fold_0{f}" / "results.json").read_text())["test_accuracy"] for f in (1, 2)]
    assert summary["cv_accuracy_mean"] == pytest.approx(sum(folds) / 2)
    assert summary["cv_accuracy_std"] == pytest.approx(abs(folds[0] - folds[1]) / 2 ** 0.5)
    for key in ("cv_f1_macro_mean", "cv_f1_macro_std", "cv_precision_macro_mean", "cv_recall_macro_std"):
        assert key in summary


def test_classify_prints_label_probability_sentence(tiny, tmp_path, capsys):
    """minibert classify: one 'label<TAB>probability<TAB>sentence' line per input, from arguments and a file."""
    out = tiny["root"] / "full"
    if not (out / "results.json").exists():
        _finetune(tiny, out, "--epochs", "1")
    capsys.readouterr()                                       # only classify's lines below
    (tmp_path / "in.txt").write_text("awful plot\n\nlovely film\n", encoding="utf-8")
    assert classify.main(["--model", str(out), "good film", "--input", str(tmp_path / "in.txt")]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert [line.split("\t")[2] for line in lines] == ["good film", "awful plot", "lovely film"]
    for line in lines:
        label, prob, _ = line.split("\t")
        assert label in ("0", "1") and 0.5 <= float(prob) <= 1.0
    assert classify.main(["--model", str(out), "good film", "--input", str(tmp_path / "in.txt"),
                          "--last-layer", "read"]) == 0
    assert capsys.readouterr().out.strip().split("\n") == lines      # the same labels and probabilities


def _exit_code(main, argv) -> int:
    """A command's exit code, whether it returns it or argparse exits while parsing."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv, message", [
    (["--init", "{root}/nope"], "--init"),
    (["--max-seq-len", "2"], "max-seq-len"),
    (["--cv", "3", "--dev", "{dev}"], "--cv"),
    (["--warmup", "1.5"], "--warmup"),
    (["--last-layer", "read", "--pooling", "mean"], "--pooling mean reads every position"),
    (["--last-layer", "read", "--mode", "probe"], "--mode probe"),
])
def test_bad_input_is_one_error_line_and_exit_2(argv, message, tiny, capsys):
    """Wrong --init, impossible lengths, --cv with --dev, bad warm-up: 'prog: error: ...', exit 2, no traceback."""
    base = {"--init": tiny["init"], "--train": tiny["train"], "--out": str(tiny["root"] / "bad")}
    argv = [a.format(root=tiny["root"], dev=tiny["dev"]) for a in argv]
    for flag, value in base.items():
        if flag not in argv:
            argv += [flag, value]
    assert _exit_code(finetune.main, argv + ["--epochs", "1", "--log-every", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("minibert finetune: error: ") and message in err and "\n" not in err, err
    assert _exit_code(classify.main, ["--model", str(tiny["root"] / "nope"), "x"]) == 2
    assert capsys.readouterr().err.startswith("minibert classify: error: ")


def test_a_finished_run_is_not_overwritten(tiny, capsys):
    """A second run into the same --out stops with one error line unless --overwrite is given."""
    out = tiny["root"] / "twice"
    _finetune(tiny, out, "--mode", "probe", "--epochs", "1")
    argv = ["--init", tiny["init"], "--train", tiny["train"], "--out", str(out), "--mode", "probe", "--epochs", "1"]
    assert finetune.main(argv) == 2
    assert "already holds files" in capsys.readouterr().err
    assert finetune.main(argv + ["--overwrite", "--log-every", "0"]) == 0


@pytest.mark.parametrize("what", ["last-layer", "fast-step", "all"])
def test_classifier_speed_script_times_both_ways_and_checks_they_agree(what, capsys):
    """scripts/classifier_speed.py: both steps timed, ratios reported, and the faster model's eval logits equal
    the default's (the faster model really is set up as --compare says)."""
    from helpers import load_script
    from minibert.fast_dropout import FastDropout
    speed = load_script("classifier_speed")
    built = []
    deepcopy = speed.copy.deepcopy

    def recording_deepcopy(model):
        built.append(deepcopy(model))
        return built[-1]

    speed.copy.deepcopy = recording_deepcopy
    try:
        r = speed.compare("tiny", batch_size=2, seq_len=12, min_len=4, repeats=1, steps=2, what=what)
    finally:
        speed.copy.deepcopy = deepcopy
    fast_dropout, _, trimmed = speed.COMPARISONS[what]
    assert built[0].sparse_last_layer == trimmed
    assert any(isinstance(m, FastDropout) for m in built[0].modules()) == fast_dropout
    assert r["max_abs_diff"] <= 1e-5
    for name in ("train", "infer"):
        assert r[name]["base"] > 0 and r[name]["fast"] > 0
        q1, q2, q3 = r[name]["ratio"]
        assert 0 < q1 <= q2 <= q3
    threads = torch.get_num_threads()
    try:
        speed.keep_freed_memory = lambda: None              # leave this process's allocator alone
        assert speed.main(["--preset", "tiny", "--batch-size", "2", "--seq-len", "12", "--min-len", "4",
                           "--repeats", "1", "--steps", "2", "--threads", str(threads), "--compare", what]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "tiny   fine-tuning step" in out and "tiny   inference" in out and "max abs diff" in out
    with pytest.raises(SystemExit):
        speed.main(["--min-len", "100"])
