"""What a result records about how it was made: package versions and a timestamp."""

from __future__ import annotations

from datetime import datetime, timezone

RECORDED_PACKAGES = ("rb-crossclass", "torch", "torchvision", "timm", "robustbench", "pyautoattack")


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages a result depends on (missing ones left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def now_iso() -> str:
    """Current UTC time as ISO 8601 to the second (``2026-11-29T15:52:00+00:00``)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
