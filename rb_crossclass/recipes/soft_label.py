"""Soft-label adversarial training: ``label_smoothing``, ``kd`` (knowledge distillation from a
fixed teacher) and ``ema_self_distill`` (the teacher is an exponential moving average of the
student). Each is composed with the PGD-AT (default) or TRADES inner attack (``inner=``).

The criterion applies to the logits of the inputs the inner attack selects: PGD-AT → the
adversarial examples ``x'``; TRADES → the clean ``x`` (plus ``β·KL(f(x)‖f(x'))``). The teacher
sees the same input as the student's criterion (``teacher_input='same'``) or the clean image
(``'clean'``).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .base import CriterionInputs, Recipe, RecipeError, check_number
from .inner import unwrap
from .registry import register_recipe


def smoothed_cross_entropy(logits: torch.Tensor, y: torch.Tensor, alpha: float) -> torch.Tensor:
    """CE against ``(1−α)·onehot(y) + α/K``: ``logits [B,K]``, ``y [B]`` → scalar (batch mean)."""
    k = logits.shape[1]
    target = torch.full_like(logits, alpha / k, dtype=torch.float32)
    target.scatter_(1, y[:, None], 1 - alpha + alpha / k)
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


def distillation_parts(student: torch.Tensor, teacher: torch.Tensor, y: torch.Tensor,
                       temperature: float, lam: float) -> dict[str, torch.Tensor]:
    """``{"ce": (1−λ)·CE(s, y), "kd": λ·T²·KL(softmax(t/T) ‖ softmax(s/T))}`` (batch means) for
    logits ``s, t: [B,K]``; the T² keeps the soft term's gradient scale independent of T (Hinton
    et al., 2015). λ = 0 gives plain CE."""
    if lam == 0:
        return {"ce": F.cross_entropy(student.float(), y)}
    t = temperature
    p_teacher = F.softmax(teacher.float() / t, dim=1)
    log_ratio = torch.log(p_teacher.clamp_min(1e-12)) - F.log_softmax(student.float() / t, dim=1)
    soft = (p_teacher * log_ratio).sum(1).mean() * t * t
    return {"ce": (1 - lam) * F.cross_entropy(student.float(), y), "kd": lam * soft}


class SoftLabelRecipe(Recipe):
    """Base of the soft-label family: PGD-AT inner attack unless ``inner='trades'``."""

    default_inner = "pgd_at"
    inner_kinds = ("trades", "none")


@register_recipe("label_smoothing")
class LabelSmoothing(SoftLabelRecipe):
    """CE against labels smoothed by ``alpha`` (mass α spread evenly over the K classes)."""

    def __init__(self, inner, alpha: float = 0.1) -> None:
        super().__init__(inner)
        self.alpha = check_number("label_smoothing", "alpha", alpha, 0, 1, high_open=True)

    def criterion(self, logits, y, ctx):
        return {"smoothed_ce": smoothed_cross_entropy(logits, y, self.alpha)}

    def params(self) -> dict:
        return {**super().params(), "alpha": self.alpha}


class DistillationRecipe(SoftLabelRecipe):
    """Shared by ``kd`` and ``ema_self_distill``: the teacher runs in eval mode without gradients
    on ``ctx.inputs`` (``teacher_input='same'``) or ``ctx.clean``."""

    def __init__(self, inner, temperature: float = 2.0, teacher_input: str = "same") -> None:
        super().__init__(inner)
        self.temperature = check_number(self.name, "temperature", temperature, 0, float("inf"), low_open=True)
        if teacher_input not in ("same", "clean"):
            raise RecipeError(f"teacher_input must be 'same' or 'clean', got {teacher_input!r}")
        self.teacher_input = teacher_input

    def weight(self) -> float:
        """λ, the weight of the distillation term at the current epoch."""
        raise NotImplementedError  # pragma: no cover

    def teacher_for(self, student: nn.Module) -> nn.Module:
        """The teacher network (eval mode, no gradients)."""
        raise NotImplementedError  # pragma: no cover

    def criterion(self, logits, y, ctx: CriterionInputs):
        lam = self.weight()
        if lam == 0:
            return {"ce": F.cross_entropy(logits.float(), y)}
        x_teacher = ctx.clean if self.teacher_input == "clean" else ctx.inputs
        teacher = self.teacher_for(ctx.model)
        with torch.no_grad():
            t_logits = teacher(x_teacher).float()
        return distillation_parts(logits, t_logits, y, self.temperature, lam)

    def epoch_info(self) -> dict[str, float]:
        return {"lambda": self.weight()}

    def params(self) -> dict:
        return {**super().params(), "temperature": self.temperature, "teacher_input": self.teacher_input}


@register_recipe("kd")
class KnowledgeDistillation(DistillationRecipe):
    """Distillation from a fixed teacher: ``teacher`` is a model source string (``timm:...``,
    ``robustbench:...``, ``zoo:...``, ``py:...``) with ``teacher_checkpoint`` (built by
    :meth:`prepare` with the run's model options, overridden by ``teacher_options``), or an
    ``nn.Module``. ``lam`` weighs the distillation term against the hard-label CE."""

    def __init__(self, inner, teacher: str | nn.Module | None = None, teacher_checkpoint: str | None = None,
                 teacher_options: dict | None = None, lam: float = 0.5, temperature: float = 2.0,
                 teacher_input: str = "same") -> None:
        super().__init__(inner, temperature, teacher_input)
        if teacher is None:
            raise RecipeError("recipe 'kd' needs a teacher (a model source such as timm:resnet18 "
                              "with teacher_checkpoint, or an nn.Module)")
        self.lam = check_number("kd", "lam", lam, 0, 1)
        self.teacher_spec = teacher if isinstance(teacher, str) else type(teacher).__name__
        self.teacher_checkpoint = teacher_checkpoint
        self.teacher_options = dict(teacher_options or {})
        self._teacher = None if isinstance(teacher, str) else _freeze(teacher)

    def prepare(self, model_options) -> None:
        """Build a string teacher with the run's model options (dataset facts, sizes), overridden by
        ``teacher_options`` and ``teacher_checkpoint``."""
        if self._teacher is not None:
            return
        from dataclasses import fields, replace

        from ..models import SourceOptions, create_model_source

        known = {f.name for f in fields(SourceOptions)}
        unknown = sorted(set(self.teacher_options) - known)
        if unknown:
            raise RecipeError(f"kd teacher_options: unknown option(s) {unknown}; known: {sorted(known)}")
        m = model_options
        opts = SourceOptions(num_classes=m.num_classes, in_chans=m.in_chans, img_size=m.img_size,
                             dataset=m.dataset, threat_model=m.threat_model, model_dir=m.model_dir,
                             checkpoint=self.teacher_checkpoint)
        self._teacher = _freeze(create_model_source(self.teacher_spec, replace(opts, **self.teacher_options)))

    def weight(self) -> float:
        return self.lam

    def teacher_for(self, student):
        if self._teacher is None:
            raise RecipeError(f"kd: the teacher {self.teacher_spec!r} is built by "
                              "recipe.prepare(model_options) "
                              "before training (the training loop does it)")
        return self._teacher

    def params(self) -> dict:
        return {**super().params(), "lam": self.lam, "teacher": self.teacher_spec,
                "teacher_checkpoint": self.teacher_checkpoint}


def _freeze(m: nn.Module) -> nn.Module:
    m.eval()
    m.requires_grad_(False)
    return m


@register_recipe("ema_self_distill")
class EMASelfDistill(DistillationRecipe):
    """Distillation from an EMA of the student: after every optimizer step
    ``θ_T ← decay·θ_T + (1−decay)·θ_S`` (float parameters and buffers; integer buffers copied).
    λ ramps linearly from 0 at epoch ``ramp_start`` to ``lam_max`` at ``ramp_end`` (epochs count
    from 0, as passed to :meth:`set_epoch`). The teacher starts as a copy of the student."""

    def __init__(self, inner, decay: float = 0.999, lam_max: float = 0.5, ramp_start: int = 0,
                 ramp_end: int = 0, temperature: float = 2.0, teacher_input: str = "same") -> None:
        super().__init__(inner, temperature, teacher_input)
        self.decay = check_number("ema_self_distill", "decay", decay, 0, 1, high_open=True)
        self.lam_max = check_number("ema_self_distill", "lam_max", lam_max, 0, 1)
        self.ramp_start, self.ramp_end = int(ramp_start), int(ramp_end)
        self.teacher: nn.Module | None = None
        self.num_updates = 0
        self._pending: dict[str, torch.Tensor] | None = None

    def weight(self) -> float:
        if self.ramp_end <= self.ramp_start:
            return self.lam_max if self.epoch >= self.ramp_start else 0.0
        frac = (self.epoch - self.ramp_start) / (self.ramp_end - self.ramp_start)
        return self.lam_max * min(max(frac, 0.0), 1.0)

    def teacher_for(self, student: nn.Module) -> nn.Module:
        if self.teacher is None:
            self.teacher = copy.deepcopy(unwrap(student)).eval().requires_grad_(False)
            if self._pending is not None:
                self.teacher.load_state_dict(self._pending)
                self._pending = None
        return self.teacher

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        if self.teacher is None and self._pending is None:  # first step: the teacher is the student
            self.teacher_for(model)
            self.num_updates += 1
            return
        teacher = self.teacher_for(model)
        student = unwrap(model).state_dict()
        for name, t in teacher.state_dict().items():
            s = student[name].detach()
            if t.is_floating_point():
                t.mul_(self.decay).add_(s.to(t.dtype), alpha=1 - self.decay)
            else:
                t.copy_(s)
        self.num_updates += 1

    def params(self) -> dict:
        return {**super().params(), "decay": self.decay, "lam_max": self.lam_max,
                "ramp_start": self.ramp_start, "ramp_end": self.ramp_end}

    def state_dict(self) -> dict:
        state = {**super().state_dict(), "num_updates": self.num_updates}
        teacher = self.teacher.state_dict() if self.teacher is not None else self._pending
        if teacher is not None:  # a restored teacher not built yet is saved too
            state["teacher"] = {k: v.detach().cpu().clone() for k, v in teacher.items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.num_updates = int(state.get("num_updates", 0))
        if "teacher" in state:
            if self.teacher is not None:
                self.teacher.load_state_dict(state["teacher"])
            else:
                self._pending = dict(state["teacher"])
