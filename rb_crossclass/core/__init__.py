"""The ground floor: the shared vocabulary every other package uses and never re-states.

- :mod:`.errors` — the one error base class a user sees as a single line;
- :mod:`.threat` — threat models, ε (parse, RobustBench's string form, defaults, PGD step rule)
  and the card field that holds each threat model's accuracy;
- :mod:`.datasets` — dataset facts (names, classes, input shape, normalization statistics);
- :mod:`.runtime` — device choice, CPU threads, ``torchrun`` ranks and sharding;
- :mod:`.io` — atomic writes and folder swaps;
- :mod:`.provenance` — package versions and timestamps recorded in results.

Modules here import only the standard library, torch and numpy, never another package of
rb_crossclass. The names below are exported lazily (:mod:`.lazy`): importing this package, or
one of its torch-free modules (errors, threat, datasets, io, names, progress), imports no torch.
"""

from typing import TYPE_CHECKING

from .lazy import lazy_exports

__all__ = [
    "BOARD_DATASETS",
    "CORRUPTIONS",
    "DATASET_TITLES",
    "DatasetInfo",
    "KNOWN_DATASETS",
    "MISSING",
    "NORMS",
    "PAPER_PGD_STEPS",
    "RBCrossclassError",
    "ROBUSTBENCH_N_EXAMPLES",
    "THREAT_MODELS",
    "ThreatModelError",
    "accuracy_field",
    "atomic_write_json",
    "atomic_write_text",
    "check_attack_eps",
    "check_eps",
    "check_model_id",
    "check_norm",
    "check_output_dir",
    "check_threat_model",
    "dangerous_output_dir",
    "default_eps",
    "format_eps",
    "format_number",
    "import_submodules",
    "is_missing",
    "jsonable",
    "known_dataset",
    "lazy_exports",
    "parse_eps",
    "pgd_step_size",
    "progress_bar",
    "resolve_device",
    "set_cpu_threads",
    "text_table",
    "without_unsafe_advice",
    "ValueTextError",
    "check_dataset_label",
    "check_output_dir_path",
    "check_output_file_path",
    "parse_int",
    "parse_non_negative_float",
    "parse_percent",
    "parse_venue",
]

if TYPE_CHECKING:
    from .datasets import (
        BOARD_DATASETS,
        DATASET_TITLES,
        KNOWN_DATASETS,
        ROBUSTBENCH_N_EXAMPLES,
        DatasetInfo,
        known_dataset,
    )
    from .errors import RBCrossclassError, without_unsafe_advice
    from .formatting import MISSING, format_number, is_missing, text_table
    from .io import atomic_write_json, atomic_write_text, check_output_dir, dangerous_output_dir, jsonable
    from .lazy import import_submodules
    from .names import check_model_id
    from .progress import progress_bar
    from .runtime import resolve_device, set_cpu_threads
    from .threat import (
        CORRUPTIONS,
        NORMS,
        PAPER_PGD_STEPS,
        THREAT_MODELS,
        ThreatModelError,
        accuracy_field,
        check_attack_eps,
        check_eps,
        check_norm,
        check_threat_model,
        default_eps,
        format_eps,
        parse_eps,
        pgd_step_size,
    )
    from .values import (
        ValueTextError,
        check_dataset_label,
        check_output_dir_path,
        check_output_file_path,
        parse_int,
        parse_non_negative_float,
        parse_percent,
        parse_venue,
    )

lazy_exports(__name__)
