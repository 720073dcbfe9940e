"""A small network trained on the cross-class Gaussian data with our recipes, scored per epoch.

The data ``x: [N, 2K]`` is encoded as images ``[N, 1, 1, 2K]`` in [0,1] (``0.5 + scale·x``) so
that the real pipeline runs unchanged: :func:`rb_crossclass.recipes.create_recipe` losses (their
own PGD inner attack, which clamps to [0,1]), :func:`rb_crossclass.scoring.score_model` (CAS of
PGD-20 examples) and FeatureClassifier checkpoints. The model undoes the encoding with a
:class:`~rb_crossclass.models.Normalize` first layer, so weights and ε live in the theory's units
(an image-space ε equals ``scale`` times the theory's ε).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..attacks import PGDConfig
from ..models import FeatureClassifier, Normalize, wrap_model
from .crossclass_gaussian import CrossClassGaussian

DEFAULT_SCALE = 0.1


def to_images(x: torch.Tensor, scale: float = DEFAULT_SCALE) -> torch.Tensor:
    """``x: [N, D]`` (theory units) → images ``[N, 1, 1, D]`` in [0,1] (clamped; with the default
    parameters fewer than 1 in 10⁶ values reach the clamp)."""
    return (0.5 + scale * x).clamp(0, 1).view(x.shape[0], 1, 1, x.shape[1])


class CrossClassNet(nn.Module):
    """``[B,1,1,2K]`` (normalized) → logits ``[B,K]``; linear features (``hidden=0``: the input
    itself) or one ReLU hidden layer. Exposes timm's ``forward_features`` / ``forward_head`` /
    ``get_classifier`` so :func:`wrap_model` reads features and head directly (no hooks)."""

    def __init__(self, dim: int, num_classes: int, hidden: int = 0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU()) if hidden > 0 else nn.Identity()
        self.fc = nn.Linear(hidden if hidden > 0 else dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return feats if pre_logits else self.fc(feats)

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_network(model: CrossClassGaussian, hidden: int = 0, scale: float = DEFAULT_SCALE,
                  seed: int = 0) -> FeatureClassifier:
    """Linear (``hidden=0``: features = the input itself) or one-hidden-layer ReLU MLP with a
    linear head, as a FeatureClassifier on ``[N,1,1,2K]`` images in [0,1]."""
    torch.manual_seed(seed)
    net = CrossClassNet(model.dim, model.num_classes, hidden)
    return wrap_model(net, normalize=Normalize([0.5], [scale]),
                      meta={"source": f"synthetic:crossclass_{'mlp' if hidden else 'linear'}",
                            "hidden": hidden, "scale": scale})


def cross_class_weight_ratio(model: FeatureClassifier, num_classes: int) -> float | None:
    """For a linear network: mean cross-class weight over mean exclusive weight, i.e. the
    theory's ``w2/w1`` read off ``W: [K, 2K]`` (``None`` for an MLP)."""
    if model.feature_dim != 2 * num_classes:
        return None
    w = model.head.weight.detach().double()
    eye = torch.eye(num_classes, dtype=w.dtype)
    w_e = (w[:, :num_classes] * eye).sum() / num_classes
    w_c = (w[:, num_classes:] * (1 - eye)).sum() / (num_classes * (num_classes - 1))
    return float(w_c / w_e) if w_e.abs() > 1e-12 else None


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    cas: float
    clean_cas: float
    robust_accuracy: float
    clean_accuracy: float
    weight_ratio: float | None


@dataclass
class NetworkRun:
    """One training run: recipe, ε (theory units), per-epoch scores, final ScoreResult dict."""

    recipe: str
    recipe_params: dict
    eps: float
    eps_image: float
    hidden: int
    epochs: int
    seed: int
    history: list[EpochRecord] = field(default_factory=list)
    final_score: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def recipe_params(name: str, eps_image: float, steps: int, alpha: float, epochs: int) -> dict:
    """Keyword parameters for ``create_recipe(name, ...)`` in image units."""
    # step 2.5ε/steps: the usual PGD-AT ratio (10 steps of ε/4)
    base = {"eps": eps_image, "step_size": 2.5 * eps_image / steps, "steps": steps}
    if name == "label_smoothing":
        return {**base, "alpha": alpha}
    if name == "ema_self_distill":
        return {**base, "decay": 0.95, "lam_max": 0.7, "ramp_start": 1, "ramp_end": max(2, epochs // 3)}
    if name == "trades":
        return {**base, "beta": 6.0}
    return base


def train_and_score(model_cfg: CrossClassGaussian, recipe: str, eps: float, *,
                    train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                    hidden: int = 0, epochs: int = 12, batch_size: int = 100, lr: float = 0.05,
                    weight_decay: float = 0.0, attack_steps: int = 5, score_steps: int = 10,
                    alpha: float = 0.4, scale: float = DEFAULT_SCALE, seed: int = 0,
                    score_every: int = 1,
                    on_epoch: Callable[[EpochRecord], None] | None = None,
                    ) -> tuple[FeatureClassifier, NetworkRun]:
    """Train a fresh network with ``create_recipe(recipe)`` at ε (theory units) on ``train``
    (``x: [N,2K]`` theory units, ``y: [N]``) and score CAS / accuracies on ``test`` every
    ``score_every`` epochs (PGD-``score_steps`` at the same ε, paper protocol step ε/4)."""
    from ..crossclass import ComputeSettings, score_model
    from ..recipes import create_recipe

    start = time.perf_counter()
    eps_image = eps * scale
    params = recipe_params(recipe, eps_image, attack_steps, alpha, epochs)
    rec = create_recipe(recipe, **params) if recipe != "standard" else create_recipe("standard")
    net = build_network(model_cfg, hidden, scale, seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    x_tr, y_tr = to_images(train[0], scale), train[1]
    x_te, y_te = to_images(test[0], scale), test[1]
    g = torch.Generator().manual_seed(seed)
    run = NetworkRun(recipe, rec.params(), eps, eps_image, hidden, epochs, seed)
    attack = PGDConfig(eps=eps_image, steps=score_steps) if eps > 0 else None
    for epoch in range(epochs):
        rec.set_epoch(epoch)
        net.train()
        order = torch.randperm(len(y_tr), generator=g)
        total, batches = 0.0, 0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = rec.loss(net, x_tr[idx], y_tr[idx]).total
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            rec.after_step(net)
            total += float(loss.detach())
            batches += 1
        if (epoch + 1) % score_every and epoch + 1 != epochs:
            continue
        score = score_model(net, x_te, y_te, attack=attack, compute=ComputeSettings(batch_size=1000),
                            seed=seed, progress=False)
        record = EpochRecord(epoch + 1, total / max(batches, 1), _finite(score.cas),
                             _finite(score.clean_cas), score.robust_accuracy, score.clean_accuracy,
                             cross_class_weight_ratio(net, model_cfg.num_classes))
        run.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if epoch + 1 == epochs:
            run.final_score = score.to_dict()
    net.eval()
    run.seconds = time.perf_counter() - start
    return net, run


def _finite(v: float) -> float:
    return float(v) if v is not None and math.isfinite(v) else float("nan")


@dataclass
class NetworkExperiment:
    """Every (recipe, ε) run on one shared train/test draw."""

    model: dict
    hidden: int
    n_train: int
    n_test: int
    seed: int
    runs: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)


def run_network_experiment(model_cfg: CrossClassGaussian, recipes: list[str], eps_values: list[float], *,
                           n_train: int = 4000, n_test: int = 1000, hidden: int = 0, epochs: int = 10,
                           seed: int = 0, score_every: int = 1, alpha: float = 0.4,
                           on_run: Callable[[NetworkRun], None] | None = None,
                           keep_models: bool = False) -> tuple[NetworkExperiment, dict]:
    """Train one network per (recipe, ε) from the same seed and data; returns the experiment and,
    when ``keep_models``, ``{(recipe, eps): FeatureClassifier}``."""
    g = torch.Generator().manual_seed(seed)
    train = model_cfg.sample(n_train, g)
    test = model_cfg.sample(n_test, g)
    runs, models = [], {}
    for eps in eps_values:
        for recipe in recipes:
            net, run = train_and_score(model_cfg, recipe, eps, train=train, test=test, hidden=hidden,
                                       epochs=epochs, seed=seed, score_every=score_every, alpha=alpha)
            runs.append(run.to_dict())
            if keep_models:
                models[(recipe, eps)] = net
            if on_run is not None:
                on_run(run)
    exp = NetworkExperiment(asdict(model_cfg), hidden, n_train, n_test, seed, runs)
    return exp, {"models": models, "test": test}
