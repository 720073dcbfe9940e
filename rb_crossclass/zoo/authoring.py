"""Adding entries to the zoo: a training run becomes an entry (weights + YAML), an evaluated card
becomes its card."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from ..cards import ROBUSTBENCH_KEYS, load_card, write_card
from ..core.datasets import KNOWN_DATASETS, known_dataset
from ..core.io import atomic_write, atomic_write_text
from ..core.names import check_model_id
from ..core.threat import check_threat_model, format_eps
from ..models import sha256_file
from ..models.zoo_catalog import ZooEntry, ZooError, find_entry, load_entry, zoo_root


def read_entry_card(entry: ZooEntry) -> dict:
    """The entry's evaluated card (validated)."""
    if not entry.card_path.is_file():
        raise ZooError(f"{entry.yaml_path}: card {entry.card_path} not found")
    return load_card(entry.card_path)


def card_numbers(entry: ZooEntry) -> dict[str, Any]:
    """The headline numbers of the entry's card: ``clean_acc`` and ``autoattack_acc`` (RobustBench's
    percentage strings, e.g. ``"53.42"``), ``cas``, ``fsi`` and ``n_examples`` (``None`` when the
    card lacks them). A missing or invalid card gives ``{"card_error": message}`` instead of
    raising, so a listing shows every entry."""
    from ..core.errors import RBCrossclassError

    try:
        card = read_entry_card(entry)
    except RBCrossclassError as err:
        return {"card_error": str(err)}
    cc = card.get("cross_class") or {}
    ev = card.get("evaluation") or {}
    return {"clean_acc": card.get("clean_acc"), "autoattack_acc": card.get("autoattack_acc"),
            "cas": cc.get("cas"), "fsi": cc.get("fsi"), "n_examples": ev.get("n_examples")}


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # repeated dicts are written out, not as &id001
        return True


def dump_yaml(data: dict) -> str:
    """YAML text of an entry (keys in insertion order, no anchors)."""
    return yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True)


def add_entry(run_dir: str | os.PathLike, name: str, *, root: str | os.PathLike | None = None,
              dataset: str = "cifar10", threat_model: str = "Linf", checkpoint: str = "best",
              eps: str = "8/255") -> ZooEntry:
    """Turn a training run (``rb-crossclass train --out RUN_DIR``) into a zoo entry.

    Copies ``RUN_DIR/checkpoints/<checkpoint>/model.safetensors`` to
    ``<root>/<dataset>/<threat_model>/<name>.safetensors`` and writes ``<name>.yaml`` (architecture,
    recipe, resolved config, sha256, training summary). The card is added afterwards with
    :func:`attach_card`, from an evaluation of ``zoo:<name>``. ``name`` must be a model ID
    (:func:`rb_crossclass.core.names.check_model_id`); nothing is written outside the zoo folder,
    and an entry that exists already is not overwritten.
    """
    check_model_id(name, "zoo entry name")
    check_threat_model(threat_model)
    format_eps(eps)
    facts = known_dataset(dataset)
    if facts is None:
        raise ZooError(f"zoo entries are for RobustBench's datasets ({', '.join(KNOWN_DATASETS)}), "
                       f"got {dataset!r}")
    if checkpoint not in ("best", "last"):
        raise ZooError(f"checkpoint must be 'best' or 'last', got {checkpoint!r}")
    run = Path(run_dir)
    config_path, weights = run / "config.yaml", run / "checkpoints" / checkpoint / "model.safetensors"
    for p in (config_path, weights):
        if not p.is_file():
            raise ZooError(f"{run} is not a finished training run: {p} is missing")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    summary_path = run / "summary.json"
    summary = yaml.safe_load(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    if root is not None:
        base = Path(root)
    else:
        try:
            base = zoo_root()
        except ZooError:  # the first entry creates ./model_zoo
            base = Path.cwd() / "model_zoo"
    folder = base / dataset / threat_model
    target, yaml_path = folder / f"{name}.safetensors", folder / f"{name}.yaml"
    if yaml_path.exists() or target.exists():
        raise ZooError(f"zoo entry {name} exists already ({yaml_path}); choose another name or remove it")
    model = config.get("model") or {}
    entry = {
        "name": name, "dataset": dataset, "threat_model": threat_model, "eps": eps,
        "architecture": model.get("source"),
        "model": {"cifar_stem": model.get("cifar_stem"), "extra": model.get("extra") or {},
                  "num_classes": facts.num_classes, "input_shape": list(facts.shape)},
        "recipe": config.get("recipe") or {},
        "training": {
            "checkpoint": checkpoint, "epochs": summary.get("epochs"),
            "best_epoch": summary.get("best_epoch"), "seconds": summary.get("seconds"),
            "train_images_per_second": summary.get("train_images_per_second"), "seed": summary.get("seed"),
        },
        "config": config,
        "checkpoint": {"path": target.name, "url": None, "sha256": sha256_file(weights)},
        "card": f"{name}.json",
    }
    folder.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(target, lambda tmp: shutil.copyfile(weights, tmp))
        atomic_write_text(yaml_path, dump_yaml(entry))
        return load_entry(yaml_path)
    except BaseException:  # leave no half entry behind
        for p in (target, yaml_path):
            p.unlink(missing_ok=True)
        raise


DESCRIPTIVE_KEYS = ("link", "name", "authors", "venue", "architecture", "footnote")


def attach_card(model_id: str, eval_card: str | os.PathLike, *, root: str | os.PathLike | None = None,
                dataset: str | None = None, threat_model: str | None = None,
                footnote: str | None = None, fields: dict | None = None) -> Path:
    """Write the entry's card: an evaluated card plus its ``training`` block and ``footnote``.

    ``fields`` override descriptive RobustBench keys (``name``, ``architecture``, ``venue`` ...).
    Descriptive keys (title, authors, link, venue, architecture, footnote) that ``fields`` does not
    set keep the entry's current card's non-empty value: re-attaching after a re-evaluation replaces
    the measurements and keeps the curated description. The card is validated and written
    atomically to the path the YAML names.
    """
    entry = find_entry(model_id, root, dataset, threat_model)
    card = dict(load_card(eval_card))
    data = yaml.safe_load(entry.yaml_path.read_text(encoding="utf-8"))
    training = data.get("training") or {}
    previous = load_card(entry.card_path) if entry.card_path.is_file() else {}
    for key in DESCRIPTIVE_KEYS:
        if previous.get(key):
            card[key] = previous[key]
    card.update(fields or {})
    if footnote is not None:
        card["footnote"] = footnote
    card["training"] = {
        "recipe": str(entry.recipe.get("name")), "config": data.get("config") or {},
        "epochs": int(training.get("epochs") or 0), "best_epoch": training.get("best_epoch"),
        "checkpoint_sha256": entry.sha256,
    }
    ordered = {k: card[k] for k in ROBUSTBENCH_KEYS if k in card}
    ordered.update({k: v for k, v in card.items() if k not in ordered})
    write_card(ordered, entry.card_path)
    return entry.card_path
