"""One registry pattern for recipes, model sources and sweep engines: a decorator fills the
registry, the package's modules are discovered without a central list, and a registered toy entry
becomes available where a user names it (a recipe in a training config, a source by its prefix,
an engine with --engine). Also the lazy exports every subpackage uses (rb_crossclass.core.lazy)."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

from rb_crossclass import cli
from rb_crossclass.core.lazy import import_submodules

from conftest import tiny_convnet

PACKAGES = ["attacks", "cards", "core", "crossclass", "data", "evaluate", "figures", "leaderboard", "models",
            "models.sources", "recipes", "reproduce", "sweep", "synthetic", "train", "zoo"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package):
    module = importlib.import_module(f"rb_crossclass.{package}")
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no attribute"):
        module.no_such_name  # noqa: B018


def test_an_exported_function_wins_over_its_same_named_submodule():
    """`reproduce.aggregate` is the function, even after `reproduce/aggregate.py` was imported
    by name (the import system binds the submodule on its package), as with eager imports."""
    code = ("import rb_crossclass.reproduce.aggregate, rb_crossclass.reproduce as r, inspect\n"
            "assert inspect.isfunction(r.aggregate), r.aggregate\n"
            "from rb_crossclass.reproduce import aggregate\nassert inspect.isfunction(aggregate)\n")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_modules_of_a_package_are_discovered(tmp_path, monkeypatch):
    package = tmp_path / "toy_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("FOUND = []\n")
    (package / "registry.py").write_text("")
    for name in ("alpha", "beta", "_private"):
        (package / f"{name}.py").write_text(f"from toy_plugins import FOUND\nFOUND.append({name!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = import_submodules("toy_plugins", exclude=("registry",))
    assert found == ["toy_plugins.alpha", "toy_plugins.beta"]
    assert sys.modules["toy_plugins"].FOUND == ["alpha", "beta"]
    for name in [m for m in sys.modules if m.startswith("toy_plugins")]:
        monkeypatch.delitem(sys.modules, name)


def test_one_registry_pattern_discovers_its_package_once_and_filters_by_prefix(tmp_path, monkeypatch):
    """core.registry.Registry: entries registered by decorators in the package's modules, which are
    imported on first use and only once; ``prefix`` keeps only the modules named with it (as the
    sweep's ``engine_*.py``); a missing name is ``None`` (each registry raises its own error)."""
    from rb_crossclass.core.registry import Registry

    package = tmp_path / "toy_registry"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from rb_crossclass.core.registry import Registry\n"
        "REG = Registry('toy_registry', prefix='engine_')\nIMPORTS = []\n")
    for name in ("engine_b", "engine_a", "helper"):
        (package / f"{name}.py").write_text(
            f"from toy_registry import IMPORTS, REG\nIMPORTS.append({name!r})\n"
            f"REG.register({name!r})(len)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import toy_registry

    assert toy_registry.REG.entries == {}  # nothing imported before first use
    assert list(toy_registry.REG.discover()) == ["engine_a", "engine_b"]
    assert toy_registry.REG.get("engine_a") is len and toy_registry.REG.get("helper") is None
    toy_registry.REG.discover()
    assert toy_registry.IMPORTS == ["engine_a", "engine_b"]  # once, and never the other module
    assert isinstance(toy_registry.REG, Registry)
    for name in [m for m in sys.modules if m.startswith("toy_registry")]:
        monkeypatch.delitem(sys.modules, name)


def test_a_registered_recipe_is_available_from_a_training_config(monkeypatch):
    from rb_crossclass.recipes import Recipe, available_recipes, create_recipe, register_recipe, registry
    from rb_crossclass.train import config_from_dict

    available_recipes()  # the package's own, discovered before the registry is copied
    # other tests see the real set
    monkeypatch.setattr(registry.RECIPES, "entries", dict(registry.RECIPES.entries))

    @register_recipe("toy_double_ce")
    class ToyDoubleCE(Recipe):
        """Twice the cross-entropy of clean inputs."""

        default_inner = "none"

        def criterion(self, logits, y, ctx):
            return {"double_ce": 2 * torch.nn.functional.cross_entropy(logits, y)}

    assert "toy_double_ce" in available_recipes()
    cfg = config_from_dict({"recipe": {"name": "toy_double_ce"}, "model": {"source": "timm:resnet18"}})
    assert cfg.recipe.name == "toy_double_ce"
    assert isinstance(create_recipe(cfg.recipe.name, **cfg.recipe.params), ToyDoubleCE)


def test_a_registered_source_is_available_by_its_prefix(monkeypatch):
    from rb_crossclass.models import create_model_source, register_source, wrap_model
    from rb_crossclass.models.sources import available_sources, registry

    available_sources()
    monkeypatch.setattr(registry.SOURCES, "entries", dict(registry.SOURCES.entries))

    @register_source("toy")
    def toy(rest, options):
        return wrap_model(tiny_convnet(options.num_classes), meta={"source": f"toy:{rest}"})

    assert {"py", "robustbench", "timm", "zoo", "toy"} <= set(available_sources())
    model = create_model_source("toy:anything")
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_a_registered_engine_is_available_with_the_engine_flag(monkeypatch, tmp_path):
    from rb_crossclass.sweep import engines, get_engine, register_engine

    engines.available_engines()
    monkeypatch.setattr(engines.ENGINE_REGISTRY, "entries", dict(engines.ENGINES))

    @register_engine("toy")
    def toy(jobs, settings, on_result, options):
        for job in jobs:
            on_result(engines.JobResult(job.name, "failed", reason="toy engine"))

    assert get_engine("toy") is toy
    args = cli.build_parser("sweep").parse_args(["sweep", "--manifest", "m.yaml", "--engine", "toy",
                                                 "--out", str(tmp_path / "out")])
    assert args.engine == "toy"
    with pytest.raises(engines.SweepError, match="unknown engine 'nope'"):
        get_engine("nope")


def test_deprecated_recipe_norm_parameter_warns():
    from rb_crossclass.recipes import build_inner, create_recipe

    with pytest.warns(DeprecationWarning, match="threat_model"):
        recipe = create_recipe("pgd_at", norm="L2", eps=0.5, step_size=0.1)
    assert recipe.inner.config.norm == "L2"
    with pytest.warns(DeprecationWarning, match="threat_model"):
        assert build_inner("pgd_at", norm="L2", eps=0.5).config.norm == "L2"


def test_exports_are_read_from_the_type_checking_block(tmp_path):
    from rb_crossclass.core.lazy import type_checking_imports

    init = tmp_path / "pkg.py"
    init.write_text("from typing import TYPE_CHECKING\nimport os\nif TYPE_CHECKING:\n"
                    "    from .a import X, y\n    from ..core.threat import NORMS\n")
    assert type_checking_imports(init) == {"X": ".a", "y": ".a", "NORMS": "..core.threat"}
    init.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import X as Z\n")
    with pytest.raises(ValueError, match="only 'from MODULE import NAME'"):
        type_checking_imports(init)
