"""The ground floor: each shared rule is defined once (rb_crossclass.core) and every stage agrees with it."""

from __future__ import annotations

import ast
import json
import math
from importlib import resources
from pathlib import Path

import pytest
import torch

from rb_crossclass.core import datasets, names, runtime, threat
from rb_crossclass.core.errors import RBCrossclassError
from rb_crossclass.core.io import jsonable

from conftest import OFFICIAL_CARDS


# --------------------------------------------------------------------------- ε
@pytest.mark.parametrize("text, value", [("8/255", 8 / 255), ("0.0314", 0.0314), (" 4/255 ", 4 / 255),
                                         (0.5, 0.5), (0, 0.0), ("0", 0.0)])
def test_parse_eps_accepts_fractions_and_decimals(text, value):
    assert threat.parse_eps(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["inf", "nan", "1e999", "-1", "-8/255", "8/0", "eight", "", True,
                                 float("inf")])
def test_parse_eps_refuses_infinite_negative_and_malformed(bad):
    with pytest.raises(threat.ThreatModelError):
        threat.parse_eps(bad)


@pytest.mark.parametrize("eps, hint", [(8.0, "8/255"), (1.0, "1/255"), (8255.0, None), (1.5, None)])
def test_linf_eps_of_one_or_more_is_refused_with_the_likely_meaning(eps, hint):
    with pytest.raises(threat.ThreatModelError, match="not below 1") as err:
        threat.check_eps(eps, "Linf")
    assert (f"did you mean {hint}?" in str(err.value)) if hint else "did you mean" not in str(err.value)
    assert threat.check_eps(0.3, "Linf") == 0.3 and threat.check_eps(8 / 255, "Linf") == 8 / 255
    assert threat.check_eps(eps, "L2") == eps  # l2 radii may exceed 1 (e.g. ImageNet's 3.0)


def test_linf_eps_rule_holds_at_every_entry_point(tmp_path):
    """The same slip (8 for 8/255) is refused by the CLI, AutoAttack's settings, the card check,
    the training config's inner attack and a sweep manifest."""
    import yaml
    from test_leaderboard import measured_card

    from rb_crossclass.cards import card_problems
    from rb_crossclass.evaluate import AutoAttackConfig, EvaluateError
    from rb_crossclass.recipes.inner import build_inner
    from rb_crossclass.sweep import ManifestError, load_manifest

    with pytest.raises(EvaluateError, match="not below 1"):
        AutoAttackConfig(norm="Linf", eps=8.0)
    AutoAttackConfig(norm="L2", eps=3.0)
    card = measured_card("M", "40.00", cas=1.0)
    card["eps"] = "8"
    card.setdefault("evaluation", {})["threat_model"] = "Linf"
    assert any(p.startswith("$.eps: ") and "8/255" in p for p in card_problems(card))
    with pytest.raises(RBCrossclassError, match="not below 1"):
        build_inner("pgd_at", eps="8", norm="Linf")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump({"dataset": "mnist", "threat_model": "Linf", "eps": "3",
                                        "models": [{"name": "A", "source": "timm:resnet18"}]}))
    with pytest.raises(ManifestError, match=r"field \$\.eps: .*not below 1"):
        load_manifest(manifest)


def test_format_eps_is_robustbench_string_form():
    assert threat.format_eps(8 / 255) == "8/255" and threat.format_eps(0.5) == "0.5"
    assert threat.format_eps(threat.parse_eps("4/255")) == "4/255" and threat.format_eps(0.3) == "0.3"
    assert threat.format_eps(1.0) == "1" and threat.format_eps(1e-7) == "0.0000001"
    assert threat.format_eps("16/255") == "16/255"
    with pytest.raises(threat.ThreatModelError):
        threat.format_eps("8|255")
    for value in (8 / 255, 0.5, 1e-7, 2.0, 12.0):
        import re

        assert re.match(threat.EPS_PATTERN, threat.format_eps(value))


def test_one_eps_pattern_in_the_schemas():
    root = resources.files("rb_crossclass") / "schemas"
    card = json.loads((root / "card.schema.json").read_text())
    zoo = json.loads((root / "zoo_entry.schema.json").read_text())
    assert card["$defs"]["epsString"]["pattern"] == threat.EPS_PATTERN
    assert zoo["properties"]["eps"]["pattern"] == threat.EPS_PATTERN


# --------------------------------------------------------------------------- norms
def _pgd(norm):
    from rb_crossclass.attacks import PGDConfig

    PGDConfig(eps=0.1, norm=norm)


def _autoattack(norm):
    from rb_crossclass.evaluate import AutoAttackConfig

    AutoAttackConfig(norm=norm, eps=0.1)


def _recipe(norm):
    from rb_crossclass.recipes import create_recipe

    create_recipe("pgd_at", norm=norm)


def _card(norm):
    from rb_crossclass.cards import card_from_results

    card_from_results(name="m", dataset="cifar10", threat_model=norm, eps=0.1, clean_accuracy=0.5,
                      robust_accuracy=0.3)


def _make_autoattack(norm):
    from rb_crossclass.compat import make_autoattack

    make_autoattack(torch.nn.Linear(2, 2), norm=norm, eps=0.1)


def _cli(norm):
    from rb_crossclass.cli import build_parser

    build_parser().parse_args(["score", "--model", "timm:resnet18", "--dataset", "cifar10", "--out", "x",
                               "--threat-model", norm])


def _train_config(norm):
    from rb_crossclass.train import config_from_dict

    config_from_dict({"eval": {"norm": norm}})


@pytest.mark.parametrize("component", [_pgd, _autoattack, _recipe, _card, _make_autoattack, _cli,
                                       _train_config])
def test_every_stage_accepts_exactly_the_norms_of_core(component):
    for norm in threat.NORMS:
        component(norm)
    for norm in ("L1", "linf", "corruptions"):
        with pytest.raises(RBCrossclassError):
            component(norm)


def test_defaults_and_the_protocol_step_rule():
    from rb_crossclass.attacks import PGDConfig

    assert threat.default_eps("Linf") == 8 / 255 and threat.default_eps("L2") == 0.5
    assert PGDConfig(eps=8 / 255).step == threat.pgd_step_size(8 / 255, "Linf") == pytest.approx(2 / 255)
    assert PGDConfig(eps=0.5, norm="L2").step == threat.pgd_step_size(0.5, "L2") == pytest.approx(0.0625)


def test_accuracy_fields_follow_robustbench():
    from rb_crossclass.compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo.enums import ThreatModel
    from robustbench.utils import ACC_FIELDS

    for tm in ThreatModel:
        expected = ACC_FIELDS[tm]
        expected = (expected,) if isinstance(expected, str) else tuple(expected)
        assert threat.ranking_fields(tm.value) == expected
        assert threat.accuracy_field(tm.value) == expected[-1]
    with pytest.raises(threat.ThreatModelError):
        threat.accuracy_field("L1")


# --------------------------------------------------------------------------- dataset facts
def test_known_dataset_facts():
    c10 = datasets.known_dataset("cifar10")
    assert c10.num_classes == 10 and c10.class_names[0] == "airplane" and c10.shape == (3, 32, 32)
    c100 = datasets.known_dataset("cifar100")
    assert c100.num_classes == 100 == len(set(c100.class_names))
    assert c100.class_names[:2] == ("apple", "aquarium_fish")
    assert datasets.known_dataset("mnist").shape == (1, 28, 28)
    imagenet = datasets.known_dataset("imagenet")
    assert imagenet.num_classes == 1000 and imagenet.class_names[0] == "tench"
    assert imagenet.shape == (3, 224, 224)
    assert datasets.known_dataset("svhn") is None
    assert datasets.normalization("mnist", 1) == ((0.1307,), (0.3081,))
    assert datasets.normalization("cifar10", 1) == ((0.5,), (0.5,))  # wrong channel count: generic
    with pytest.raises(datasets.DatasetFactsError):
        datasets.DatasetInfo("x", 3, ("a", "b"), (3, 8, 8), (0.5,) * 3, (0.5,) * 3)


def test_stages_take_dataset_facts_from_core():
    from rb_crossclass.models import create_model_source
    from rb_crossclass.models.zoo_catalog import load_entry  # noqa: F401 - shape defaults come from core

    model = create_model_source("timm:resnet18", dataset="cifar100", num_classes=100)
    mean, std = datasets.normalization("cifar100", 3)
    assert model.normalize.mean.flatten().tolist() == pytest.approx(list(mean))
    assert model.normalize.std.flatten().tolist() == pytest.approx(list(std))
    assert datasets.known_dataset("cifar10").card_name == "cifar10"
    assert datasets.generic_info("npz:/a/b/part.npz", 4, (3, 8, 8)).card_name == "part"


# --------------------------------------------------------------------------- runtime
def test_cpu_threads_honours_the_environment():
    assert runtime.cpu_threads({"OMP_NUM_THREADS": "3"}) == 3
    assert runtime.cpu_threads({"SLURM_CPUS_PER_TASK": "5"}) == 5
    assert runtime.cpu_threads({"OMP_NUM_THREADS": "3", "SLURM_CPUS_PER_TASK": "5"}) == 3
    import os

    assert runtime.cpu_threads({}) == len(os.sched_getaffinity(0))
    assert runtime.cpu_threads({"OMP_NUM_THREADS": "zero"}) == len(os.sched_getaffinity(0))


def test_every_command_sets_the_cpu_threads(monkeypatch, capsys):
    from rb_crossclass.cli import main

    before = torch.get_num_threads()
    try:
        for n in (1, 2):
            monkeypatch.setenv("OMP_NUM_THREADS", str(n))
            assert main(["card", "schema", "--path"]) == 0
            assert torch.get_num_threads() == n
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
        assert main(["card", "schema", "--path"]) == 0 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_resolve_device():
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_device(None).type in ("cpu", "cuda")
    for bad in ("banana", "mps", "cuda:99" if torch.cuda.is_available() else "cuda"):
        with pytest.raises(runtime.RuntimeSetupError):
            runtime.resolve_device(bad)


@pytest.mark.parametrize("flags, native", [
    ({"avx512f", "avx512_bf16"}, True),  # e.g. Zen 4/5, Cooper Lake
    ({"amx_bf16", "amx_tile"}, True),  # Sapphire Rapids
    ({"fp", "asimd", "bf16"}, True),  # aarch64 Armv8.6
    ({"avx512f", "avx2", "fma"}, False),  # AVX-512 without bf16: oneDNN would only emulate it
    (set(), False),  # flags unreadable
])
def test_bf16_on_cpu_needs_native_hardware(monkeypatch, flags, native):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
    reason = runtime.bf16_unsupported_reason("cpu")
    assert (reason is None) is native
    if native:
        runtime.require_bf16("cpu")
        return
    with pytest.raises(runtime.Bf16UnsupportedError, match="^--bf16: .*; run in float32") as err:
        runtime.require_bf16(torch.device("cpu"), "--bf16")
    assert isinstance(err.value, RBCrossclassError) and "\n" not in str(err.value)


def test_bf16_on_cuda_needs_ampere_or_later(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "CUDA is not available" in runtime.bf16_unsupported_reason("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "Tesla V100")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: (7, 0))
    assert "V100 has no native bf16" in runtime.bf16_unsupported_reason("cuda:0")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: (8, 0))
    assert runtime.bf16_unsupported_reason("cuda:0") is None
    assert "cpu and cuda devices only" in runtime.bf16_unsupported_reason("meta")


def test_channels_last_rule():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    assert runtime.prefers_channels_last(conv, "cpu") is torch.backends.mkldnn.is_available()
    assert runtime.prefers_channels_last(conv, "cuda")
    assert not runtime.prefers_channels_last(mlp, "cpu") and not runtime.prefers_channels_last(mlp, "cuda")


def test_one_process_ranks_are_identity_operations():
    r = runtime.Ranks()
    assert r.main and r.owns(0) and r.owns(7)
    t = torch.tensor([1.0, 2.0])
    assert r.sum_(t) is t and torch.equal(r.mean(t), t)
    assert r.gather({"a": 1}) == [{"a": 1}] and r.sum_ints({"a": 2}) == {"a": 2}
    two = runtime.Ranks(rank=1, world_size=2)
    assert [two.owns(b) for b in range(4)] == [False, True, False, True]
    with runtime.distributed("cpu") as (ranks, device):
        assert ranks == runtime.Ranks() and device == torch.device("cpu")


# --------------------------------------------------------------------------- names, json
@pytest.mark.parametrize("good", ["Carmon2019Unlabeled", "RBCrossclass2025CPU_PGD-AT", "a", "Peng2023Robust",
                                  "Rebuffi2021Fixing_70_16_cutmix_extra", "x.y+z"])
def test_model_ids_accept_robustbench_names(good):
    assert names.check_model_id(good) == good


@pytest.mark.parametrize("bad", ["", "..", ".", "../x", "/abs/x", "a/b", "x" * 129, "-x", ".hidden", "x.",
                                 "eval", "na me", "x\x00"])
def test_model_ids_refuse_paths_and_reserved_names(bad):
    with pytest.raises(names.ModelIdError):
        names.check_model_id(bad)


@pytest.mark.skipif(OFFICIAL_CARDS is None or not OFFICIAL_CARDS.is_dir(), reason="official cards absent")
def test_every_official_model_id_is_valid():
    for path in OFFICIAL_CARDS.rglob("*.json"):
        names.check_model_id(path.stem)


def test_model_id_from_source():
    assert names.model_id_from_source("timm:resnet18") == "resnet18"
    assert names.model_id_from_source("robustbench:Carmon2019Unlabeled") == "Carmon2019Unlabeled"
    assert names.model_id_from_source("py:tests/my model.py:build") == "build"
    assert names.model_id_from_source("py:/x/my_model.py") == "my_model"
    assert names.model_id_from_source("py:m:eval") == "eval_model"


def test_jsonable_turns_nan_and_tensors_into_json_values():
    value = {"a": math.nan, "b": [1.0, math.inf, torch.tensor([0.5, float("nan")])], "c": torch.tensor(2)}
    assert jsonable(value) == {"a": None, "b": [1.0, None, [0.5, None]], "c": 2}
    json.dumps(jsonable(value), allow_nan=False)


# --------------------------------------------------------------------------- one home per fact
# Each rule below scans the package's source (AST) for a fact spelled outside its home. A file owned
# by another part of issue 23 that still spells the fact is listed in the rule's PENDING set until
# it takes the fact from its home; a PENDING file that no longer spells it fails the test, so the
# list only shrinks.
PACKAGE = Path(datasets.__file__).resolve().parents[1]
_DATASET_NAMES = set(datasets.KNOWN_DATASETS)


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE.parent).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _spellers(rule) -> set[str]:
    return {name for name, tree in _modules() if any(rule(node) for node in ast.walk(tree))}


def _check_one_home(rule, home: str, pending: set[str]) -> None:
    found = _spellers(rule) - {home}
    assert found - pending == set(), f"spelled outside {home}: {sorted(found - pending)}"
    assert pending - found == set(), f"no longer spelled there, drop from PENDING: {sorted(pending - found)}"


def _names_two_datasets(node: ast.AST) -> bool:
    """A tuple/list/set of, or a dict keyed by, two or more dataset names."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items = node.elts
    elif isinstance(node, ast.Dict):
        items = [k for k in node.keys if k is not None]
    else:
        return False
    names = {e.value for e in items if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return len(names & _DATASET_NAMES) >= 2


DATASET_LISTS_PENDING: set[str] = set()


def test_every_list_of_dataset_names_derives_from_core_datasets():
    from rb_crossclass.compat import import_robustbench
    from rb_crossclass.data.loaders import FILE_DATASETS
    from rb_crossclass.leaderboard.render import title_of
    from rb_crossclass.sweep import run

    _check_one_home(_names_two_datasets, "rb_crossclass/core/datasets.py", DATASET_LISTS_PENDING)
    assert FILE_DATASETS is datasets.KNOWN_DATASETS and run.BOARD_DATASETS is datasets.BOARD_DATASETS
    import_robustbench()
    from robustbench.model_zoo.enums import BenchmarkDataset

    assert set(datasets.BOARD_DATASETS) == {d.value for d in BenchmarkDataset}
    assert set(datasets.DATASET_TITLES) == _DATASET_NAMES and title_of("cifar10") == "CIFAR-10"
    manifest = json.loads((resources.files("rb_crossclass") / "schemas" / "manifest.schema.json").read_text())
    assert set(manifest["properties"]["dataset"]["enum"]) == _DATASET_NAMES


def _spells_twenty_steps(node: ast.AST) -> bool:
    """``steps=20`` as a keyword, a field default, a dict entry, a parameter default or an
    argparse ``--steps`` default."""
    names = {"steps", "pgd_steps", "real_steps"}

    def twenty(v: ast.AST | None) -> bool:
        return isinstance(v, ast.Constant) and type(v.value) is int and v.value == 20

    if isinstance(node, ast.keyword):
        return node.arg in names and twenty(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.target.id in names and twenty(node.value)
    if isinstance(node, ast.Dict):
        return any(isinstance(k, ast.Constant) and k.value in names and twenty(v)
                   for k, v in zip(node.keys, node.values, strict=True))
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = node.args
        pos = a.posonlyargs + a.args
        pairs = list(zip(pos[len(pos) - len(a.defaults):], a.defaults, strict=True))
        pairs += list(zip(a.kwonlyargs, a.kw_defaults, strict=True))
        return any(arg.arg in names and twenty(d) for arg, d in pairs)
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        return node.args[0].value == "--steps" and any(k.arg == "default" and twenty(k.value)
                                                       for k in node.keywords)
    return False


PGD_STEPS_PENDING: set[str] = set()


def test_the_papers_pgd_steps_have_one_home():
    from rb_crossclass.attacks import PGDConfig

    assert threat.PAPER_PGD_STEPS == 20 == PGDConfig(eps=0.1).steps
    _check_one_home(_spells_twenty_steps, "rb_crossclass/core/threat.py", PGD_STEPS_PENDING)


def _counts_passes(node: ast.AST) -> bool:
    """An increment of a backward-pass count (``x.backward_samples += n``, ``d["backward_samples"] += n``)."""
    if not isinstance(node, ast.AugAssign):
        return False
    t = node.target
    if isinstance(t, ast.Attribute):
        return t.attr in ("backward_samples", "backward_calls", "backward_passes")
    return (isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant)
            and t.slice.value in ("backward_samples", "backward_passes"))


def test_pass_counting_has_one_home():
    _check_one_home(_counts_passes, "rb_crossclass/evaluate/passes.py", set())


def _downloads(node: ast.AST) -> bool:
    """A call of ``download_url_to_file`` / ``urlretrieve`` (a checkpoint download)."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    return name in ("download_url_to_file", "urlretrieve")


def test_checkpoint_downloads_have_one_home():
    _check_one_home(_downloads, "rb_crossclass/models/checkpoint.py", set())


# --------------------------------------------------------------------------- numbers for people
def test_one_number_formatter_with_the_boards_missing_mark():
    from rb_crossclass.core.formatting import MISSING, format_number, is_missing
    from rb_crossclass.leaderboard import render

    assert MISSING == render.MISSING == "—"  # the mark of the published boards
    assert format_number(None) == format_number(math.nan, ".3g") == MISSING
    assert format_number(0.53421, ".2f", scale=100) == "53.42" and format_number(10_000, ",") == "10,000"
    assert format_number(2.0, ".3f") == "2.000" and format_number(0, ".2f") == "0.00"
    assert is_missing(None) and is_missing(math.nan) and not is_missing(0.0)
    with pytest.raises(ValueError):
        format_number(1.5, "d")


_MISSING_MARKS = {"n/a", "—", "–", "-", "nan", "N/A", "NaN"}


def _writes_a_missing_mark(node: ast.AST) -> bool:
    """``<mark> if <value is None / isnan> else <number text>``, or ``if <value is None / isnan>:
    return <mark>``: a formatter of its own."""
    if isinstance(node, ast.If):
        branches = tuple(b.value for b in node.body if isinstance(b, ast.Return) and b.value is not None)
    elif isinstance(node, ast.IfExp):
        branches = (node.body, node.orelse)
    else:
        return False
    mark = any(isinstance(b, ast.Constant) and b.value in _MISSING_MARKS for b in branches)
    test = ast.unparse(node.test)
    return mark and ("None" in test or "isnan" in test)


MISSING_MARK_PENDING: set[str] = set()


def test_number_formatting_has_one_home():
    _check_one_home(_writes_a_missing_mark, "rb_crossclass/core/formatting.py", MISSING_MARK_PENDING)


# --------------------------------------------------------------------------- progress bars
def _imports_tqdm(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] == "tqdm" for a in node.names)
    return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tqdm"


def test_every_progress_bar_goes_through_the_one_factory():
    _check_one_home(_imports_tqdm, "rb_crossclass/core/progress.py", set())


def test_progress_bars_share_one_style(monkeypatch):
    from tqdm.auto import tqdm

    from rb_crossclass.core import progress

    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: True)
    bars = [progress.progress_bar(total=3, desc=d, unit="img", leave=False) for d in ("apgd-ce", "models")]
    try:
        assert all(isinstance(b, tqdm) and b.dynamic_ncols for b in bars)
        assert {len(b.desc) for b in bars} == {progress.DESC_WIDTH} and bars[0].desc.strip() == "apgd-ce"
        assert not bars[0].leave and bars[0].unit == "img"
    finally:
        for b in bars:
            b.close()
    assert progress.progress_bar(total=3, desc="x", disable=True).disable  # progress=False: nothing shown
    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: False)
    plain = progress.progress_bar(total=3, desc="apgd-ce", leave=False)
    assert isinstance(plain, progress.PlainProgress) and plain.desc == "apgd-ce"  # logs: no padding
