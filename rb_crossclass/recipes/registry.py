"""The recipe registry: recipes by name, composed with their inner attack from config values."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable

from ..core.registry import Registry
from .base import Recipe, RecipeError
from .inner import INNER_PARAMS, build_inner

RECIPES: Registry[type[Recipe]] = Registry(__package__, exclude=("base", "inner", "registry"))
"""Every recipe module of this package registers itself on import (discovered on first use)."""


def register_recipe(name: str) -> Callable[[type[Recipe]], type[Recipe]]:
    """Class decorator registering a recipe under ``name`` (used by :func:`create_recipe`)."""

    def deco(cls: type[Recipe]) -> type[Recipe]:
        cls.name = name
        return RECIPES.register(name)(cls)

    return deco


def available_recipes() -> list[str]:
    """Names of every registered recipe, sorted (the package's own and any registered since)."""
    return sorted(RECIPES.discover())


def recipe_class(name: str) -> type[Recipe]:
    """The class registered as ``name``; raises :class:`RecipeError` for an unknown name."""
    cls = RECIPES.get(name)
    if cls is None:
        raise RecipeError(f"unknown recipe {str(name)[:60]!r}; known: {available_recipes()}")
    return cls


def create_recipe(name: str, **params) -> Recipe:
    """Build the recipe registered as ``name`` from keyword ``params`` (its own parameters and those
    of its inner attack: ``inner``, ``eps``, ``step_size``, ``steps``, ``threat_model``, ``bn_mode``,
    ``random_start``, ``beta``; ``norm``, the old name of ``threat_model``, is read with a
    :class:`DeprecationWarning`). Unknown names and parameters raise :class:`RecipeError`."""
    if "norm" in params and "threat_model" not in params:
        warnings.warn("recipe parameter 'norm' is deprecated; use 'threat_model'", DeprecationWarning,
                      stacklevel=2)
        params["threat_model"] = params.pop("norm")
    cls = recipe_class(name)
    own = _init_params(cls)
    kinds = (cls.default_inner, *cls.inner_kinds)
    attack = set() if kinds == ("none",) else INNER_PARAMS - {"inner", "beta"}
    attack |= {"beta"} if "trades" in kinds else set()
    attack |= {"inner"} if cls.inner_kinds else set()
    unknown = sorted(set(params) - own - attack)
    if unknown:
        raise RecipeError(f"recipe {name!r} has no parameter(s) {unknown}; accepted: {sorted(own | attack)}")
    inner_params = {k: v for k, v in params.items() if k in attack}
    kind = inner_params.pop("inner", cls.default_inner)
    if kind not in kinds:
        raise RecipeError(f"recipe {name!r}: inner must be one of {list(kinds)}, got {kind!r}")
    inner = build_inner(kind, **inner_params)
    try:
        return cls(inner=inner, **{k: v for k, v in params.items() if k in own})
    except TypeError as err:
        raise RecipeError(f"recipe {name!r}: {err}") from err


def _init_params(cls: type) -> set[str]:
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in params if p.name not in ("self", "inner")
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
