"""RobustBench-compatible model cards with rb-crossclass's ``cross_class``, ``evaluation`` and
``training`` blocks.

A card is a plain ``dict`` (JSON object). Every RobustBench key keeps RobustBench's type
(percentages as strings such as ``"53.42"``, ``eps`` as ``"8/255"``, booleans, an int
``number_forward_passes``); our blocks hold real JSON numbers.

- :mod:`.schema` — the shipped JSON Schema and :func:`validate_card` (errors name file and field);
- :mod:`.files` — strict reading (:func:`load_card`) and atomic writing (:func:`write_card`);
- :mod:`.matrices` — K×K matrices inline up to 100 classes, packed above (:func:`matrix_array`);
- :mod:`.build` — cards from measurements (:func:`card_from_results`, :func:`cross_class_block`);
- :mod:`.table` — a card as a table a person reads (:func:`card_table`);
- :mod:`.official` — RobustBench's official cards, local or downloaded (:func:`official_base_card`).
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "BLOCKS",
    "CardDescription",
    "CardError",
    "OFFICIAL_URL",
    "OFFICIAL_URL_ENV",
    "ROBUSTBENCH_KEYS",
    "card_from_results",
    "card_problems",
    "card_schema",
    "card_table",
    "check_card_files",
    "cross_class_block",
    "dumps_card",
    "fetch_official_card",
    "format_percent",
    "iter_card_files",
    "load_card",
    "matrix_array",
    "merge_descriptive",
    "normalized_json",
    "official_base_card",
    "official_card_path",
    "parse_card",
    "protocol_block",
    "read_card_json",
    "schema_path",
    "validate_card",
    "write_card",
]

if TYPE_CHECKING:
    from .build import (
        BLOCKS,
        ROBUSTBENCH_KEYS,
        CardDescription,
        card_from_results,
        cross_class_block,
        format_percent,
        official_card_path,
        protocol_block,
    )
    from .check import check_card_files
    from .files import (
        dumps_card,
        iter_card_files,
        load_card,
        normalized_json,
        parse_card,
        read_card_json,
        write_card,
    )
    from .matrices import matrix_array
    from .official import (
        OFFICIAL_URL,
        OFFICIAL_URL_ENV,
        fetch_official_card,
        merge_descriptive,
        official_base_card,
    )
    from .schema import CardError, card_problems, card_schema, schema_path, validate_card
    from .table import card_table


lazy_exports(__name__)
