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

from .lazy import lazy_exports

lazy_exports(__name__, {
    "RBCrossclassError": ".errors",
    "without_unsafe_advice": ".errors",
    "CORRUPTIONS": ".threat",
    "NORMS": ".threat",
    "THREAT_MODELS": ".threat",
    "ThreatModelError": ".threat",
    "accuracy_field": ".threat",
    "check_attack_eps": ".threat",
    "check_eps": ".threat",
    "check_norm": ".threat",
    "check_threat_model": ".threat",
    "default_eps": ".threat",
    "format_eps": ".threat",
    "parse_eps": ".threat",
    "pgd_step_size": ".threat",
    "DatasetInfo": ".datasets",
    "KNOWN_DATASETS": ".datasets",
    "ROBUSTBENCH_N_EXAMPLES": ".datasets",
    "known_dataset": ".datasets",
    "atomic_write_json": ".io",
    "atomic_write_text": ".io",
    "check_output_dir": ".io",
    "dangerous_output_dir": ".io",
    "jsonable": ".io",
    "check_model_id": ".names",
    "progress_bar": ".progress",
    "set_cpu_threads": ".runtime",
    "import_submodules": ".lazy",
    "lazy_exports": ".lazy",
})
