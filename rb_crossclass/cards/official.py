"""RobustBench's official cards as the base of ours: found in a local ``model_info`` folder or
downloaded from RobustBench's GitHub, and the caller's descriptive fields merged over them."""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from .build import official_card_path
from .files import load_card, parse_card
from .schema import CardError

log = logging.getLogger(__name__)

__all__ = ["OFFICIAL_URL", "OFFICIAL_URL_ENV", "fetch_official_card", "merge_descriptive",
           "official_base_card"]

OFFICIAL_URL_ENV = "RB_CROSSCLASS_OFFICIAL_URL"
"""Environment variable overriding :data:`OFFICIAL_URL` (a mirror, or a local server in tests)."""
OFFICIAL_URL = "https://raw.githubusercontent.com/RobustBench/robustbench/master/model_info"
"""Base URL of RobustBench's ``model_info`` folder (``<dataset>/<threat_model>/<Name>.json``)."""


def fetch_official_card(dataset: str, threat_model: str, name: str, timeout: float = 15.0) -> dict:
    """Download and validate the official card ``<dataset>/<threat_model>/<name>.json`` from
    RobustBench's GitHub (``$RB_CROSSCLASS_OFFICIAL_URL`` overrides the base URL; ``timeout`` in
    seconds). Raises :class:`CardError` saying what to do offline when the download fails, and
    for a card that does not validate."""
    base = os.environ.get(OFFICIAL_URL_ENV, OFFICIAL_URL).rstrip("/")
    url = f"{base}/{dataset}/{threat_model}/{name}.json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https base
            text = resp.read().decode("utf-8")
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise CardError(
            f"--from-official: could not download {url} ({err}); offline, pass --official-cards DIR "
            "(a clone's robustbench/model_info) instead"
        ) from err
    return parse_card(text, url)


def official_base_card(*, dataset: str, threat_model: str, card_name: str, robustbench_name: str | None,
                       official_cards: str | os.PathLike | None = None, from_official: bool = False,
                       data_spec: str = "") -> dict | None:
    """The official card to pre-fill ours from, or ``None`` when none is asked for or found.

    ``from_official``: download the card of ``robustbench_name`` (:func:`fetch_official_card`);
    ``official_cards``: a RobustBench ``model_info`` folder, searched for ``robustbench_name``
    (else ``card_name``); a missing card is an error only for a robustbench model. ``data_spec``
    (the data as given, e.g. ``npz:PATH``) must name a known dataset for either. Raises
    :class:`CardError` (and :class:`~rb_crossclass.compat.CompatError` for a folder that is not
    a ``model_info`` folder).
    """
    if (from_official or official_cards) and data_spec.startswith("npz:"):
        raise CardError(f"--official-cards/--from-official: which dataset does {data_spec} hold? "
                        "pass --dataset-name (cifar10, cifar100, imagenet) so the right card is found")
    if from_official:
        if robustbench_name is None:
            raise CardError("--from-official needs a robustbench:<Name> model")
        return fetch_official_card(dataset, threat_model, robustbench_name)
    if not official_cards:
        return None
    from ..compat import official_cards_dir

    folder = official_cards_dir(official_cards)
    path = official_card_path(folder, dataset, threat_model, robustbench_name or card_name)
    if path.is_file():
        return load_card(path)
    if robustbench_name is not None:
        raise CardError(f"{path}: no official card for robustbench:{robustbench_name} in {folder}")
    log.info("no official card %s: the card is filled from the flags", path)
    return None


def merge_descriptive(base: Mapping[str, Any] | None, descriptive: Mapping[str, Any],
                      title: str) -> dict | None:
    """``base`` with the caller's descriptive fields (``link``, ``authors``, ``venue``, ...) and
    ``name`` = ``title`` over it: what the user gives wins over the official card. ``None`` (or an
    empty base) stays ``None``."""
    if not base:
        return None
    return {**base, **descriptive, "name": title}
