"""CSV and JSONL exports, streamed: CSV that opens well in a spreadsheet, JSONL for scripts.

The CSV starts with a UTF-8 byte-order mark (Excel otherwise reads it as ANSI and garbles
"ñ"). The formula guard, a leading apostrophe, goes only where a spreadsheet would run the cell:
one that starts with ``=``, or with ``+``, ``-`` or ``@`` and holds a call or a link to another
program (``(`` or ``|``: ``@SUM(1+1)``, ``-2+3+cmd|' /C calc'!A0``). A tweet that starts with a
mention ("@usuario hola") or a dash is text, not a formula, and stays exactly as written, as in
the JSONL. Leading blanks do not hide a formula (spreadsheets skip them).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from db.review_export import EXPORT_COLUMNS

BOM = "\ufeff"
_BLANKS = " \t\r\n"


def runs_as_formula(text: str) -> bool:
    """Whether a spreadsheet would evaluate ``text`` as a formula that calls something."""
    stripped = text.lstrip(_BLANKS)
    if stripped.startswith("="):
        return True
    return stripped.startswith(("+", "-", "@")) and ("(" in stripped or "|" in stripped)


def cell(value: Any) -> Any:
    """Dicts as JSON; text a spreadsheet would run gets a leading apostrophe."""
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and runs_as_formula(value):
        return "'" + value
    return value


async def csv_lines(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow(EXPORT_COLUMNS)
    async for row in rows:
        writer.writerow(cell(row[column]) for column in EXPORT_COLUMNS)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


async def jsonl_lines(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"
