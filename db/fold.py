"""Accent- and case-folding for search, the same in Python, SQLite and PostgreSQL.

"educacion", "EDUCACIÓN" and "educación" must find the same tweets. PostgreSQL folds with
``translate`` and ``lower`` (no extension needed); SQLite's ``lower`` changes ASCII letters
only and it has no ``translate``, so each SQLite connection gets :func:`fold_text` as the SQL
function ``politico_fold`` (``db/engine.py``). The needle is folded by the same table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

#: Accented letters and what they fold to.
_GROUPS = {
    "a": "áàâäãÁÀÂÄÃ", "e": "éèêëÉÈÊË", "i": "íìîïÍÌÎÏ", "o": "óòôöõÓÒÔÖÕ", "u": "úùûüÚÙÛÜ",
    "n": "ñÑ", "c": "çÇ",
}
_FROM = "".join(_GROUPS.values())
_TO = "".join(plain * len(group) for plain, group in _GROUPS.items())
_TABLE = str.maketrans(_FROM, _TO)
SQLITE_FUNCTION = "politico_fold"


def fold_text(text: str | None) -> str:
    """``text`` as search compares it: accents folded, lower case."""
    return (text or "").translate(_TABLE).lower()


class fold(FunctionElement[str]):
    """``fold(column)``: the column as :func:`fold_text` would fold it."""

    type = String()
    inherit_cache = True
    name = "fold"


@compiles(fold)
def _fold_translate(element: fold, compiler: Any, **kw: Any) -> str:
    argument = compiler.process(element.clauses, **kw)
    return f"lower(translate(coalesce({argument}, ''), '{_FROM}', '{_TO}'))"


@compiles(fold, "sqlite")
def _fold_sqlite(element: fold, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_FUNCTION}({compiler.process(element.clauses, **kw)})"
