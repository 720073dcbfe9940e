"""Our model zoo: entries we trained, loadable as ``zoo:<Name>`` and through RobustBench.

The catalog (YAML entries checked against a schema, checksummed weights) and the ``zoo:`` model
source live with the other model sources in :mod:`rb_crossclass.models`; this package adds what
uses them: registration with timm so that ``robustbench.utils.load_model`` finds the entries
(:mod:`.timm_registry`), adding entries from training runs and evaluated cards
(:mod:`.authoring`) and exporting an entry for a RobustBench pull request
(:mod:`.robustbench_export`).
"""

from ..core.lazy import lazy_exports

__all__ = [
    "ExportError",
    "RobustBenchExport",
    "ZOO_ENV",
    "ZooChecksumError",
    "ZooEntry",
    "ZooError",
    "add_entry",
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

lazy_exports(__name__, {
    "build_zoo_model": "..models.sources",
    "ZOO_ENV": "..models.zoo_catalog",
    "ZooChecksumError": "..models.zoo_catalog",
    "ZooEntry": "..models.zoo_catalog",
    "ZooError": "..models.zoo_catalog",
    "checkpoint_file": "..models.zoo_catalog",
    "entry_schema": "..models.zoo_catalog",
    "find_entry": "..models.zoo_catalog",
    "list_entries": "..models.zoo_catalog",
    "load_entry": "..models.zoo_catalog",
    "zoo_root": "..models.zoo_catalog",
    "add_entry": ".authoring",
    "attach_card": ".authoring",
    "card_numbers": ".authoring",
    "dump_yaml": ".authoring",
    "read_entry_card": ".authoring",
    "ExportError": ".robustbench_export",
    "RobustBenchExport": ".robustbench_export",
    "export_robustbench": ".robustbench_export",
    "register_timm": ".timm_registry",
})
