"""The four published robust CIFAR-10 models (L∞ 2/255): architectures, manifest, download path,
the committed board, and the attribution-vs-confusion check."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import math
import shutil
import threading
from pathlib import Path

import pytest
import torch
import yaml

from rb_crossclass.cards.flags import unpack_flags
from rb_crossclass.crossclass.confusion import attribution_confusion_correlation, confusion_update

from conftest import SHARED_ROOT, needs_shared

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "leaderboards" / "manifests" / "cifar10_Linf_2-255.yaml"
CHECKPOINTS = SHARED_ROOT / "checkpoints" / "cifar10" if SHARED_ROOT else None
BOARD = REPO / "leaderboards" / "cifar10_Linf_2-255"
CARDS = REPO / "leaderboards" / "cards" / "cifar10" / "Linf"
# ../shared/checkpoints/cifar10/README.md, measured there on the first 1,017 real test images:
# clean %, and PGD-20 at 2/255 / 8/255 (step eps/4, one random start) on the first 500, in %.
README_NUMBERS = {"Wang2021Beta_ResNet2B": (70.40, 55.0, 18.0), "Wang2021Beta_ResNet4B": (77.29, 61.4, 15.8),
                  "Wong2018Provable_OVAL_CIFAR_Base_KW": (61.16, 50.2, 24.2),
                  "Wong2018Provable_OVAL_CIFAR_Wide_KW": (63.62, 53.8, 24.8)}
needs_checkpoints = pytest.mark.skipif(
    CHECKPOINTS is None or not CHECKPOINTS.is_dir(),
    reason="../shared/checkpoints/cifar10 (the published CIFAR-10 models) is not present")


def manifest_models() -> dict[str, dict]:
    return {m["name"]: m for m in yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["models"]}


@needs_checkpoints
def test_manifest_checksums_match_the_shared_files():
    for name, m in manifest_models().items():
        path = (MANIFEST.parent / m["checkpoint"]).resolve()
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == m["sha256"], name
        assert hashlib.md5(data).hexdigest() == m["card"]["x_weights"]["md5"], name  # the README's md5
        assert m["url"].startswith("https://github.com/stanleybak/vnncomp2021/raw/")
        assert m["url"] == m["card"]["x_weights"]["url"]


@needs_shared
@needs_checkpoints
def test_architectures_load_strictly_and_reproduce_the_readme_clean_accuracy(cifar_test):
    """Our architectures, written from the README, load every published tensor (strict) and give
    exactly the clean accuracy the README measured on the 1,017 real test images."""
    from rb_crossclass.models import create_model_source

    x, y = cifar_test
    for name, m in manifest_models().items():
        source = m["source"].replace("py:", f"py:{MANIFEST.parent}/", 1)
        model = create_model_source(source, checkpoint=str((MANIFEST.parent / m["checkpoint"]).resolve()),
                                    num_classes=10)
        with torch.no_grad():
            correct = int((model(x).argmax(1) == y).sum())
        assert round(100 * correct / len(y), 2) == README_NUMBERS[name][0], name
        assert model.head.out_features == 10 and model.head.in_features == 100


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@needs_checkpoints
def test_url_download_gives_the_same_bytes_and_offline_says_where_to_put_the_file(tmp_path):
    """A manifest whose local copy is absent downloads `url` into <model_dir>/downloads/<name>/ and
    checks it against sha256 (served here from a local HTTP server); an unreachable URL is one
    line naming the file to place."""
    from rb_crossclass.core.errors import RBCrossclassError
    from rb_crossclass.sweep.jobs import ModelJob
    from rb_crossclass.sweep.worker import _local_checkpoint

    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(CHECKPOINTS / "resnet2b.pth", served / "model_best.pth")
    handler = functools.partial(_Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sha = manifest_models()["Wang2021Beta_ResNet2B"]["sha256"]
        url = f"http://127.0.0.1:{server.server_address[1]}/model_best.pth"
        job = ModelJob("Wang2021Beta_ResNet2B", "py:x.py:f", checkpoint=str(tmp_path / "absent.pth"),
                       sha256=sha, url=url)
        path = _local_checkpoint(job, str(tmp_path / "models"))
        assert Path(path) == tmp_path / "models" / "downloads" / "Wang2021Beta_ResNet2B" / "model_best.pth"
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha
    finally:
        server.shutdown()
        thread.join()
    offline = ModelJob("Other", "py:x.py:f", checkpoint=str(tmp_path / "absent.pth"), sha256=sha,
                       url="http://127.0.0.1:9/model_best.pth")
    with pytest.raises(RBCrossclassError) as err:
        _local_checkpoint(offline, str(tmp_path / "models"))
    message = str(err.value)
    assert "could not be downloaded" in message and "absent.pth" in message and "\n" not in message


def test_manifest_url_requires_sha256(tmp_path):
    from rb_crossclass.sweep.manifest import ManifestError, load_manifest

    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    del data["models"][0]["sha256"]
    bad = tmp_path / "m.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ManifestError, match=r"\$\.models\[0\]"):
        load_manifest(bad)
    good = load_manifest(MANIFEST)
    assert [round(e * 255) for e in good.extra_eps] == [8] and round(good.eps * 255) == 2


# --------------------------------------------------------------------------- the confusion check
def test_confusion_correlation_by_hand():
    """Three classes, C with pairs (0,1) 0.9 > (0,2) 0.1 > (1,2) -0.5; confusion rates
    (0,1): (4/10 + 6/20)/2 = 0.35, (0,2): (1/10 + 0/5)/2 = 0.05, (1,2): (1/20 + 1/5)/2 = 0.125: the
    ranks of C are (3, 2, 1), of the rates (3, 1, 2): ρ = 1 − 6·(0 + 1 + 1)/(3·8) = 0.5."""
    c = [[1.0, 0.9, 0.1], [0.9, 1.0, -0.5], [0.1, -0.5, 1.0]]
    m = [[5, 4, 1], [6, 13, 1], [0, 1, 4]]
    out = attribution_confusion_correlation(c, m)
    assert out["n_pairs"] == 3 and out["spearman_rho"] == pytest.approx(0.5)
    empty = attribution_confusion_correlation([[1.0, None], [None, None]], [[3, 0], [0, 0]])
    assert empty["spearman_rho"] is None and empty["n_pairs"] == 0


def test_confusion_update_counts():
    conf = torch.zeros(3, 3, dtype=torch.int64)
    confusion_update(conf, torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 0, 0]))
    assert conf.tolist() == [[1, 1, 0], [0, 1, 0], [2, 0, 0]]


def test_scorer_confusion_is_the_adversarial_predictions(tmp_path):
    """The scorer's confusion matrix equals the predictions on its own adversarial examples, and
    survives sharding (merge_results adds the counts)."""
    from rb_crossclass.attacks import PGDConfig
    from rb_crossclass.crossclass import merge_results, score_model
    from rb_crossclass.models import wrap_model

    from conftest import TinyConvNet

    torch.manual_seed(0)
    model = wrap_model(TinyConvNet(num_classes=4)).eval()
    x, y = torch.rand(24, 3, 16, 16), torch.arange(24) % 4
    res = score_model(model, x, y, attack=PGDConfig(eps=8 / 255, steps=3), batch_size=8, progress=False,
                      keep_adversarial=True, channels_last=False, fold_bn=False)
    with torch.no_grad():
        pred = model(res.x_adv).argmax(1)
    expected = torch.zeros(4, 4, dtype=torch.int64)
    for t, p in zip(y.tolist(), pred.tolist(), strict=True):
        expected[t, p] += 1
    assert res.adversarial_confusion == expected.tolist()
    d = res.to_dict()
    assert d["confusion_correlation"]["n_pairs"] == 6
    halves = [score_model(model, x[i:i + 12], y[i:i + 12], attack=None, batch_size=8, progress=False)
              for i in (0, 12)]
    merged = merge_results(halves)
    assert sum(map(sum, merged.adversarial_confusion)) == 24


# --------------------------------------------------------------------------- the committed board
@pytest.mark.skipif(not (BOARD / "leaderboard.json").is_file(),
                    reason="leaderboards/cifar10_Linf_2-255 is not built")
def test_published_2_255_board_is_current_and_sane():
    """leaderboards/cifar10_Linf_2-255 equals a fresh build from leaderboards/cards (`make
    leaderboard`); AutoAttack standard on all 1,017 points at 2/255; AutoAttack at or below the
    README's PGD-20 on the same first 500 points and below our PGD-20 on all 1,017; clean accuracy
    as the README measured it; CAS with its interval, PGD-20 at 8/255 beside it, a tier and the
    confusion check on every row."""
    from rb_crossclass.leaderboard import build_rows

    published = json.loads((BOARD / "leaderboard.json").read_text(encoding="utf-8"))
    rows = build_rows([REPO / "leaderboards" / "cards"], "cifar10", "Linf", eps="2/255")

    def strip(entries):
        return [{k: v for k, v in e.items() if k != "card_files"} for e in entries]

    assert strip(published["entries"]) == strip(rows)
    assert published["eps"] == "2/255"
    assert {r["model_id"] for r in rows} == set(README_NUMBERS)
    sha = {n: m["sha256"] for n, m in manifest_models().items()}
    for r in rows:
        clean, pgd2, _ = README_NUMBERS[r["model_id"]]
        card = json.loads((CARDS / f"{r['model_id']}.json").read_text(encoding="utf-8"))
        ev = card["evaluation"]
        assert ev["n_examples"] == 1017 and ev["autoattack_version"] == "standard" and card["eps"] == "2/255"
        assert card["x_weights"]["sha256"] == sha[r["model_id"]]
        robust = unpack_flags(ev["point_flags"]["robust"], 1017)
        first500 = 100 * sum(robust[:500]) / 500  # the README's PGD-20 ran on the first 500 points
        assert first500 <= pgd2 + 1e-9, (r["model_id"], first500, pgd2)
        assert r["board_acc"] <= 100 * card["cross_class"]["robust_accuracy"] + 1e-9  # our PGD-20
        assert r["clean_acc"] == pytest.approx(clean, abs=0.005)
        assert r["n_examples"] == 1017 and r["eps_txt"] == "2/255" and r["tier"].startswith("A")
        assert r["cas_interval"] is not None and r["cas_interval"][0] <= r["cas"] <= r["cas_interval"][1]
        assert "8/255" in r["other_eps"] and r["other_eps"]["8/255"]["robust"] < r["board_acc"]
        assert r["confusion_rho"] is not None and math.isfinite(r["confusion_rho"])
        assert len(ev["point_flags"]["robust"]) == (1017 + 3) // 4
    assert all(c["test"] == "mcnemar_exact" for c in published["comparisons"])
    assert len(published["comparisons"]) == 6


def test_checkpoint_reader_unwraps_a_one_element_list(tmp_path):
    """The OVAL files save ``{"state_dict": [state dict], ...}``: the one element is the state dict;
    a list of two is refused with the file named (never guessed)."""
    from rb_crossclass.models.checkpoint import CheckpointError, read_state_dict

    sd = {"w": torch.ones(2), "b": torch.zeros(1)}
    torch.save({"state_dict": [sd], "err": 0.5, "epoch": 3}, tmp_path / "one.pth")
    assert set(read_state_dict(tmp_path / "one.pth")) == {"w", "b"}
    torch.save({"state_dict": (sd,)}, tmp_path / "tuple.pth")
    assert set(read_state_dict(tmp_path / "tuple.pth")) == {"w", "b"}
    torch.save({"state_dict": [sd, sd]}, tmp_path / "two.pth")
    with pytest.raises(CheckpointError, match="two.pth"):
        read_state_dict(tmp_path / "two.pth")
