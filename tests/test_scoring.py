"""The scorer: agreement with a plain-loop computation on a real model and real images,
score_examples == score_model, seeds, shards, modes restored."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rb_crossclass.attacks import PGDConfig
from rb_crossclass.core import runtime
from rb_crossclass.crossclass import ComputeSettings
from rb_crossclass.data import CIFAR10_CLASSES
from rb_crossclass.scoring import ScoringError, merge_results, score_examples, score_model

EPS = 8 / 255


def loop_matrix(model, x, y, num_classes):
    """Independent reference: one sample at a time, Python sums, cosines by hand.
    Returns (matrix as nested lists with None for empty classes, n correct)."""
    weight = model.head.weight.detach().double().tolist()
    bias = model.head.bias.detach().double().tolist()
    sums = [[0.0] * len(weight[0]) for _ in range(num_classes)]
    counts = [0] * num_classes
    correct = 0
    with torch.no_grad():
        for n in range(len(y)):
            g = model.features(x[n:n + 1])[0].double().tolist()
            logits = [sum(w * v for w, v in zip(row, g, strict=True)) + b
                      for row, b in zip(weight, bias, strict=True)]
            c = int(y[n])
            correct += int(max(range(num_classes), key=logits.__getitem__) == c)
            counts[c] += 1
            for j, gj in enumerate(g):
                sums[c][j] += gj * weight[c][j]
    vecs = [[s / counts[i] for s in sums[i]] if counts[i] else None for i in range(num_classes)]
    matrix = []
    for i in range(num_classes):
        row = []
        for j in range(num_classes):
            a, b = vecs[i], vecs[j]
            if a is None or b is None:
                row.append(None)
                continue
            dot = sum(u * v for u, v in zip(a, b, strict=True))
            na = math.sqrt(sum(u * u for u in a))
            nb = math.sqrt(sum(v * v for v in b))
            row.append(dot / (na * nb))
        matrix.append(row)
    return matrix, correct


def loop_cas(matrix):
    return sum(max(v, 0.0) for i, row in enumerate(matrix) for j, v in enumerate(row)
               if i != j and v is not None)


def assert_matrix_close(got, want, atol):
    assert len(got) == len(want)
    for r_got, r_want in zip(got, want, strict=True):
        for a, b in zip(r_got, r_want, strict=True):
            if b is None:
                assert a is None
            else:
                assert a == pytest.approx(b, abs=atol)


def test_plain_loop_agrees_on_real_resnet18_clean(aa_resnet18, cifar_test):
    x, y = cifar_test[0][:20], cifar_test[1][:20]
    res = score_model(aa_resnet18, x, y, attack=None, batch_size=8, progress=False,
                      class_names=CIFAR10_CLASSES)
    want, correct = loop_matrix(aa_resnet18, x, y, 10)
    assert_matrix_close(res.clean_matrix, want, 1e-5)
    assert res.matrix == res.clean_matrix and res.attack is None
    assert res.clean_cas == pytest.approx(loop_cas(want), abs=1e-4)
    assert res.clean_accuracy == correct / 20 and res.robust_accuracy == res.clean_accuracy
    assert correct >= 17  # a standard-trained ResNet-18 (94% clean accuracy)
    # classes 2 (bird) and 4 (deer) are not among the first 20 CIFAR-10 test images
    assert res.empty_classes == [2, 4] and res.per_class_counts[2] == 0
    assert res.per_class_scores[2] is None
    json.dumps(res.to_dict(), allow_nan=False)


def test_plain_loop_agrees_on_real_resnet18_pgd(aa_resnet18, cifar_test):
    x, y = cifar_test[0][20:30], cifar_test[1][20:30]
    attack = PGDConfig(eps=EPS, steps=2)
    res = score_model(aa_resnet18, x, y, attack=attack, batch_size=10, progress=False,
                      keep_adversarial=True)
    assert res.x_adv.shape == x.shape
    assert (res.x_adv - x).abs().max() <= EPS + 1e-6
    want, correct = loop_matrix(aa_resnet18, res.x_adv, y, 10)
    assert_matrix_close(res.matrix, want, 1e-5)
    assert res.cas == pytest.approx(loop_cas(want), abs=1e-4)
    assert res.robust_accuracy == correct / 10
    assert res.robust_accuracy < res.clean_accuracy  # a non-robust model loses accuracy
    assert res.attack == {**attack.as_dict(), "seed": 0}
    assert res.attack["step_size"] == pytest.approx(EPS / 4)


@pytest.fixture
def small_batch(cifar_test):
    return cifar_test[0][:40], cifar_test[1][:40]


def test_score_examples_matches_score_model(tiny_model, small_batch):
    x, y = small_batch
    attack = PGDConfig(eps=EPS, steps=3)
    res = score_model(tiny_model, x, y, attack=attack, batch_size=16, seed=3, progress=False,
                      keep_adversarial=True)
    again = score_examples(tiny_model, x, res.x_adv, y, batch_size=16, progress=False,
                           attack=res.attack)
    a, b = res.to_dict(), again.to_dict()
    a.pop("seconds"), b.pop("seconds")
    # Same forward on the same inputs; equal up to float32 rounding only, because CPU kernels
    # may round differently with the alignment of intermediate buffers (seen: 3e-8 in features).
    assert_tree_close(a, b, 1e-6)
    assert a["robust_accuracy"] == b["robust_accuracy"] and a["per_class_counts"] == b["per_class_counts"]
    assert a["clean_matrix"] == b["clean_matrix"] and a["attack"] == b["attack"]


def assert_tree_close(a, b, atol):
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, abs=atol)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_tree_close(a[key], b[key], atol)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            assert_tree_close(u, v, atol)
    else:
        assert a == b


def test_seed_reproducible_and_seed_matters(tiny_model, small_batch):
    x, y = small_batch
    attack = PGDConfig(eps=EPS, steps=2)
    kw = dict(attack=attack, batch_size=16, progress=False, keep_adversarial=True)
    a = score_model(tiny_model, x, y, seed=0, **kw)
    b = score_model(tiny_model, x, y, seed=0, **kw)
    c = score_model(tiny_model, x, y, seed=1, **kw)
    assert torch.equal(a.x_adv, b.x_adv) and a.matrix == b.matrix and a.cas == b.cas
    assert not torch.equal(a.x_adv, c.x_adv)
    assert a.clean_matrix == c.clean_matrix  # clean part does not depend on the seed
    assert a.attack["seed"] == 0 and c.attack["seed"] == 1


def test_sharded_merge_equals_single_pass(tiny_model, small_batch):
    x, y = small_batch
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    x_adv = (x + 0.03 * torch.sign(noise)).clamp(0, 1)
    whole = score_examples(tiny_model, x, x_adv, y, batch_size=40, progress=False)
    shards = [score_examples(tiny_model, x[s], x_adv[s], y[s], batch_size=7, progress=False)
              for s in (slice(0, 13), slice(13, 40))]
    merged = merge_results(shards)
    assert merged.n_examples == 40 and merged.per_class_counts == whole.per_class_counts
    assert merged.robust_accuracy == whole.robust_accuracy
    assert merged.clean_accuracy == whole.clean_accuracy
    assert merged.cas == pytest.approx(whole.cas, abs=1e-9)
    assert merged.fsi == pytest.approx(whole.fsi, abs=1e-9)
    assert_matrix_close(merged.matrix, whole.matrix, 1e-9)


def test_modes_restored_and_errors(tiny_model, small_batch):
    x, y = small_batch
    tiny_model.train()
    score_model(tiny_model, x[:8], y[:8], attack=PGDConfig(eps=EPS, steps=1), progress=False)
    assert tiny_model.training
    assert all(p.requires_grad for p in tiny_model.parameters())
    with pytest.raises(ScoringError, match="labels span"):
        score_model(tiny_model, x[:4], y[:4] + 10, attack=None, progress=False)
    with pytest.raises(ScoringError, match="not a FeatureClassifier"):
        score_model(torch.nn.Linear(3, 2), x[:4], y[:4], attack=None, progress=False)
    with pytest.raises(ScoringError, match="untargeted"):
        score_model(tiny_model, x[:4], y[:4], attack=PGDConfig(eps=EPS, targeted=True), progress=False)
    with pytest.raises(ScoringError, match="differ in shape"):
        score_examples(tiny_model, x[:4], x[:3], y[:4], progress=False)


def test_mixed_module_modes_are_restored_module_by_module(tiny_model):
    tiny_model.train()
    tiny_model.net.body[0].eval()  # a part deliberately in another mode
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3])
    score_examples(tiny_model, x, x, y, progress=False)
    assert tiny_model.training and tiny_model.net.training and not tiny_model.net.body[0].training


# --------------------------------------------------------------------------- speed defaults
def test_channels_last_by_rule_and_layout_restored(tiny_model, small_batch):
    x, y = small_batch
    tiny_model.train()
    conv = tiny_model.net.body[0].weight
    assert conv.is_contiguous()  # NCHW before
    res = score_model(tiny_model, x, y, attack=PGDConfig(eps=EPS, steps=2), progress=False)
    assert res.compute == {"device": "cpu", "batch_size": 64, "channels_last": True, "bf16": False,
                           "compile": False, "fold_batch_norms": 0, "threads": torch.get_num_threads()}
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
    assert tiny_model.training and all(p.requires_grad and p.grad is None for p in tiny_model.parameters())
    nchw = score_model(tiny_model, x, y, attack=PGDConfig(eps=EPS, steps=2), progress=False,
                       channels_last=False)
    assert nchw.compute["channels_last"] is False
    # a layout only changes the order in which convolutions sum: the same examples score alike
    a = score_examples(tiny_model, x, x.flip(0), y, progress=False)
    b = score_examples(tiny_model, x, x.flip(0), y, progress=False, channels_last=False)
    assert a.compute["channels_last"] and not b.compute["channels_last"]
    assert_matrix_close(a.matrix, b.matrix, 1e-6)
    assert a.robust_accuracy == b.robust_accuracy


def test_model_without_convolutions_stays_nchw():
    from rb_crossclass.models import wrap_model

    mlp = wrap_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))).eval()
    x, y = torch.rand(6, 3, 2, 2), torch.tensor([0, 1, 2, 3, 0, 1])
    assert score_model(mlp, x, y, attack=None, progress=False).compute["channels_last"] is False


@pytest.mark.parametrize("norm,eps", [("Linf", EPS), ("L2", 0.5)])
def test_batch_size_leaves_per_sample_results_unchanged_on_cpu(tiny_model, small_batch, norm, eps):
    """Random starts are one stream of uniform draws, point after point (ℓ2 too: its direction is
    not torch.randn, whose kernel changes with the size), and the CPU kernels compute each sample
    alike up to float32 rounding, so batch sizes 1, 3, 7, N and the default (64 on CPU) give the
    same examples: bit for bit under ℓ∞'s sign steps; ℓ2's steps scale the raw gradient, in which a
    batch-1 kernel's rounding (1 ulp of a logit) survives as ≤ 1e-7 in a pixel (before the ℓ2
    start was tied to the batch shape, pixels moved by up to 0.04)."""
    x, y = small_batch
    x, y = x[:10], y[:10]
    kw = dict(attack=PGDConfig(eps=eps, steps=2, norm=norm), seed=4, progress=False,
              keep_adversarial=True)
    default = score_model(tiny_model, x, y, **kw)
    for batch in (1, 3, 7, len(y)):
        other = score_model(tiny_model, x, y, batch_size=batch, **kw)
        if norm == "Linf":
            assert torch.equal(other.x_adv, default.x_adv), batch
            assert other.cas == pytest.approx(default.cas, abs=1e-12)  # float64 sums in another order
        else:
            assert (other.x_adv - default.x_adv).abs().max() <= 2e-7, batch
            assert other.cas == pytest.approx(default.cas, abs=1e-5)
        assert other.robust_accuracy == default.robust_accuracy


def test_l2_random_start_is_a_function_of_seed_and_point_index():
    """Point i's ℓ2 start drawn in one batch equals its start drawn in batches of any size, lies
    in the ball, and is not the same direction for every point."""
    from rb_crossclass.attacks.pgd import _random_start

    x = torch.zeros(9, 3, 5, 5)

    def starts(batch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(11)
        return torch.cat([_random_start(x[i:i + batch], 0.5, "L2", g) for i in range(0, 9, batch)])

    whole = starts(9)
    for batch in (1, 2, 4):
        assert torch.equal(starts(batch), whole), batch
    norms = whole.flatten(1).norm(dim=1)
    assert bool((norms <= 0.5 + 1e-6).all()) and torch.isfinite(whole).all()
    cos = torch.nn.functional.cosine_similarity(whole[0].flatten(), whole[1].flatten(), dim=0)
    assert abs(float(cos)) < 0.5  # independent 75-d Gaussian directions are nearly orthogonal


def test_bf16_refused_without_native_hardware(tiny_model, small_batch, monkeypatch):
    x, y = small_batch
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    bf16 = ComputeSettings(bf16=True)
    for call in (lambda: score_model(tiny_model, x, y, attack=None, compute=bf16, progress=False),
                 lambda: score_examples(tiny_model, x, x, y, compute=bf16, progress=False)):
        with pytest.raises(runtime.Bf16UnsupportedError, match="bf16 scoring: this CPU has no native bf16"):
            call()


def test_bf16_accepted_with_native_hardware_and_marked(tiny_model, small_batch, monkeypatch):
    x, y = small_batch
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    attack = PGDConfig(eps=EPS, steps=2)
    bf = score_model(tiny_model, x, y, attack=attack, compute=ComputeSettings(bf16=True), progress=False)
    fp = score_model(tiny_model, x, y, attack=attack, progress=False)
    assert bf.attack == {**fp.attack, "bf16": True} and bf.compute["bf16"] and not fp.compute["bf16"]
    assert bf.to_dict()["attack"]["bf16"] is True
    assert math.isfinite(bf.cas) and bf.clean_cas == pytest.approx(fp.clean_cas, abs=0.5)
    assert abs(bf.clean_accuracy - fp.clean_accuracy) <= 0.1
    given = score_examples(tiny_model, x, x, y, compute=ComputeSettings(bf16=True), progress=False,
                           attack={"name": "given"})
    assert given.attack == {"name": "given", "bf16": True}


@pytest.mark.slow
def test_compiled_attack_scores_like_eager_and_pads_the_last_batch(tiny_model, small_batch):
    """compile=True: one compilation for the batch shape (40 = 16 + 16 + 8, the last padded), the
    same protocol, and scores equal to eager's up to float rounding."""
    import torch._dynamo

    x, y = small_batch
    torch._dynamo.reset()
    kw = dict(attack=PGDConfig(eps=EPS, steps=2), seed=1, batch_size=16, progress=False,
              keep_adversarial=True)
    eager = score_model(tiny_model, x, y, **kw)
    compiled = score_model(tiny_model, x, y, compile=True, **kw)
    assert compiled.compute["compile"] and compiled.x_adv.shape == x.shape
    assert (compiled.x_adv - x).abs().max() <= EPS + 1e-6
    assert (compiled.x_adv != eager.x_adv).float().mean() < 0.01  # rare sign flips at most
    assert compiled.cas == pytest.approx(eager.cas, abs=0.05)
    assert compiled.clean_matrix == eager.clean_matrix  # clean forwards stay eager
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1


def test_progress_moves_during_the_attack_of_a_single_batch(tiny_model, small_batch, monkeypatch):
    """Below one batch the bar used to jump from 0 to 100 %: it now advances with the PGD steps
    (whole images, in order) and ends exactly at N; several batches end at N too."""
    from rb_crossclass.core import progress

    updates: list[int] = []

    class Recorder:
        def __init__(self, *args, total=None, **kwargs):
            self.total = total

        def update(self, n):
            updates.append(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(progress, "progress_bar", Recorder)
    x, y = small_batch
    n = len(y)
    score_model(tiny_model, x, y, attack=PGDConfig(eps=EPS, steps=4), batch_size=n, progress=True)
    assert len(updates) >= 4 and sum(updates) == n and all(k > 0 for k in updates)
    updates.clear()
    score_model(tiny_model, x, y, attack=PGDConfig(eps=EPS, steps=3), batch_size=16, progress=True)
    assert sum(updates) == n
    updates.clear()
    score_examples(tiny_model, x, x, y, batch_size=16, progress=True)  # no attack: per batch
    assert sum(updates) == n
