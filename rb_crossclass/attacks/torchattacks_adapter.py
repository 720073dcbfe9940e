"""Adversarial examples from any attack of `torchattacks <https://github.com/Harry24k/adversarial-attacks-pytorch>`_.

A spec ``torchattacks:<Name>[:key=value,...]`` names an attack class of torchattacks and its
keyword arguments, e.g. ``torchattacks:PGD:eps=8/255,alpha=2/255,steps=20``,
``torchattacks:FGSM``, ``torchattacks:CW:c=1,steps=100``. Values are read as integers, floats,
fractions (``8/255``), ``true``/``false`` or ``none``, else kept as strings. The attack runs on the
model as given (torchattacks puts it in eval mode), on inputs in [0,1], batch by batch, with its
random draws (random starts) seeded from ``seed`` without touching the caller's global RNG.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from fractions import Fraction

import torch
from torch import nn

from ..core.errors import RBCrossclassError

PREFIX = "torchattacks:"


class TorchattacksError(RBCrossclassError, ValueError):
    """A torchattacks spec that names no attack or gives arguments it does not take."""


def is_torchattacks_spec(text: str) -> bool:
    return text.startswith(PREFIX)


def _value(text: str):
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if "/" in text:
        try:
            return float(Fraction(text.strip()))
        except (ValueError, ZeroDivisionError):
            pass
    return text.strip()


def check_attack_spec(text: str) -> str:
    """``text`` when it names an attack of the cross-class scorer: ``pgd`` (the paper's untargeted
    PGD), ``none`` (clean inputs only) or a well-formed torchattacks spec (the attack class itself
    is checked when built); else :class:`TorchattacksError`."""
    if text in ("pgd", "none"):
        return text
    if not is_torchattacks_spec(text):
        raise TorchattacksError(f"must be pgd, none or torchattacks:<Name>[:k=v,...], got {text[:60]!r}")
    parse_spec(text)
    return text


def parse_spec(spec: str) -> tuple[str, dict]:
    """``torchattacks:<Name>[:k=v,...]`` → ``(Name, kwargs)``; :class:`TorchattacksError` when the
    text is malformed (the attack itself is checked by :func:`build_attack`)."""
    if not is_torchattacks_spec(spec):
        raise TorchattacksError(f"not a torchattacks spec (torchattacks:<Name>[:k=v,...]): {spec[:80]!r}")
    name, _, args = spec[len(PREFIX):].partition(":")
    if not name.isidentifier():
        raise TorchattacksError(f"{spec[:80]!r}: {name[:40]!r} is not an attack name (e.g. torchattacks:PGD)")
    kwargs = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise TorchattacksError(f"{spec[:80]!r}: {item[:40]!r} is not key=value")
        kwargs[key.strip()] = _value(value)
    return name, kwargs


def attack_names() -> list[str]:
    """The attack classes torchattacks offers (``PGD``, ``FGSM``, ``CW``, ...)."""
    import torchattacks

    return sorted(n for n, c in vars(torchattacks).items()
                  if inspect.isclass(c) and issubclass(c, torchattacks.attack.Attack)
                  and c is not torchattacks.attack.Attack and n not in ("MultiAttack", "LGV"))


def build_attack(model: nn.Module, spec: str):
    """The torchattacks attack object of ``spec`` on ``model``."""
    import torchattacks

    name, kwargs = parse_spec(spec)
    cls = getattr(torchattacks, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, torchattacks.attack.Attack)):
        raise TorchattacksError(f"torchattacks has no attack {name!r}; attacks: {', '.join(attack_names())}")
    try:
        return cls(model, **kwargs)
    except TypeError as err:
        params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "model")]
        raise TorchattacksError(f"torchattacks.{name}: {err}; its arguments: {', '.join(params)}") from err


def describe(spec: str) -> dict:
    """How the examples were made, for results and cards: ``{"name": "torchattacks", "attack":
    Name, **kwargs, "torchattacks": version}``."""
    import torchattacks

    name, kwargs = parse_spec(spec)
    return {"name": "torchattacks", "attack": name, **kwargs, "torchattacks": torchattacks.__version__}


def torchattacks_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: str, *,
                          batch_size: int = 256, device: str | torch.device = "cpu", seed: int = 0,
                          progress: bool = True, ranks=None) -> torch.Tensor:
    """Adversarial examples ``[N,C,H,W]`` in [0,1] (on CPU) of ``x`` (in [0,1]) with labels
    ``y: [N]`` from the attack of ``spec``. The model must take [0,1] inputs and return logits.
    Under ``torchrun`` (``ranks``) each rank attacks its batches and the examples are gathered."""
    from ..core.progress import progress_bar

    device = torch.device(device)
    attack = build_attack(model, spec)
    out = torch.empty_like(x)
    starts: Sequence[int] = range(0, len(y), batch_size)
    mine = [s for b, s in enumerate(starts) if ranks is None or ranks.owns(b)]
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        with progress_bar(total=len(y), desc=f"{parse_spec(spec)[0]} (torchattacks)", unit="img", leave=False,
                  disable=not progress or (ranks is not None and not ranks.main)) as bar:
            for start in mine:
                xb = x[start:start + batch_size].to(device)
                yb = y[start:start + batch_size].to(device)
                adv = attack(xb, yb).detach()
                if adv.shape != xb.shape or not torch.isfinite(adv).all() or adv.min() < 0 or adv.max() > 1:
                    raise TorchattacksError(f"{spec}: the attack returned examples of shape "
                                            f"{tuple(adv.shape)} that are not finite images in [0,1]")
                out[start:start + len(yb)] = adv.to(out.device, out.dtype)
                bar.update(len(yb))
    if ranks is not None and ranks.world_size > 1:
        parts = ranks.gather({s: out[s:s + batch_size] for s in mine})
        for part in parts:
            for s, t in part.items():
                out[s:s + len(t)] = t
    return out
