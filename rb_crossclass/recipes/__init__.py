"""Training recipes: one small class per recipe, composed with an inner attack, created by name.

``create_recipe("pgd_at", eps="8/255", steps=10)`` returns a :class:`Recipe`; its
``loss(model, x, y)`` runs the recipe's inner attack and returns a :class:`LossRecord` (the total
and its named parts). Names: ``standard``, ``pgd_at``, ``trades``, ``label_smoothing``, ``kd``,
``ema_self_distill``.

A new recipe is one module in this package with a class decorated ``@register_recipe("name")``:
the registry imports every module of the package the first time it is asked for a recipe
(:mod:`.registry`), so no list needs editing. A recipe defined elsewhere registers when its module
is imported.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "CriterionInputs",
    "InnerExamples",
    "LossRecord",
    "NoAttack",
    "PGDAttack",
    "Recipe",
    "RecipeError",
    "TradesAttack",
    "available_recipes",
    "build_inner",
    "create_recipe",
    "recipe_class",
    "register_recipe",
]

if TYPE_CHECKING:
    from .base import CriterionInputs, LossRecord, Recipe, RecipeError
    from .inner import InnerExamples, NoAttack, PGDAttack, TradesAttack, build_inner
    from .registry import available_recipes, create_recipe, recipe_class, register_recipe

lazy_exports(__name__)
