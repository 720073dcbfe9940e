"""Every entry of the installed robustbench's model zoo, planned without weights and without a
download: each ends applicable (a FeatureClassifier whose F.linear(features, W, b) equals the
logits) or not applicable with its named reason, as published in docs/zoo_applicability.md.

Two tiers, as ``rb-crossclass sweep --plan`` runs them: the structure of every entry with its
parameters on the meta device, and random weights + the contract check for entries up to
``MAX_CONTRACT_PARAMS`` parameters (and for those whose structure cannot be read on meta)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rb_crossclass.compat import import_robustbench
from rb_crossclass.sweep import plan_robustbench_entry

ROOT = Path(__file__).resolve().parent.parent
MAX_CONTRACT_PARAMS = 30_000_000

#: (dataset, threat model, name) -> reason; every other entry must be applicable.
NOT_APPLICABLE = {
    ("cifar10", "Linf", "Chen2020Adversarial"): "ensemble",
    ("cifar10", "Linf", "Bai2023Improving_edm"): "mixing_network",
    ("cifar10", "Linf", "Bai2024MixedNUTS"): "mixing_network",
    ("cifar10", "corruptions", "Diffenderfer2021Winning_LRR_CARD_Deck"): "ensemble",
    ("cifar10", "corruptions", "Diffenderfer2021Winning_Binary"): "no_linear_head",
    ("cifar10", "corruptions", "Diffenderfer2021Winning_Binary_CARD_Deck"): "ensemble",
    ("cifar100", "Linf", "Bai2023Improving_edm"): "mixing_network",
    ("cifar100", "Linf", "Bai2023Improving_trades"): "mixing_network",
    ("cifar100", "Linf", "Bai2024MixedNUTS"): "mixing_network",
    ("cifar100", "corruptions", "Diffenderfer2021Winning_LRR_CARD_Deck"): "ensemble",
    ("cifar100", "corruptions", "Diffenderfer2021Winning_Binary"): "no_linear_head",
    ("cifar100", "corruptions", "Diffenderfer2021Winning_Binary_CARD_Deck"): "ensemble",
    ("imagenet", "Linf", "Bai2024MixedNUTS"): "mixing_network",
}


def _entries() -> list[tuple[str, str, str]]:
    import_robustbench()
    from robustbench.model_zoo import model_dicts

    return [(ds.value, tm.value, name) for ds, boards in model_dicts.items() for tm, names in boards.items()
            for name in names]


ENTRIES = _entries()
_CONNECTIONS: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def no_network_one_thread():
    """No download can happen; one torch thread (hundreds of tiny forwards: a second thread only
    adds synchronisation)."""
    import torch

    def refuse(self, address, *args, **kwargs):
        _CONNECTIONS.append(repr(address))
        raise ConnectionError("tests of the zoo plan must not download")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        yield
    torch.set_num_threads(threads)


def test_the_zoo_is_the_one_the_table_was_made_for():
    assert len(ENTRIES) == 206 and set(NOT_APPLICABLE) <= set(ENTRIES)


@pytest.mark.slow
@pytest.mark.parametrize("key", ENTRIES, ids=["/".join(k) for k in ENTRIES])
def test_every_zoo_entry_is_applicable_or_has_a_named_reason(key):
    dataset, threat_model, name = key
    entry = plan_robustbench_entry(name, dataset, threat_model, contract_max_params=MAX_CONTRACT_PARAMS)
    assert entry.status != "failed", entry.detail
    assert entry.reason == NOT_APPLICABLE.get(key, "ok"), entry.detail
    assert entry.params and entry.params > 0
    if entry.applicable:
        assert entry.head and entry.feature_dim and entry.num_classes in (10, 100, 1000)
    if entry.applicable and entry.tier == "contract":
        assert entry.max_abs_diff is not None and entry.max_abs_diff < 1e-3


@pytest.mark.slow
def test_nothing_was_downloaded():
    assert not _CONNECTIONS


def test_published_table_lists_every_reason():
    text = (ROOT / "docs" / "zoo_applicability.md").read_text(encoding="utf-8")
    assert f"{len(ENTRIES)} models: {len(ENTRIES) - len(NOT_APPLICABLE)} applicable, " \
           f"{len(NOT_APPLICABLE)} not applicable, 0 failed" in text
    for (ds, tm, name), reason in NOT_APPLICABLE.items():
        assert f"- {ds}/{tm}/{name}: **{reason}**" in text
