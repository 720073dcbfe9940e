"""The ground floor: the shared vocabulary every other package uses and never re-states.

- :mod:`.errors` — the one error base class a user sees as a single line;
- :mod:`.threat` — threat models, ε (parse, RobustBench's string form, defaults, PGD step rule)
  and the card field that holds each threat model's accuracy;
- :mod:`.datasets` — dataset facts (names, classes, input shape, normalization statistics);
- :mod:`.runtime` — device choice, CPU threads, ``torchrun`` ranks and sharding;
- :mod:`.io` — atomic writes and folder swaps;
- :mod:`.provenance` — package versions and timestamps recorded in results.

Modules here import only the standard library, torch and numpy, never another package of
rb_crossclass.
"""
