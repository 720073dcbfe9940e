"""YAML read with bounds: what a file may expand to is checked before any Python value is built.

YAML's anchors and aliases (``&a`` / ``*a``) let a 1 KB file stand for gigabytes ("billion
laughs"): ``yaml.safe_load`` builds every copy. :func:`load_yaml` composes the node graph first
(aliases stay shared nodes there, nothing is copied), measures the document as it *would* expand
(nodes, scalar characters, nesting depth, cycles) with one memoised pass, and builds the value only
when every bound holds; otherwise :class:`YAMLLimitError` names the file and the bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import RBCrossclassError


class YAMLLimitError(RBCrossclassError, ValueError):
    """A YAML file that is not valid YAML or expands beyond what a file of its kind may hold."""


@dataclass(frozen=True)
class YAMLLimits:
    """Bounds on a YAML document as expanded (every alias counted as a full copy)."""

    max_text_chars: int = 4 * 1024 * 1024
    max_nodes: int = 200_000
    max_scalar_chars: int = 4 * 1024 * 1024
    max_string_chars: int = 1024 * 1024
    max_depth: int = 64


DEFAULT_LIMITS = YAMLLimits()


class _TooDeep(Exception):
    pass


def _loader(text: str, max_depth: int):
    """A ``yaml.SafeLoader`` over ``text`` that stops composing past ``max_depth`` levels (before
    the composer's own recursion or the scanner's slow deep flow collections are reached)."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):
            self.depth += 1
            try:
                if self.depth > max_depth + 1:  # + 1: the scalars at the deepest level
                    raise _TooDeep
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return BoundedLoader(text)


def _measure(root, limits: YAMLLimits, source: str) -> None:
    """Expanded node count, scalar characters and depth of the node graph under ``root``, with a
    memo per node (so an alias costs one lookup, not one copy) and an explicit stack (no recursion).
    Raises :class:`YAMLLimitError` at the first bound broken or on a cycle (a recursive alias)."""
    import yaml

    size: dict[int, tuple[int, int, int]] = {}  # id(node) -> (nodes, scalar chars, depth)
    on_path: set[int] = set()
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            kids = _children(node)
            nodes = 1 + sum(size[id(k)][0] for k in kids)
            chars = sum(size[id(k)][1] for k in kids)
            depth = 1 + max((size[id(k)][2] for k in kids), default=0)
            if nodes > limits.max_nodes:
                raise YAMLLimitError(f"{source}: expands to more than {limits.max_nodes} YAML nodes "
                                     "(anchors and aliases count once per use); refused")
            if chars > limits.max_scalar_chars:
                raise YAMLLimitError(f"{source}: expands to more than {limits.max_scalar_chars} characters "
                                     "of text (anchors and aliases count once per use); refused")
            size[key] = (nodes, chars, depth)
            continue
        if key in size:
            continue
        if key in on_path:
            raise YAMLLimitError(f"{source}: an alias refers to a node that contains it (a recursive "
                                 "YAML structure); refused")
        if len(on_path) >= limits.max_depth:
            raise YAMLLimitError(f"{source}: nested deeper than {limits.max_depth} levels; refused")
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > limits.max_string_chars:
                raise YAMLLimitError(f"{source}: a value of {len(node.value)} characters, more than "
                                     f"{limits.max_string_chars}; refused")
            size[key] = (1, len(node.value), 1)
            continue
        on_path.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)


def _children(node) -> list:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(text: str, source: str, limits: YAMLLimits = DEFAULT_LIMITS):
    """The value of YAML ``text`` (safe types only, as ``yaml.safe_load``), after checking that it
    expands within ``limits``. Raises :class:`YAMLLimitError` naming ``source`` when the text is not
    YAML or breaks a bound."""
    import yaml

    if len(text) > limits.max_text_chars:
        raise YAMLLimitError(f"{source}: {len(text)} characters, more than a YAML file here may hold "
                             f"({limits.max_text_chars}); refused")
    loader = _loader(text, limits.max_depth)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, limits, source)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise YAMLLimitError(f"{source} is not valid YAML: {' '.join(str(err).split())[:300]}") from err
    except (_TooDeep, RecursionError) as err:
        raise YAMLLimitError(f"{source}: nested deeper than {limits.max_depth} levels; refused") from err
    finally:
        loader.dispose()
