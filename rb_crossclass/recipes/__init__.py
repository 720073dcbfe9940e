"""Training recipes: one small class per recipe, composed with an inner attack, created by name.

``create_recipe("pgd_at", eps="8/255", steps=10)`` returns a :class:`Recipe`; its
``loss(model, x, y)`` runs the recipe's inner attack and returns a :class:`LossRecord` (the total
and its named parts). Names: ``standard``, ``pgd_at``, ``trades``, ``label_smoothing``, ``kd``,
``ema_self_distill``.
"""

# The recipe families register themselves on import (decorators only; nothing else runs).
from . import hard_label, soft_label  # noqa: F401
from .base import CriterionInputs, LossRecord, Recipe, RecipeError
from .inner import InnerExamples, NoAttack, PGDAttack, TradesAttack, build_inner
from .registry import available_recipes, create_recipe, recipe_class, register_recipe

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
