"""Kim's TextCNN: the convolution + max-over-time formula, padding, max-norm, embedding modes, configuration.

Formula tests (they take ``lib``) also run against the learner's
``tutorials/exercises/ex08_textcnn.py`` with ``pytest --exercises``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import max_abs_diff, random_token_batch as _random_batch, toy_textcnn as _model
from textcnn.model import TextCNN, TextCNNConfig, conv_max_over_time, pad_batch, wide_pad
from textcnn.optim import Adadelta


def _loop_conv_max(x, weight, bias, lengths):
    """$\\hat c = \\max_i \\mathrm{ReLU}(\\sum_{j,c} w_{f,c,j} x_{i+j,c} + b_f)$ with Python loops, float64."""
    B, T, C = x.shape
    num_filters, _, h = weight.shape
    out = torch.zeros(B, num_filters, dtype=torch.float64)
    for b in range(B):
        n = int(lengths[b])
        words = [x[b, t].double() if t < n else torch.zeros(C, dtype=torch.float64) for t in range(max(n, h))]
        for f in range(num_filters):
            best = None
            for i in range(max(n - h, 0) + 1):
                s = float(bias[f])
                for j in range(h):
                    for c in range(C):
                        s += float(weight[f, c, j]) * float(words[i + j][c])
                c_i = max(s, 0.0)
                best = c_i if best is None else max(best, c_i)
            out[b, f] = best
    return out


def _small_case(seed=0, T=7, C=3, num_filters=4, h=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, T, C, generator=g)
    weight = torch.randn(num_filters, C, h, generator=g)
    bias = torch.randn(num_filters, generator=g) * 0.1
    lengths = torch.tensor([T, 5, 2, 1])  # 2 and 1 are shorter than the window h = 3
    return x, weight, bias, lengths


@pytest.mark.formula
@pytest.mark.parametrize("h", [1, 2, 3, 5])
def test_conv_max_over_time_equals_the_loop_formula(lib, h):
    """$\\hat c = \\max_i \\mathrm{ReLU}(\\mathbf{w} \\cdot \\mathbf{x}_{i:i+h-1} + b)$, written as loops, on a small case."""
    x, weight, bias, lengths = _small_case(h=h)
    got = lib.conv_max_over_time(x, weight, bias, lengths)
    want = _loop_conv_max(x, weight, bias, lengths)
    assert got.shape == (4, 4), got.shape
    diff = max_abs_diff(got, want)
    assert diff <= 1e-5, f"max |conv_max_over_time - loops| = {diff:.2e}"


@pytest.mark.formula
def test_padding_never_changes_the_pooled_features(lib):
    """Appending padding positions holding arbitrary values leaves $\\hat c$ unchanged."""
    x, weight, bias, lengths = _small_case(h=4)
    base = lib.conv_max_over_time(x, weight, bias, lengths)
    junk = torch.randn(4, 6, 3) * 100.0  # anything at all in the padded positions
    longer = torch.cat([x, junk], dim=1)
    padded_junk = x.clone()
    for b, n in enumerate(lengths.tolist()):
        padded_junk[b, n:] = 50.0
    diff = max(max_abs_diff(lib.conv_max_over_time(longer, weight, bias, lengths), base),
               max_abs_diff(lib.conv_max_over_time(padded_junk, weight, bias, lengths), base))
    assert diff <= 1e-6, f"padding changed the pooled features by {diff:.2e}"


def _loop_wide_conv_max(x, weight, bias, lengths):
    """Wide convolution as loops, float64: $h-1$ zero vectors, the $n$ words, $h-1$ zero vectors;
    $\\hat c = \\max_{0 \\le i \\le n+h-2} \\mathrm{ReLU}(\\sum_{j,c} w_{f,c,j} \\tilde x_{i+j,c} + b_f)$."""
    B, T, C = x.shape
    num_filters, _, h = weight.shape
    out = torch.zeros(B, num_filters, dtype=torch.float64)
    for b in range(B):
        n = int(lengths[b])
        zero = torch.zeros(C, dtype=torch.float64)
        words = [zero] * (h - 1) + [x[b, t].double() for t in range(n)] + [zero] * (h - 1)
        for f in range(num_filters):
            out[b, f] = max(max(sum(float(weight[f, c, j]) * float(words[i + j][c])
                                    for j in range(h) for c in range(C)) + float(bias[f]), 0.0)
                            for i in range(n + h - 1))
    return out


@pytest.mark.parametrize("h", [1, 3, 5])
def test_wide_convolution_equals_the_loop_formula_over_zero_padded_words(h):
    """wide_pad + conv_max_over_time = the max over the $n+h-1$ windows of the sentence padded with $h-1$ zeros each side."""
    x, weight, bias, lengths = _small_case(h=h)  # lengths 7, 5, 2, 1: the last two shorter than h = 3, 5
    xw, nw = wide_pad(x, lengths, h)
    assert xw.shape == (4, 7 + 2 * (h - 1), 3) and nw.tolist() == [n + 2 * (h - 1) for n in lengths.tolist()]
    diff = max_abs_diff(conv_max_over_time(xw, weight, bias, nw), _loop_wide_conv_max(x, weight, bias, lengths))
    assert diff <= 1e-5, f"max |wide conv_max_over_time - loops| = {diff:.2e}"


def test_wide_padding_never_changes_the_pooled_features():
    """In wide mode too, extra padding positions holding arbitrary values leave $\\hat c$ unchanged."""
    x, weight, bias, lengths = _small_case(h=4)
    def wide(words):
        xw, nw = wide_pad(words, lengths, 4)
        return conv_max_over_time(xw, weight, bias, nw)

    base = wide(x)
    junk = torch.cat([x, torch.randn(4, 6, 3) * 100.0], dim=1)  # anything at all in the padded positions
    for b, n in enumerate(lengths.tolist()):
        junk[b, n:] = 50.0
    diff = max_abs_diff(wide(junk), base)
    assert diff <= 1e-6, f"padding changed the wide-convolution features by {diff:.2e}"


@pytest.mark.parametrize("conv_padding", ["narrow", "wide"])
def test_model_prediction_does_not_depend_on_batch_padding(conv_padding):
    """A sentence gets the same logits alone and padded inside a batch of longer sentences (both convolutions)."""
    model = _model(conv_padding=conv_padding).eval()
    lists, _ = _random_batch()
    ids, lengths = pad_batch(lists, min_length=5)
    batch_logits = model(ids, lengths)
    for row, tokens in enumerate(lists):
        alone_ids, alone_len = pad_batch([tokens], min_length=1)
        diff = max_abs_diff(model(alone_ids, alone_len)[0], batch_logits[row])
        assert diff <= 1e-5, f"sentence {row} (length {len(tokens)}): logits differ by {diff:.2e}"


@pytest.mark.parametrize("conv_padding", ["narrow", "wide"])
def test_sentence_shorter_than_the_widest_filter_gets_the_loop_formula(conv_padding):
    """One- and two-word sentences (filters 3/4/5): the model's pooled features equal the loops over zero-padded words."""
    model = _model(conv_padding=conv_padding).eval()
    ids, lengths = pad_batch([[7], [4, 9], [3, 5, 8, 2, 6, 11, 12]], min_length=1)  # T = 7
    x = model.embed(ids).detach()
    loops = _loop_wide_conv_max if conv_padding == "wide" else _loop_conv_max
    want = torch.cat([loops(x, conv.weight.detach(), conv.bias.detach(), lengths) for conv in model.convs], dim=-1)
    got = model.features(ids, lengths)
    assert torch.isfinite(got).all(), got
    diff = max_abs_diff(got, want)
    assert diff <= 1e-5, f"{conv_padding}: max |features - loops| = {diff:.2e}"
    short_ids, short_len = pad_batch([[7]], min_length=1)  # T = 1 < every window
    diff = max_abs_diff(model.features(short_ids, short_len)[0], got[0])
    assert diff <= 1e-5, f"{conv_padding}: a one-word sentence alone differs from itself in a batch by {diff:.2e}"


@pytest.mark.parametrize("mode", ["rand", "static", "non-static", "multichannel"])
@pytest.mark.parametrize("conv_padding", ["narrow", "wide"])
def test_the_folded_model_gives_the_models_logits_with_anything_in_the_padding(mode, conv_padding):
    """FoldedTextCNN (per-word tables P_{h,j}[v] = W_{h,j} e(v)) equals the convolution: trained weights, every
    embedding mode, both paddings, sentences shorter than a window, and junk ids past each sentence's length."""
    from textcnn.folded import FoldedTextCNN

    model = _model(mode=mode, conv_padding=conv_padding)
    _train_steps(model, steps=3)   # folding must use the trained vectors, not the initial ones
    model.eval()
    folded = FoldedTextCNN.from_model(model)
    lists, _ = _random_batch(seed=5)
    ids, lengths = pad_batch(lists + [[7], [4, 9]], min_length=1)
    junk = ids.clone()
    for row, n in enumerate(lengths.tolist()):
        junk[row, n:] = 3 + row   # real word ids where the padding is
    want = model(ids, lengths)
    for name, x in (("padded", ids), ("junk in the padding", junk)):
        diff = max_abs_diff(folded(x, lengths), want)
        assert diff <= 1e-5, f"{mode}/{conv_padding}, {name}: folded logits differ by {diff:.2e}"
    vocab, windows, filters = model.config.vocab_size, model.config.window_sizes, model.config.num_filters
    assert folded.table_numbers() == (vocab + 1) * sum(windows) * filters


def test_filter_response_tables_equal_the_loop_formula(lib):
    """P_j[v, f] = sum_c W[f, c, j] e(v)_c for every offset j, word v and filter f (float64 loops)."""
    g = torch.Generator().manual_seed(3)
    vectors, weight = torch.randn(6, 5, generator=g), torch.randn(4, 5, 3, generator=g)   # V=6, C=5; F=4, h=3
    got = lib.filter_response_tables(vectors, weight)
    assert got.shape == (3, 6, 4), f"expected (h, V, F) = (3, 6, 4), got {tuple(got.shape)}"
    want = torch.zeros(3, 6, 4, dtype=torch.float64)
    for j in range(3):
        for v in range(6):
            for f in range(4):
                want[j, v, f] = sum(float(weight[f, c, j]) * float(vectors[v, c]) for c in range(5))
    diff = max_abs_diff(got.double(), want)
    assert diff <= 1e-5, f"tables differ from the loop formula by {diff:.2e}"


def _train_steps(model, steps=5, seed=0):
    opt = Adadelta([p for p in model.parameters() if p.requires_grad])
    for s in range(steps):
        lists, y = _random_batch(seed + s)
        ids, lengths = pad_batch(lists, min_length=5)
        loss = F.cross_entropy(model(ids, lengths), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.apply_max_norm()


def test_max_norm_constraint_holds_after_a_step():
    """After an update + apply_max_norm, every class row of the output layer has l2 norm <= s = 3."""
    model = _model()
    with torch.no_grad():
        model.fc.weight.mul_(0.0).add_(2.0)  # row norms 2 * sqrt(15) ~ 7.7 > 3
        model.fc.weight[2] = 0.01  # a row under the limit must not be rescaled up
    small_row = model.fc.weight[2].clone()
    model.apply_max_norm()
    norms = model.fc.weight.norm(dim=1)
    assert torch.all(norms <= 3.0 + 1e-5), f"row norms after the constraint: {norms.tolist()}"
    assert abs(norms[0].item() - 3.0) <= 1e-5, f"a row over the limit is scaled to exactly s: {norms[0]:.6f}"
    assert max_abs_diff(model.fc.weight[2], small_row) == 0.0, "a row under the limit was changed"
    _train_steps(model, steps=3)
    norms = model.fc.weight.norm(dim=1)
    assert torch.all(norms <= 3.0 + 1e-5), f"row norms after training steps: {norms.tolist()}"


def test_static_mode_never_changes_the_embeddings():
    """In static mode the pretrained vectors are frozen while the filters learn."""
    model = _model("static")
    emb, conv = model.embedding.weight.clone(), model.convs[0].weight.clone()
    _train_steps(model)
    assert max_abs_diff(model.embedding.weight, emb) == 0.0
    change = max_abs_diff(model.convs[0].weight, conv)
    assert change > 1e-4, f"the filters should have been updated (change {change:.2e})"


def test_non_static_and_rand_modes_fine_tune_the_embeddings():
    """non-static and rand update the embedding rows of the words they saw, and only those."""
    for mode in ("non-static", "rand"):
        model = _model(mode)
        emb = model.embedding.weight.clone()
        _train_steps(model, steps=1, seed=0)
        seen = set(sum(_random_batch(0)[0], []))
        changed = set((model.embedding.weight - emb).abs().sum(1).nonzero().flatten().tolist())
        assert changed and changed <= seen, f"{mode}: changed rows {sorted(changed)}, seen words {sorted(seen)}"


def test_multichannel_trains_one_channel_and_freezes_the_other():
    """multichannel: both channels start equal; after training only the non-static one has moved."""
    model = _model("multichannel")
    assert max_abs_diff(model.embedding.weight, model.static_embedding.weight) == 0.0
    static = model.static_embedding.weight.clone()
    _train_steps(model)
    assert max_abs_diff(model.static_embedding.weight, static) == 0.0
    moved = max_abs_diff(model.embedding.weight, static)
    assert moved > 1e-4, f"the trained channel should move (max change {moved:.2e})"
    assert model.convs[0].weight.shape[1] == 2 * 8, "each filter spans both channels"


def test_padding_row_stays_zero_and_untrained():
    """The <pad> vector is zero and receives no update."""
    model = _model("rand")
    _train_steps(model)
    assert model.embedding.weight[0].abs().max().item() == 0.0


def test_rand_mode_starts_uniform_in_plus_minus_quarter():
    """CNN-rand vectors are U[-0.25, 0.25] (Kim): inside the range, std close to 0.25/sqrt(3)."""
    torch.manual_seed(0)
    model = TextCNN(TextCNNConfig(vocab_size=2000, num_classes=2, embedding_dim=50))
    w = model.embedding.weight[1:]
    assert w.abs().max().item() <= 0.25
    std = w.std().item()
    assert abs(std - 0.25 / 3 ** 0.5) <= 0.005, f"std {std:.4f}, expected {0.25 / 3 ** 0.5:.4f}"


def test_bad_configuration_gets_one_clear_error():
    """Unknown mode, too few classes, unknown conv_padding, mismatched vectors: a ValueError that says what is wrong."""
    with pytest.raises(ValueError, match="mode must be one of"):
        TextCNNConfig(vocab_size=5, num_classes=2, mode="dynamic")
    with pytest.raises(ValueError, match="num_classes"):
        TextCNNConfig(vocab_size=5, num_classes=1)
    with pytest.raises(ValueError, match="conv_padding must be one of"):
        TextCNNConfig(vocab_size=5, num_classes=2, conv_padding="same")
    with pytest.raises(ValueError, match="vectors have shape"):
        TextCNN(TextCNNConfig(vocab_size=5, num_classes=2, embedding_dim=4), torch.zeros(5, 3))
