"""What a RobustBench pull request needs for one of our zoo entries.

:func:`export_robustbench` writes, under ``out``:

- ``model_info/<dataset>/<threat_model>/<Name>.json`` — the card with RobustBench's keys only (our
  ``cross_class``/``evaluation``/``training`` blocks and ``x_`` keys dropped), ``venue`` as
  ``"Venue Year"`` (RobustBench's bibtex tool reads the year from it) and ``reported`` filled;
- ``models/<dataset>/<threat_model>/<Name>.pt`` — the weights in the layout and format
  ``robustbench.utils.load_model(Name, model_dir=out/'models', ...)`` reads: a torch file
  ``{"state_dict": ...}`` whose keys contain neither ``module.`` nor ``model.`` (robustbench cuts
  those as prefixes) and fit the architecture below with ``strict=True``;
- ``model_zoo_entry.py`` — the text to paste into ``robustbench/model_zoo/<dataset>.py``: the
  architecture as a function of timm and torch only (the dataset's normalization inside, inputs in
  [0,1], the CIFAR stem when the entry has one) and the ``('<Name>', {...})`` entry.

Before returning, the export loads its own checkpoint into its own architecture the way robustbench
does and checks that the logits equal the zoo model's on a probe batch, so what it writes loads.
Only ``timm:`` architectures can be written as RobustBench code; other sources are refused.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..cards import ROBUSTBENCH_KEYS, validate_card
from ..core.io import atomic_write, atomic_write_json, atomic_write_text
from ..core.names import check_model_id
from ..models import FeatureClassifier
from ..models.sources import build_zoo_model
from ..models.zoo_catalog import ZooEntry, ZooError, find_entry
from .authoring import read_entry_card

VENUE_YEAR = re.compile(r".*\b(19|20)\d\d$")
FORBIDDEN_KEY_PARTS = ("module.", "model.")  # robustbench's load_model strips them as prefixes


class ExportError(ZooError):
    """The entry cannot be exported as it is; the message says which flag or field to give."""


@dataclass
class RobustBenchExport:
    """Paths written by :func:`export_robustbench` and the entry text to paste."""

    name: str
    card: Path
    checkpoint: Path
    entry: Path
    entry_text: str
    max_abs_logit_diff: float


def export_robustbench(model_id: str, out: str | os.PathLike, *, root: str | os.PathLike | None = None,
                       name: str | None = None, venue: str | None = None, reported: str | None = None,
                       link: str | None = None, authors: str | None = None, title: str | None = None,
                       dataset: str | None = None, threat_model: str | None = None) -> RobustBenchExport:
    """Export zoo entry ``model_id`` for a RobustBench pull request (see the module docstring).

    ``name`` renames the model (RobustBench's ID, e.g. ``Me2025Title_R18``; default the entry's);
    ``venue``, ``reported`` (a percent string), ``link``, ``authors``, ``title`` override the card's.
    ``reported`` defaults to the card's own ``reported``, else its ``autoattack_acc`` (our number
    is the authors' number for a model we trained). Raises :class:`ExportError` naming the flag
    when a field RobustBench needs is missing.
    """
    entry = find_entry(model_id, root, dataset, threat_model)
    rb_name = check_model_id(name or entry.name)
    if not entry.architecture.startswith("timm:"):
        raise ExportError(f"zoo entry {entry.name}: architecture {entry.architecture!r} is not a timm: "
                          "model; only timm architectures can be written as RobustBench model-zoo code")
    card = robustbench_card(read_entry_card(entry), venue=venue, reported=reported, link=link,
                            authors=authors, title=title, where=f"zoo entry {entry.name}")
    model = build_zoo_model(entry)
    state = robustbench_state_dict(model)
    text = entry_text(entry, rb_name, model, card)
    base = Path(out)
    card_path = base / "model_info" / entry.dataset / entry.threat_model / f"{rb_name}.json"
    ckpt_path = base / "models" / entry.dataset / entry.threat_model / f"{rb_name}.pt"
    entry_path = base / "model_zoo_entry.py"
    diff = _check_roundtrip(text, state, model, rb_name)
    atomic_write_json(card_path, card)
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(ckpt_path, lambda tmp: torch.save({"state_dict": state}, tmp))
    atomic_write_text(entry_path, text)
    return RobustBenchExport(rb_name, card_path, ckpt_path, entry_path, text, diff)


def robustbench_card(card: dict, *, venue: str | None = None, reported: str | None = None,
                     link: str | None = None, authors: str | None = None, title: str | None = None,
                     where: str = "card") -> dict:
    """``card`` reduced to RobustBench's keys, in RobustBench's order, with the overrides applied;
    validated. Raises :class:`ExportError` for a venue without a year, or no link/authors."""
    out = {k: card[k] for k in ROBUSTBENCH_KEYS if k in card}
    for key, value in (("venue", venue), ("link", link), ("authors", authors), ("name", title)):
        if value is not None:
            out[key] = value
    out["reported"] = reported or out.get("reported") or out.get("autoattack_acc") or ""
    if not VENUE_YEAR.match(str(out.get("venue", "")).strip()):
        raise ExportError(f"{where}: venue {out.get('venue')!r} is not RobustBench's 'Venue Year' "
                          "(its bibtex tool reads the year from it): pass --venue, e.g. 'ICML 2025'")
    for key in ("link", "authors"):
        if not str(out.get(key, "")).strip():
            raise ExportError(f"{where}: {key} is empty; RobustBench's cards always give it: pass --{key}")
    if not out["reported"]:
        raise ExportError(f"{where}: no reported accuracy and no autoattack_acc: pass --reported")
    out = {k: out[k] for k in ROBUSTBENCH_KEYS if k in out}  # the order again, after the overrides
    validate_card(out, where)
    return out


def robustbench_state_dict(model: FeatureClassifier) -> dict[str, torch.Tensor]:
    """The weights under the keys of the exported architecture: ``mean``/``std`` (normalization)
    and ``net.<timm key>``. Raises when a key would be mangled by robustbench's prefix stripping."""
    state = {}
    for key, value in model.state_dict().items():
        new = {"normalize.mean": "mean", "normalize.std": "std"}.get(key, key)
        if any(part in new for part in FORBIDDEN_KEY_PARTS):
            raise ExportError(f"weight {new!r} contains 'module.' or 'model.', which robustbench's "
                              "load_model cuts off: this architecture cannot be exported as it is")
        state[new] = value.detach().clone().contiguous()
    return state


def _py_name(name: str) -> str:
    return "rb_crossclass_" + re.sub(r"[^A-Za-z0-9_]", "_", name).lower()


def entry_text(entry: ZooEntry, rb_name: str, model: FeatureClassifier, card: dict) -> str:
    """Python text for ``robustbench/model_zoo/<dataset>.py``: the architecture and the entry."""
    from ..compat import import_timm

    timm_name = entry.architecture.split(":", 1)[1]
    kwargs = {"num_classes": entry.num_classes, "in_chans": entry.input_shape[0], **entry.extra}
    net = model.net
    stem = []
    if model.meta.get("cifar_stem"):
        if timm_name.startswith(("vit_", "deit", "beit", "eva")):
            kwargs.update(img_size=entry.input_shape[1], patch_size=4 if entry.input_shape[1] <= 32 else 8)
        elif isinstance(getattr(net, "conv1", None), torch.nn.Sequential):
            stem.append("    net.conv1[0].stride = (1, 1)  # CIFAR stem: no stride in the first convolution")
        else:
            conv = net.conv1
            stem.append(f"    net.conv1 = nn.Conv2d({conv.in_channels}, {conv.out_channels}, 3, 1, 1, "
                        f"bias={conv.bias is not None})  # CIFAR stem: 3x3, stride 1")
        if isinstance(getattr(net, "maxpool", None), torch.nn.Identity):
            stem.append("    net.maxpool = nn.Identity()")
    import_timm()  # the entry's kwargs must be ones timm accepts (checked by the round trip)
    has_norm = "normalize.mean" in model.state_dict()
    mean = [round(float(v), 6) for v in model.normalize.mean.flatten()] if has_norm else None
    std = [round(float(v), 6) for v in model.normalize.std.flatten()] if has_norm else None
    fn = _py_name(rb_name)
    # Data (card and entry fields) enters the text only as literals (_literal) or escaped comment
    # text (_comment); never pasted raw, so no value can end a string or a line and become code.
    name_c, zoo_c, data_c, tm_c = map(_comment, (rb_name, entry.name, entry.dataset, entry.threat_model))
    doc = f"{card['architecture']}: timm {timm_name}, inputs in [0,1], normalization inside."
    lines = [
        f"# RobustBench model-zoo entry for {name_c} (exported by rb-crossclass from zoo entry {zoo_c}).",
        f"# 1. Put the architecture below near the top of robustbench/model_zoo/{data_c}.py.",
        f"# 2. Upload models/{data_c}/{tm_c}/{name_c}.pt and put its Google Drive id",
        "#    in 'gdrive_id'.",
        f"# 3. Add the entry to the OrderedDict of the {tm_c} threat model in that file, and",
        f"#    model_info/{data_c}/{tm_c}/{name_c}.json to robustbench's model_info/.",
        "import timm",
        "import torch",
        "from torch import nn",
        "",
        "",
        f"class {_class_name(rb_name)}(nn.Module):",
        f"    {_literal(doc)}",
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *([f"        self.register_buffer('mean', torch.tensor({_literal(mean)}).view(1, -1, 1, 1))",
           f"        self.register_buffer('std', torch.tensor({_literal(std)}).view(1, -1, 1, 1))"]
          if has_norm else []),
        f"        self.net = {fn}()",
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        "        return self.net((x - self.mean) / self.std)" if has_norm else "        return self.net(x)",
        "",
        "",
        f"def {fn}() -> nn.Module:",
        f"    net = timm.create_model({_literal(timm_name)}, pretrained=False, **{_literal(kwargs)})",
        *stem,
        "    return net",
        "",
        "",
        "ENTRY = (",
        f"    {_literal(rb_name)},",
        "    {",
        f"        'model': {_class_name(rb_name)},",
        f"        'gdrive_id': None,  # the Google Drive id of {name_c}.pt",
        "    },",
        ")",
        "",
    ]
    return "\n".join(lines)


def _literal(value: object) -> str:
    """``value`` (None, bool, int, float, str, list/tuple/dict of those) as Python literal text that
    reads back as an equal value; anything else is refused, so no object's ``repr`` can inject code."""
    text = repr(value)
    try:
        same = _plain(value) and ast.literal_eval(text) == value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        same = False
    if not same or "\n" in text or "\r" in text:
        raise ExportError(f"cannot write {type(value).__name__} value {text[:60]!r} as a Python literal "
                          "in the model-zoo entry")
    return text


def _plain(value: object) -> bool:
    """Whether ``value`` is built of JSON-like types only (what a card or a zoo YAML can hold)."""
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) in (list, tuple):
        return all(_plain(v) for v in value)
    return type(value) is dict and all(type(k) is str and _plain(v) for k, v in value.items())


def _comment(value: str) -> str:
    """``value`` as text safe inside a ``#`` comment: printable ASCII only (everything else escaped
    as ``\\xNN``/``\\uNNNN``), so no line break or control character can end the comment."""
    return "".join(c if " " <= c <= "~" else ascii(c)[1:-1] for c in str(value))


def _class_name(name: str) -> str:
    parts = re.split(r"[^A-Za-z0-9_]+", name)
    return "RBCrossclass_" + "".join(p[:1].upper() + p[1:] for p in parts if p)


def load_entry_text(text: str) -> dict:
    """Run the exported entry text; returns its namespace (``ENTRY`` and the architecture)."""
    namespace: dict = {"__name__": "rb_crossclass_exported_entry"}
    exec(compile(text, "<model_zoo_entry.py>", "exec"), namespace)  # noqa: S102 - text we generated
    return namespace


def _check_roundtrip(text: str, state: dict, model: FeatureClassifier, rb_name: str) -> float:
    """Load ``state`` into the exported architecture as robustbench does; the logits must equal the
    zoo model's (same float operations: exactly, up to 1e-5 for safety)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        arch = load_entry_text(text)["ENTRY"][1]["model"]()
    arch.load_state_dict(state, strict=True)
    arch.eval()
    shape = model.meta.get("input_shape") or (3, 32, 32)
    x = torch.rand(4, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = float((arch(x) - model.eval()(x)).abs().max())
    if not diff <= 1e-5:
        raise ExportError(f"{rb_name}: the exported architecture's logits differ from the zoo model's by "
                          f"{diff:.3g}; nothing was written")
    return diff
