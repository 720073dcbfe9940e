"""Our model zoo: entries we trained, loadable as ``zoo:<Name>`` and through RobustBench.

The catalog (YAML entries checked against a schema, checksummed weights) and the ``zoo:`` model
source live with the other model sources in :mod:`rb_crossclass.models`; this package adds what
uses them: registration with timm so that ``robustbench.utils.load_model`` finds the entries
(:mod:`.timm_registry`), adding entries from training runs and evaluated cards
(:mod:`.authoring`), what ``rb-crossclass zoo`` prints (:mod:`.text`) and
exporting an entry for a RobustBench pull request
(:mod:`.robustbench_export`).
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "ExportError",
    "RobustBenchExport",
    "ZOO_ENV",
    "ZooChecksumError",
    "ZooEntry",
    "ZooError",
    "add_entry",
    "add_summary",
    "attach_summary",
    "list_rows",
    "list_table",
    "show_text",
    "attach_card",
    "card_numbers",
    "build_zoo_model",
    "checkpoint_file",
    "dump_yaml",
    "entry_schema",
    "export_robustbench",
    "find_entry",
    "list_entries",
    "load_entry",
    "read_entry_card",
    "register_timm",
    "zoo_root",
]

if TYPE_CHECKING:
    from ..models.sources import build_zoo_model
    from ..models.zoo_catalog import (
        ZOO_ENV,
        ZooChecksumError,
        ZooEntry,
        ZooError,
        checkpoint_file,
        entry_schema,
        find_entry,
        list_entries,
        load_entry,
        zoo_root,
    )
    from .authoring import add_entry, attach_card, card_numbers, dump_yaml, read_entry_card
    from .robustbench_export import ExportError, RobustBenchExport, export_robustbench
    from .text import add_summary, attach_summary, list_rows, list_table, show_text
    from .timm_registry import register_timm

lazy_exports(__name__)
