"""Knowledge distillation: the soft-target loss (Hinton et al. 2015), logit MSE (Tang et al. 2019), augmentation.

Formula tests (they take ``lib``) also run against the learner's
``tutorials/exercises/ex10_distillation.py`` with ``pytest --exercises``.
"""

from __future__ import annotations

import json
import math
import random
import warnings
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from helpers import load_script, max_abs_diff
from minibert.classification_data import Vocabulary
from textcnn.augment import MASK, UnigramSampler, augment, teacher_text
from minibert.model import IGNORE_INDEX
from textcnn.kd import student_loss


def _logits(seed=0, B=4, C=3, scale=2.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, C, generator=g, dtype=dtype) * scale,
            torch.randn(B, C, generator=g, dtype=dtype) * scale)


def _softmax_loop(row, T):
    m = max(float(v) / T for v in row)
    e = [math.exp(float(v) / T - m) for v in row]
    s = sum(e)
    return [x / s for x in e]


def _kd_by_hand(z_s, z_t, labels, T, alpha):
    """$\\alpha T^2 \\frac1B \\sum_b \\sum_c p^t (\\log p^t - \\log p^s) + (1-\\alpha)\\frac1B \\sum_b -\\log q_{b,y_b}$ as loops."""
    B = len(z_s)
    soft = hard = 0.0
    for b in range(B):
        p_t, p_s = _softmax_loop(z_t[b], T), _softmax_loop(z_s[b], T)
        soft += sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s))
        if labels is not None and int(labels[b]) != IGNORE_INDEX:
            hard += -math.log(_softmax_loop(z_s[b], 1.0)[int(labels[b])])
    return alpha * T * T * soft / B + (1 - alpha) * hard / B


# --------------------------------------------------------------------------- the formulas


@pytest.mark.formula
@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
def test_soft_target_loss_equals_the_formula_by_hand(lib, T):
    """$T^2 \\cdot \\frac1B \\sum_b \\mathrm{KL}(\\mathrm{softmax}(z^t_b/T) \\| \\mathrm{softmax}(z^s_b/T))$ written as loops."""
    z_s, z_t = _logits()
    got = float(lib.soft_target_loss(z_s, z_t, T))
    want = _kd_by_hand(z_s, z_t, None, T, 1.0)
    assert abs(got - want) <= 1e-10, f"soft_target_loss {got} vs loops {want} (T={T})"


@pytest.mark.formula
def test_distillation_loss_equals_the_formula_by_hand_with_unlabelled_sentences(lib):
    """$\\alpha T^2 \\mathrm{KL} + (1-\\alpha) \\mathrm{CE}$; a label -100 (augmented sentence) adds only the soft term, over the whole batch."""
    z_s, z_t = _logits(seed=1, B=5)
    labels = torch.tensor([0, 2, IGNORE_INDEX, 1, IGNORE_INDEX])
    got = float(lib.distillation_loss(z_s, z_t, labels, temperature=3.0, alpha=0.3))
    want = _kd_by_hand(z_s, z_t, labels, 3.0, 0.3)
    assert abs(got - want) <= 1e-10, f"distillation_loss {got} vs loops {want}"


@pytest.mark.formula
@pytest.mark.parametrize("T,alpha", [(1.0, 1.0), (4.0, 1.0), (4.0, 0.6)])
def test_gradient_wrt_student_logits(lib, T, alpha):
    """$\\partial\\mathcal{L}/\\partial z^s = \\alpha T (\\mathrm{softmax}(z^s/T) - \\mathrm{softmax}(z^t/T))/B + (1-\\alpha)(\\mathrm{softmax}(z^s) - \\mathrm{onehot}(y))/B$."""
    z_s, z_t = _logits(seed=2, B=6, C=4)
    z_s.requires_grad_(True)
    labels = torch.tensor([0, 1, 2, 3, 1, 0])
    lib.distillation_loss(z_s, z_t, labels, temperature=T, alpha=alpha).backward()
    B = z_s.shape[0]
    want = alpha * T * (torch.softmax(z_s.detach() / T, -1) - torch.softmax(z_t / T, -1)) / B
    want = want + (1 - alpha) * (torch.softmax(z_s.detach(), -1) - F.one_hot(labels, 4).double()) / B
    diff = max_abs_diff(z_s.grad, want)
    assert diff <= 1e-12, f"max |grad - formula| = {diff:.2e} (T={T}, alpha={alpha})"


@pytest.mark.formula
def test_soft_term_gradient_scale_does_not_shrink_as_the_temperature_grows(lib):
    """With $T^2$ the gradient norm stays put from $T=2$ to $T=100$; without it, it would fall like $1/T^2$."""
    z_s, z_t = _logits(seed=3, B=8, C=5)
    norms = {}
    for T in (2.0, 5.0, 20.0, 100.0):
        z = z_s.clone().requires_grad_(True)
        lib.soft_target_loss(z, z_t, T).backward()
        norms[T] = float(z.grad.norm())
    ratio = norms[100.0] / norms[2.0]
    assert 0.5 <= ratio <= 2.0, f"gradient norms by temperature {norms}: T=100 / T=2 = {ratio:.3f}"
    # the same loss without the T^2 factor: its gradient norm would be norms[T] / T^2
    unscaled_ratio = (norms[100.0] / 100.0 ** 2) / (norms[2.0] / 2.0 ** 2)
    assert unscaled_ratio <= 1e-3, f"without T^2 the ratio would be {unscaled_ratio:.2e}"


@pytest.mark.formula
def test_high_temperature_gradient_is_logit_matching(lib):
    """Hinton 2.1: for large $T$ the gradient tends to $((z^s - \\bar z^s) - (z^t - \\bar z^t)) / (C B)$."""
    z_s, z_t = _logits(seed=4, B=3, C=4)
    z = z_s.clone().requires_grad_(True)
    lib.soft_target_loss(z, z_t, 1e4).backward()
    B, C = z_s.shape
    centred = (z_s - z_s.mean(-1, keepdim=True)) - (z_t - z_t.mean(-1, keepdim=True))
    want = centred / (C * B)
    rel = max_abs_diff(z.grad, want) / float(want.abs().max())
    assert rel <= 1e-3, f"relative distance to logit matching at T=1e4: {rel:.2e}"


@pytest.mark.formula
def test_one_hot_teacher_at_T1_alpha1_is_cross_entropy(lib):
    """$T = 1$, $\\alpha = 1$ and a teacher sure of class $y$: the KD loss is $-\\log \\mathrm{softmax}(z^s)_y$ averaged."""
    z_s, _ = _logits(seed=5, B=6, C=3)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    z_t = F.one_hot(y, 3).double() * 200.0  # softmax = one-hot up to e^-200
    got = float(lib.distillation_loss(z_s, z_t, None, temperature=1.0, alpha=1.0))
    want = float(F.cross_entropy(z_s, y))
    assert abs(got - want) <= 1e-10, f"KD {got} vs cross-entropy {want}"


@pytest.mark.formula
def test_distillation_loss_passes_gradcheck(lib):
    """Autograd's gradient equals finite differences (float64), for the soft and the hard term."""
    z_s, z_t = _logits(seed=6, B=3, C=3)
    z_s.requires_grad_(True)
    labels = torch.tensor([2, IGNORE_INDEX, 0])
    ok = torch.autograd.gradcheck(lambda z: lib.distillation_loss(z, z_t, labels, temperature=2.5, alpha=0.4),
                                  (z_s,), eps=1e-6, atol=1e-7)
    assert ok


@pytest.mark.formula
def test_logit_mse_is_the_squared_distance_averaged_over_sentences(lib):
    """$\\frac1B \\sum_b \\lVert z^t_b - z^s_b \\rVert^2$ by loops, which is $C$ times ``F.mse_loss``."""
    z_s, z_t = _logits(seed=7, B=4, C=3)
    got = float(lib.logit_mse_loss(z_s, z_t))
    want = sum(sum((float(a) - float(b)) ** 2 for a, b in zip(z_s[i], z_t[i])) for i in range(4)) / 4
    assert abs(got - want) <= 1e-10, f"logit_mse_loss {got} vs loops {want}"
    assert abs(got - 3 * float(F.mse_loss(z_s, z_t))) <= 1e-10


def test_teacher_logits_receive_no_gradient():
    """The teacher is a constant: backward through every loss leaves its logits without a gradient."""
    z_s, z_t = _logits(seed=8)
    for name in ("kd", "kd+ce", "mse"):
        s, t = z_s.clone().requires_grad_(True), z_t.clone().requires_grad_(True)
        student_loss(name, s, t, torch.tensor([0, 1, 2, 0]), temperature=2.0, alpha=0.5).backward()
        assert t.grad is None, f"{name}: the teacher's logits got a gradient"
        assert s.grad is not None and float(s.grad.abs().sum()) > 0


def test_the_common_mistakes_give_other_numbers():
    """Softmax (not log-softmax) into ``kl_div``, ``mean`` instead of ``batchmean`` and a missing $T^2$ all change the loss."""
    z_s, z_t = _logits(seed=9, B=4, C=3)
    T = 4.0
    right = float(student_loss("kd", z_s, z_t, temperature=T))
    log_t = F.log_softmax(z_t / T, -1)
    softmax_input = float(F.kl_div(F.softmax(z_s / T, -1), log_t, log_target=True, reduction="batchmean")) * T * T
    with warnings.catch_warnings():  # torch warns that 'mean' is not the KL divergence: the point made here
        warnings.simplefilter("ignore", UserWarning)
        mean = float(F.kl_div(F.log_softmax(z_s / T, -1), log_t, log_target=True, reduction="mean")) * T * T
    no_t2 = float(F.kl_div(F.log_softmax(z_s / T, -1), log_t, log_target=True, reduction="batchmean"))
    assert abs(mean - right / 3) <= 1e-12, f"'mean' should be batchmean / C: {mean} vs {right / 3}"
    assert abs(no_t2 - right / T ** 2) <= 1e-12
    assert softmax_input < 0 < right, f"softmax into kl_div gives {softmax_input} (not a divergence), right {right}"


@pytest.mark.parametrize("call,message", [
    (lambda z, t: student_loss("kd", z, t, temperature=0.0), "temperature"),
    (lambda z, t: student_loss("kd+ce", z, t, None, alpha=0.5), "labels"),
    (lambda z, t: student_loss("kd+ce", z, t, torch.zeros(4, dtype=torch.long), alpha=1.5), "alpha"),
    (lambda z, t: student_loss("kd", z, t[:, :2]), "(B, C)"),
    (lambda z, t: student_loss("l2", z, t), "kd, mse, kd+ce"),
])
def test_bad_arguments_get_one_clear_error(call, message):
    """Impossible temperatures, alphas, shapes or loss names raise a ValueError that says what is wrong."""
    z_s, z_t = _logits()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        call(z_s, z_t)


# --------------------------------------------------------------------------- augmentation

SENTENCES = [s.split() for s in (
    "a gorgeous , witty , seductive movie .",
    "a dull , lifeless mess .",
    "the plot is not very good , but the actors are",
    "not bad at all",
    "one of the best films of the year , and the funniest",
)]


def test_augmentation_is_deterministic_given_the_seed():
    """The same seed gives the same transfer set; another seed gives another one."""
    a = augment(SENTENCES, copies=5, seed=3)
    assert a == augment(SENTENCES, copies=5, seed=3)
    assert a != augment(SENTENCES, copies=5, seed=4)
    assert len(a) > 0 and all(0 <= i < len(SENTENCES) for i, _ in a)


def test_augmentation_discards_duplicates_and_the_source():
    """No new sentence equals its source or another new sentence of the same source."""
    out = augment(SENTENCES, copies=10, seed=0)
    by_source = {}
    for i, tokens in out:
        assert tokens != SENTENCES[i]
        by_source.setdefault(i, []).append(tuple(tokens))
    for i, news in by_source.items():
        assert len(news) == len(set(news)) <= 10, f"source {i}: {len(news)} new, {len(set(news))} distinct"


def test_masking_only_replaces_words_by_the_unknown_row():
    """Masking alone keeps the length and the words, or puts ``<unk>``: the id of the vocabulary's unknown row."""
    out = augment(SENTENCES, copies=4, seed=1, p_mask=0.3, p_swap=0.0, p_ngram=0.0)
    vocab = Vocabulary.build(SENTENCES)
    masked = 0
    for i, tokens in out:
        assert len(tokens) == len(SENTENCES[i])
        for new, old in zip(tokens, SENTENCES[i]):
            assert new in (old, MASK)
            masked += new == MASK
    assert masked > 0
    ids = vocab.encode([MASK])
    assert ids == [vocab.unk_id] and vocab.itos[vocab.unk_id] == MASK
    assert teacher_text(["not", MASK, "at", "all"]) == "not [MASK] at all"


def test_mask_rate_matches_p_mask():
    """The share of masked words is ``p_mask`` within four standard errors."""
    long = [[f"w{j}" for j in range(200)] for _ in range(20)]
    out = augment(long, copies=2, seed=2, p_mask=0.1, p_swap=0.0, p_ngram=0.0)
    n = sum(len(t) for _, t in out)
    rate = sum(t.count(MASK) for _, t in out) / n
    se = math.sqrt(0.1 * 0.9 / n)
    assert abs(rate - 0.1) <= 4 * se, f"mask rate {rate:.4f}, expected 0.1 +- {4 * se:.4f}"


def test_ngram_sampling_keeps_a_window_of_at_most_max_ngram_words():
    """n-gram sampling alone returns consecutive words of the source, 1..max_ngram of them."""
    out = augment(SENTENCES, copies=6, seed=5, p_mask=0.0, p_swap=0.0, p_ngram=1.0, max_ngram=3)
    for i, tokens in out:
        src = SENTENCES[i]
        assert 1 <= len(tokens) <= 3
        assert any(src[j:j + len(tokens)] == tokens for j in range(len(src) - len(tokens) + 1)), (tokens, src)


def test_swapped_words_follow_the_training_unigram_distribution():
    """The sampler draws each word with probability count / total (within 4 standard errors)."""
    sentences = [["a"] * 6 + ["b"] * 3 + ["c"]]
    sampler = UnigramSampler(sentences)
    rng = random.Random(0)
    n = 20000
    counts = Counter(sampler.draw(rng) for _ in range(n))
    for word, p in (("a", 0.6), ("b", 0.3), ("c", 0.1)):
        se = math.sqrt(p * (1 - p) / n)
        assert abs(counts[word] / n - p) <= 4 * se, f"{word}: {counts[word] / n:.4f} vs {p}"
    out = augment(SENTENCES, copies=5, seed=6, p_mask=0.0, p_swap=0.5, p_ngram=0.0)
    words = {w for s in SENTENCES for w in s}
    assert all(w in words for _, tokens in out for w in tokens)


def test_augmenting_only_the_long_sentences_skips_the_short_ones_without_a_draw():
    """``min_words``: sources shorter than it get no new sentence, and the long ones get exactly what they get
    when the short ones are not in the list at all (swaps off: the unigram sampler counts every source)."""
    short = [s for s in SENTENCES if len(s) < 5]
    long = [s for s in SENTENCES if len(s) >= 5]
    assert short and long
    out = augment(SENTENCES, copies=3, seed=7, p_swap=0.0, min_words=5)
    assert out and all(len(SENTENCES[i]) >= 5 for i, _ in out)
    index_of_long = [i for i, s in enumerate(SENTENCES) if len(s) >= 5]
    alone = augment(long, copies=3, seed=7, p_swap=0.0)
    assert out == [(index_of_long[i], tokens) for i, tokens in alone]


@pytest.mark.parametrize("kwargs,message", [
    (dict(copies=-1), ">= 0"), (dict(copies=1, p_mask=1.5), "p_mask"),
    (dict(copies=1, p_mask=0.6, p_swap=0.6), "<= 1"), (dict(copies=1, max_ngram=0), "max_ngram"),
    (dict(copies=1, min_words=0), "min_words"),
])
def test_bad_augmentation_settings_get_one_clear_error(kwargs, message):
    """Impossible settings raise a ValueError naming the setting."""
    with pytest.raises(ValueError, match=message):
        augment(SENTENCES, **kwargs)


# --------------------------------------------------------------------------- textcnn distill, end to end

GOOD = ["a good film", "good fun", "really good acting", "so good", "good and warm", "a good story"]
BAD = ["a bad film", "bad fun", "really bad acting", "so bad", "bad and cold", "a bad story"]
WORDS = sorted({w for s in GOOD + BAD for w in s.split()})
STUDENT = ["--embedding-dim", "8", "--num-filters", "4", "--window-sizes", "1", "2", "--batch-size", "10",
           "--threads", "1", "--device", "cpu"]


def _toy(path, n, seed, names=("neg", "pos")):
    rng = random.Random(seed)
    rows = [f"{names[1]} {rng.choice(GOOD)}" if i % 2 else f"{names[0]} {rng.choice(BAD)}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A toy task, a tiny random BERT folder and a teacher fine-tuned from it by `minibert finetune`."""
    from minibert.finetune import main as finetune
    from minibert.hf import save_pretrained
    from minibert.model import BertConfig, BertModel
    from minibert.tokenization import WordPieceTokenizer

    root = tmp_path_factory.mktemp("distill")
    files = {"train": _toy(root / "train.txt", 40, 0), "dev": _toy(root / "dev.txt", 12, 1),
             "test": _toy(root / "test.txt", 12, 2)}
    torch.manual_seed(0)
    bert = root / "bert"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    config = BertConfig(vocab_size=len(tokens), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    save_pretrained(BertModel(config), bert)
    WordPieceTokenizer(tokens).save(bert)
    teacher = root / "teacher"
    code = finetune(["--init", str(bert), "--mode", "full", "--train", str(files["train"]), "--dev", str(files["dev"]),
                     "--test", str(files["test"]), "--epochs", "3", "--lr", "1e-3", "--batch-size", "8",
                     "--threads", "1", "--device", "cpu", "--log-every", "0", "--out", str(teacher)])
    assert code == 0
    return {"root": root, "bert": bert, "teacher": teacher, **files}


def _distill(toy, out, *extra):
    from textcnn.distill import main

    return main(["--teacher", str(toy["teacher"]), "--train", str(toy["train"]), "--dev", str(toy["dev"]),
                 "--test", str(toy["test"]), "--out", str(out), *STUDENT, *extra])


def test_distill_end_to_end_reports_student_teacher_sizes_and_speeds(toy, tmp_path, monkeypatch, capsys):
    """`textcnn distill` trains on the transfer set and writes the student's and the teacher's metrics,
    both parameter counts and both CPU speeds; the teacher stays in eval mode and its weights and
    logits never change during distillation."""
    import textcnn.distill as distill

    seen = {}
    load, cache = distill.load_teacher, distill.cached_teacher_logits

    def spy_load(path, labels, *rest):
        classifier, columns = load(path, labels, *rest)
        seen["classifier"] = classifier
        seen["state"] = {k: v.clone() for k, v in classifier.model.state_dict().items()}
        return classifier, columns

    def spy_cache(*args, **kwargs):
        logits = cache(*args, **kwargs)
        seen["logits"], seen["logits_copy"] = logits, logits.clone()
        return logits

    monkeypatch.setattr(distill, "load_teacher", spy_load)
    monkeypatch.setattr(distill, "cached_teacher_logits", spy_cache)
    out = tmp_path / "run"
    assert _distill(toy, out, "--augment", "2", "--epochs", "3", "--loss", "kd+ce",
                    "--throughput-sentences", "8") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["command"] == "textcnn distill"
    for key in ("test_accuracy", "test_f1_macro", "dev_accuracy", "best_epoch", "teacher_test_accuracy",
                "num_parameters", "teacher_num_parameters"):
        assert key in results, key
    assert results["teacher_num_parameters"] == sum(p.numel() for p in seen["classifier"].model.parameters())
    assert results["transfer_examples"] == 40 + results["augmented_examples"] and results["augmented_examples"] > 0
    for b in ("batch_1", "batch_64"):
        speeds = results["throughput"][b]
        assert speeds["student_sentences_per_second"] > 0 and speeds["teacher_sentences_per_second"] > 0
        assert speeds["folded_speedup"] == pytest.approx(speeds["folded_student_sentences_per_second"]
                                                         / speeds["teacher_sentences_per_second"], rel=1e-12)
    assert results["throughput"]["folded_max_abs_diff"] <= 1e-5, "the folded student predicts differently"
    assert "teacher's last layer at every position" in results["throughput_note"]
    model = seen["classifier"].model
    assert not model.training, "the teacher must stay in eval mode"
    for k, v in model.state_dict().items():
        assert torch.equal(v, seen["state"][k]), f"teacher parameter {k} changed during distillation"
    assert torch.equal(seen["logits"], seen["logits_copy"]), "the cached teacher logits changed"
    cached = torch.load(out / "transfer_set.pt", weights_only=True)
    from minibert.classify import load_classifier, predict_logits

    again = predict_logits(load_classifier(toy["teacher"]), cached["teacher_texts"])
    diff = max_abs_diff(again, cached["teacher_logits"])
    assert diff <= 1e-5, f"cached logits differ from the teacher's by {diff:.2e}"
    assert (out / "model.pt").is_file() and (out / "confusion_matrix.png").is_file()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["split"] == "dev"] == [1, 2, 3]


def test_a_teacher_with_its_last_layer_at_cls_only_gives_the_same_logits(toy, tmp_path, monkeypatch):
    """--teacher-last-layer read: the teacher really runs the trimmed layer, and the transfer set's cached logits
    equal the full teacher's to float32 round-off (1e-5)."""
    import textcnn.distill as distill
    from minibert.classify import load_classifier, predict_logits

    seen = {}
    load = distill.load_teacher

    def spy_load(*args):
        classifier, columns = load(*args)
        seen["trimmed"] = classifier.model.sparse_last_layer
        return classifier, columns

    monkeypatch.setattr(distill, "load_teacher", spy_load)
    out = tmp_path / "read"
    assert _distill(toy, out, "--epochs", "1", "--teacher-last-layer", "read") == 0
    assert seen["trimmed"] is True
    note = json.loads((out / "results.json").read_text())["throughput_note"]
    assert "teacher's last layer at [CLS] only" in note, note       # its speed is the trimmed teacher's
    cached = torch.load(out / "transfer_set.pt", weights_only=True)
    full = predict_logits(load_classifier(toy["teacher"]), cached["teacher_texts"])
    assert max_abs_diff(full, cached["teacher_logits"]) <= 1e-5


def test_labels_never_reach_the_students_inputs(toy, tmp_path):
    """The transfer set holds no label, and with --loss kd training labels do not matter at all:
    relabelling the training file gives the same transfer set and the same student."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert _distill(toy, a, "--augment", "3", "--epochs", "2", "--throughput-sentences", "0") == 0
    lines = toy["train"].read_text().splitlines()
    rng = random.Random(0)
    relabelled = tmp_path / "relabelled.txt"
    relabelled.write_text("\n".join(f"{rng.choice(['neg', 'pos'])} {line.split(' ', 1)[1]}" for line in lines) + "\n")
    from textcnn.distill import main

    assert main(["--teacher", str(toy["teacher"]), "--train", str(relabelled), "--dev", str(toy["dev"]),
                 "--test", str(toy["test"]), "--out", str(b), "--augment", "3", "--epochs", "2",
                 "--throughput-sentences", "0", *STUDENT]) == 0
    ta, tb = (torch.load(x / "transfer_set.pt", weights_only=True) for x in (a, b))
    assert ta["tokens"] == tb["tokens"]
    assert not any(w in ("neg", "pos") for tokens in ta["tokens"] for w in tokens)
    sa, sb = (torch.load(x / "model.pt", weights_only=True)["state_dict"] for x in (a, b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa), "--loss kd must not depend on the training labels"


def test_augment_min_words_grows_the_transfer_set_from_the_long_sentences_only(toy, tmp_path):
    """`--augment-min-words M`: every new sentence comes from a training sentence of at least M words, the
    others get none, and the option is recorded with the run."""
    out = tmp_path / "long_only"
    lengths = sorted(len(line.split()) - 1 for line in toy["train"].read_text().splitlines())
    m = lengths[len(lengths) // 2]   # about half of the toy sentences are long enough
    assert _distill(toy, out, "--augment", "2", "--augment-min-words", str(m), "--epochs", "1",
                    "--throughput-sentences", "0") == 0
    cached = torch.load(out / "transfer_set.pt", weights_only=True)
    n_train = len(lengths)
    sources = cached["source"][n_train:].tolist()
    assert sources, "no new sentence was made"
    long = {i for i in range(n_train) if len(cached["tokens"][i]) >= m}
    assert set(sources) <= long and len(set(sources)) >= len(long) // 2   # (a draw may repeat its source)
    assert len(long) < n_train, "the test needs short sentences too"
    assert json.loads((out / "results.json").read_text())["args"]["augment_min_words"] == m


def test_reuse_teacher_logits_and_vectors_from_bert(toy, tmp_path, capsys):
    """A second student reuses the first run's teacher logits; --vectors-from-bert runs the multichannel mode."""
    first = tmp_path / "first"
    assert _distill(toy, first, "--augment", "1", "--epochs", "1", "--throughput-sentences", "0") == 0
    capsys.readouterr()
    second = tmp_path / "second"
    assert _distill(toy, second, "--augment", "1", "--epochs", "1", "--throughput-sentences", "0", "--loss", "mse",
                    "--reuse-teacher-logits", str(first), "--mode", "multichannel",
                    "--vectors-from-bert", str(toy["bert"])) == 0
    out = capsys.readouterr().out
    assert "read from" in out and "sub-word embeddings" in out, out
    results = json.loads((second / "results.json").read_text())
    assert results["config"]["embedding_dim"] == 16 and results["config"]["mode"] == "multichannel"
    third = tmp_path / "third"
    assert _distill(toy, third, "--augment", "2", "--epochs", "1", "--reuse-teacher-logits", str(first)) == 2
    assert "another transfer set" in capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--alpha", "1.5"], "--alpha must be in [0, 1]"),
    (["--cv", "3"], "--cv is not supported"),
    (["--mode", "static"], "needs --vectors"),
    (["--temperature", "0"], "--temperature"),
])
def test_distill_bad_input_is_one_line(toy, tmp_path, capsys, extra, message):
    """Impossible options: `textcnn distill: error: <one sentence>`, exit 2, no traceback."""
    from textcnn.distill import main

    data = ["--train", str(toy["train"])] + ([] if extra[0] == "--cv" else ["--dev", str(toy["dev"])])
    try:
        code = main(["--teacher", str(toy["teacher"]), *data, "--out", str(tmp_path / "bad"), *STUDENT, *extra])
    except SystemExit as exc:  # errors found while parsing exit from argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("textcnn distill: error:") and message in err and len(err.strip().splitlines()) == 1, err


def test_distill_refuses_a_folder_that_is_not_a_finetune_run(toy, tmp_path, capsys):
    """A --teacher that is a plain BERT (no classifier) is one error line."""
    from textcnn.distill import main

    code = main(["--teacher", str(toy["bert"]), "--train", str(toy["train"]), "--out", str(tmp_path / "x"), *STUDENT])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("textcnn distill: error: --teacher") and len(err.strip().splitlines()) == 1, err


def test_the_distillation_table_reuses_a_shared_run_only_when_its_epochs_match(tmp_path):
    """scripts/compare_distillation.py shares compare_classifiers' --out: TextCNN-rand is its `textcnn` run,
    read back as it is, but a run trained for other epochs than the table's is refused, not silently mixed in."""
    import argparse

    module = load_script("compare_distillation")

    assert module.row_folder("textcnn-rand") == "textcnn" and module.row_folder("kd-real-aug") == "kd-real-aug"
    run = tmp_path / "sst2" / "textcnn" / "seed_0"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"test_accuracy": 0.77, "args": {"epochs": 10}}))
    def table_args(**changes):
        values = dict(epochs=10, augment=1, aug_epochs=5, augl_copies=6, augl_min_words=10, augl_epochs=4)
        return argparse.Namespace(**{**values, **changes})

    args = table_args()
    assert module.read_existing(run, "textcnn-rand", args)["test_accuracy"] == 0.77
    assert module.read_existing(tmp_path / "missing", "textcnn-rand", args) is None
    with pytest.raises(SystemExit, match="10 epochs, this table asks for 25"):
        module.read_existing(run, "textcnn-rand", table_args(epochs=25))
    aug = tmp_path / "sst2" / "kd-real-aug" / "seed_0"      # -aug rows are checked against --aug-epochs
    aug.mkdir(parents=True)
    (aug / "results.json").write_text(json.dumps({"test_accuracy": 0.81, "args": {"epochs": 5, "augment": 1}}))
    assert module.read_existing(aug, "kd-real-aug", args)["test_accuracy"] == 0.81
    with pytest.raises(SystemExit):
        module.read_existing(aug, "kd-real-aug", table_args(aug_epochs=3))
    with pytest.raises(SystemExit, match="transfer-set options"):   # another --augment: another transfer set
        module.read_existing(aug, "kd-real-aug", table_args(augment=4))
    # -augl rows: --augl-epochs, and the copies and minimum length of their own transfer set
    augl = tmp_path / "sst2" / "mse-real-augl" / "seed_0"
    augl.mkdir(parents=True)
    (augl / "results.json").write_text(json.dumps(
        {"test_accuracy": 0.85, "args": {"epochs": 4, "augment": 6, "augment_min_words": 10}}))
    assert module.transfer_settings("mse-real-augl-mc", args) == ("-augl", 6, 10, 4)
    assert module.transfer_settings("kd-tiny-aug", args) == ("-aug", 1, 1, 5)
    assert module.transfer_settings("kd-real", args) == ("", 0, 1, 10)
    assert module.read_existing(augl, "mse-real-augl", args)["test_accuracy"] == 0.85
    with pytest.raises(SystemExit, match="transfer-set options"):
        module.read_existing(augl, "mse-real-augl", table_args(augl_min_words=5))
    with pytest.raises(SystemExit, match="this table asks for 10"):
        module.read_existing(augl, "mse-real-augl", table_args(augl_epochs=0))


def test_the_distillation_table_gives_compare_classifiers_every_setting_it_reads(monkeypatch):
    """A missing teacher is trained by compare_classifiers.run_row with *this* script's arguments: every
    ``args.<name>`` that compare_classifiers reads must exist on them (``--table-only`` and ``--device`` once did
    not, and the script crashed as soon as a teacher had to be trained)."""
    import re
    from pathlib import Path

    module = load_script("compare_distillation")

    class Captured(Exception):
        pass

    def capture(args):
        raise Captured(args)

    monkeypatch.setattr(module.cc, "splits", capture)         # main's first use of the finished namespace
    with pytest.raises(Captured) as caught:
        module.main(["--tasks", "sst2", "--rows", "teacher-tiny"])
    args = caught.value.args[0]
    read = set(re.findall(r"\bargs\.(\w+)", Path(module.cc.__file__).read_text(encoding="utf-8")))
    assert read, "the pattern found no setting: the check would pass vacuously"
    missing = sorted(name for name in read if not hasattr(args, name))
    assert not missing, f"compare_classifiers reads settings compare_distillation does not define: {missing}"
    assert args.table_only is False, "a table of distilled rows must train a missing teacher, not skip it"


def test_a_multichannel_student_row_gets_the_bert_vectors_and_reuses_a_siblings_teacher_logits(tmp_path, monkeypatch):
    """``mse-real-mc``: a multichannel student on the vectors file of ``textcnn-multichannel-bert``, and the teacher
    logits cached by an earlier student of the same teacher and transfer set (here ``kd-real``), not recomputed;
    the augmented sibling's cache is never taken for an unaugmented row."""
    import argparse

    module = load_script("compare_distillation")
    assert {"kd-real-mc", "mse-real-aug-mc", "kd-tiny-mc"} <= set(module.ROWS)
    assert module.LABELS["mse-real-aug-mc"].endswith("distilled from MiniLM-L6, mse, augmented")
    out = tmp_path / "sst2"
    for folder in ("real-full", "kd-real-aug", "kd-real"):
        (out / folder / "seed_0").mkdir(parents=True)
        (out / folder / "seed_0" / "results.json").write_text(json.dumps({"test_accuracy": 0.9}))
    vectors = out / "_data" / "seed_0" / "bert_vectors.txt"
    vectors.parent.mkdir(parents=True)
    vectors.write_text("1 2\ngood 0.1 0.2\n")
    calls = []
    monkeypatch.setattr(module, "distill_run", lambda *a, **k: calls.append(a) or {"test_accuracy": 0.8})
    args = argparse.Namespace(out=str(tmp_path), epochs=10, aug_epochs=5, augment=4, augl_copies=6,
                              augl_min_words=10, augl_epochs=4, real="bert", vectors_bert=None, real_teacher=None)
    split = (["good film", "bad film"], [1, 0])
    assert module.run_row("mse-real-mc", "sst2", "seed_0", 0, split, split, split, ["0", "1"], args, {}) == {
        "test_accuracy": 0.8}
    files, run, seed, teacher, loss, row, reuse, _, vectors_arg = calls[0]
    assert (loss, row, vectors_arg) == ("mse", "mse-real-mc", str(vectors))
    assert module.transfer_settings(row, args)[1] == 0   # no augmentation
    assert teacher == out / "real-full" / "seed_0" and run == out / "mse-real-mc" / "seed_0"
    assert reuse == out / "kd-real" / "seed_0"
    module.run_row("kd-real", "sst2", "seed_0", 0, split, split, split, ["0", "1"], args, {})   # read, not rerun
    assert len(calls) == 1
    # a row augmented from the long examples has another transfer set: neither sibling's cache is taken
    module.run_row("mse-real-augl", "sst2", "seed_0", 0, split, split, split, ["0", "1"], args, {})
    assert calls[1][5] == "mse-real-augl" and calls[1][6] is None


def test_the_distillation_table_keeps_the_rows_other_invocations_wrote(tmp_path):
    """The SST-2 and MR halves (and two lanes of one table) are separate invocations sharing ``--out``: each one
    adds its rows to ``distill_table.*``; a row it ran again replaces the old one; tasks keep the SST-2, MR order."""
    import argparse

    module = load_script("compare_distillation")

    def summary(acc):
        return {"accuracy_mean": acc, "accuracy_std": 0.5, "n": 3, "f1_macro_mean": acc, "num_parameters": 10,
                "train_seconds_mean": 1.0}

    module.write_table({"mr": {"textcnn-rand": summary(70.0)}}, argparse.Namespace(out=str(tmp_path), tasks=["mr"]))
    module.write_table({"sst2": {"textcnn-rand": summary(80.0), "teacher-real": summary(88.0)}},
                       argparse.Namespace(out=str(tmp_path), tasks=["sst2"]))
    module.write_table({"mr": {"teacher-real": summary(82.0), "textcnn-rand": summary(71.0)}},
                       argparse.Namespace(out=str(tmp_path), tasks=["mr"]))
    saved = json.loads((tmp_path / "distill_table.json").read_text())
    assert list(saved["table"]) == ["sst2", "mr"]
    assert {row: s["accuracy_mean"] for row, s in saved["table"]["mr"].items()} == {
        "textcnn-rand": 71.0, "teacher-real": 82.0}
    assert saved["table"]["sst2"]["teacher-real"]["accuracy_mean"] == 88.0
    assert saved["args_by_task"] == {"sst2": {"out": str(tmp_path), "tasks": ["sst2"]},
                                     "mr": {"out": str(tmp_path), "tasks": ["mr"]}}
    md = (tmp_path / "distill_table.md").read_text()
    assert md.index("**sst2**") < md.index("**mr**")
    assert "| TextCNN-rand | 71.0 ± 0.5 (n=3) |" in md and "70.0" not in md and "88.0 ± 0.5" in md


def test_the_distillation_table_pairs_each_row_with_its_baselines_run_by_run(tmp_path):
    """Paired differences use the same fold's (seed's) accuracies of both rows, only the runs both have; a
    multichannel student is also paired with the multichannel model trained without a teacher."""
    import argparse

    module = load_script("compare_distillation")

    def summary(runs, accs):
        return {"accuracy_mean": sum(accs) / len(accs), "accuracy_std": 0.0, "n": len(accs), "f1_macro_mean": 0.0,
                "num_parameters": 10, "train_seconds_mean": 1.0, "runs": runs, "accuracies": accs}

    rand = summary(["fold_01", "fold_02", "fold_03"], [70.0, 74.0, 72.0])
    mc = summary(["fold_01", "fold_02", "fold_03"], [73.0, 75.0, 74.0])
    student = summary(["fold_03", "fold_01", "fold_04"], [76.0, 72.0, 99.0])   # other order; fold_04 unpaired
    p = module.paired_difference(student, rand)
    assert p["n"] == 2 and p["mean"] == pytest.approx(3.0) and p["min"] == pytest.approx(2.0)
    assert p["std"] == pytest.approx(2 / 2 ** 0.5)           # sample std of the differences 4 and 2
    assert module.paired_difference(summary(["fold_04", "fold_01"], [1.0, 2.0]), rand) is None   # one shared run
    assert module.paired_difference({"accuracies": [1.0, 2.0]}, rand) is None                   # runs not named
    assert module.paired_baselines("mse-real-aug-mc") == ["textcnn-rand", "textcnn-multichannel-bert"]
    assert module.paired_baselines("textcnn-rand") == []

    module.write_table({"mr": {"textcnn-rand": rand, "textcnn-multichannel-bert": mc, "mse-real-mc": student}},
                       argparse.Namespace(out=str(tmp_path), tasks=["mr"]))
    saved = json.loads((tmp_path / "distill_table.json").read_text())["table"]["mr"]
    assert saved["mse-real-mc"]["paired"]["textcnn-multichannel-bert"]["mean"] == pytest.approx(0.5)  # 2, -1
    assert saved["textcnn-rand"]["paired"] == {}
    md = (tmp_path / "distill_table.md").read_text()
    assert "vs TextCNN-rand: +3.0 ± 1.4 (n=2, min +2.0); vs TextCNN multichannel: +0.5 ± 2.1 (n=2, min -1.0) |" in md
    figure = tmp_path / "figures" / "table.png"                   # --figure: the same table drawn
    module.plot_table(json.loads((tmp_path / "distill_table.json").read_text())["table"], figure)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_distillation_table_in_lanes_starts_each_student_after_its_teacher_and_logit_sibling(tmp_path,
                                                                                                  monkeypatch):
    """``--lanes``: one job per (task, row, run); a student waits for its teacher (added if not a row) and for the
    first student of the same teacher and transfer set (whose cached logits it reuses); the scheduler never runs
    more than ``lanes`` jobs, starts none before its dependencies end, skips the dependants of a failed job and
    does not start a job whose results.json exists."""
    import argparse
    import subprocess
    import sys

    module = load_script("compare_distillation")
    args = argparse.Namespace(out=str(tmp_path), tasks=["sst2", "mr"], seeds=[0], mr_only_folds=[3], mr_folds=10,
                              rows=["textcnn-rand", "kd-real", "mse-real", "kd-real-aug", "mse-real-aug-mc"],
                              real_teacher=None, epochs=10, augment=1, aug_epochs=5, augl_copies=6,
                              augl_min_words=10, augl_epochs=4)
    jobs = {j["id"]: j for j in module.lane_jobs(args)}
    assert list(jobs)[:2] == ["sst2/teacher-real/seed_0", "sst2/textcnn-rand/seed_0"] and len(jobs) == 12
    assert jobs["sst2/kd-real/seed_0"]["deps"] == ["sst2/teacher-real/seed_0"]
    assert jobs["sst2/mse-real/seed_0"]["deps"] == ["sst2/teacher-real/seed_0", "sst2/kd-real/seed_0"]
    assert jobs["mr/mse-real-aug-mc/fold_03"]["deps"] == ["mr/teacher-real/fold_03", "mr/kd-real-aug/fold_03"]
    assert jobs["mr/kd-real/fold_03"]["argv"] == ["--tasks", "mr", "--rows", "kd-real", "--mr-only-folds", "3"]
    assert jobs["sst2/textcnn-rand/seed_0"]["result"] == tmp_path / "sst2" / "textcnn" / "seed_0" / "results.json"
    assert jobs["mr/teacher-real/fold_03"]["result"] == tmp_path / "mr" / "real-full" / "fold_03" / "results.json"
    # a child is this script on the parent's command line plus "--lanes 1" and the job's selection: the later
    # options win, so the child runs exactly that row on that run
    class Captured(Exception):
        pass

    def capture(child_args):
        raise Captured(child_args)

    parent = ["--tasks", "sst2", "mr", "--rows", "kd-real", "mse-real", "--lanes", "2", "--seeds", "0", "1",
              "--out", str(tmp_path)]
    monkeypatch.setattr(module.cc, "splits", capture)
    with pytest.raises(Captured) as caught:
        module.main(parent + ["--lanes", "1"] + jobs["mr/kd-real/fold_03"]["argv"])
    child = caught.value.args[0]
    assert (child.tasks, child.rows, child.mr_only_folds, child.lanes, child.seeds) == (
        ["mr"], ["kd-real"], [3], 1, [0, 1])
    with pytest.raises(SystemExit):
        module.main(["--lanes", "0"])

    # the scheduler, on jobs that record when they run: a fails, b needs a, c needs nothing, d needs c, e is done
    times = tmp_path / "times"
    times.mkdir()
    def fake(job_id, deps, code=0):
        return {"id": job_id, "deps": deps, "result": tmp_path / "fake" / job_id / "results.json", "code": code}
    fakes = [fake("a", [], code=3), fake("b", ["a"]), fake("c", []), fake("d", ["c"]), fake("f", []), fake("e", [])]
    fakes[-1]["result"].parent.mkdir(parents=True)
    fakes[-1]["result"].write_text("{}")
    script = ("import sys, time, pathlib; t = pathlib.Path(sys.argv[1]); s = time.time(); time.sleep(0.3); "
              "r = pathlib.Path(sys.argv[2]); r.parent.mkdir(parents=True, exist_ok=True); "
              "code = int(sys.argv[3]); code or r.write_text('{}'); t.write_text(f'{s} {time.time()}'); "
              "sys.exit(code)")
    def launch(job):
        return subprocess.Popen([sys.executable, "-c", script, str(times / job["id"]), str(job["result"]),
                                 str(job["code"])])
    status = module.run_lanes(fakes, 2, launch, log=lambda line: None, poll=0.05)
    assert status == {"a": "failed (exit 3)", "b": "skipped", "c": "done", "d": "done", "f": "done", "e": "done"}
    span = {p.name: tuple(map(float, p.read_text().split())) for p in times.iterdir()}
    assert set(span) == {"a", "c", "d", "f"}                 # b skipped, e already done: never started
    assert span["d"][0] >= span["c"][1]
    for t in {s for s, _ in span.values()}:                 # at most two running at any start
        assert sum(s <= t < e for s, e in span.values()) <= 2


def test_student_speed_remeasures_a_finished_run_eager_folded_and_teacher(toy, tmp_path):
    """scripts/student_speed.py on a finished distill run: one table row per batch size, speed-ups that are the
    ratios of the measured sentences/s, and a folded student whose probabilities equal the student's."""
    run = tmp_path / "run"
    assert _distill(toy, run, "--epochs", "1", "--throughput-sentences", "0") == 0
    from minibert.classification_data import read_examples

    module = load_script("student_speed")
    assert module.main([str(run), "--sentences", "16", "--repeats", "2", "--out", str(tmp_path / "speed")]) == 0
    saved = json.loads((tmp_path / "speed" / "speed.json").read_text())
    (row,) = saved["rows"]
    assert row["sentences"] == min(16, len(read_examples(toy["test"])[0])) and row["folded_max_abs_diff"] <= 1e-5
    for b in ("batch_1", "batch_64"):
        f = row[b]
        assert f["teacher_sentences_per_second"] > 0 and f["student_sentences_per_second"] > 0
        assert f["folded_speedup"] == pytest.approx(f["folded_student_sentences_per_second"]
                                                    / f["teacher_sentences_per_second"], rel=1e-9)
    assert (tmp_path / "speed" / "speed.md").read_text().count(f"| {run} |") == 2
