"""Reading tables of tweets and authors from CSV, JSONL or Parquet, and writing JSONL.

Users bring data in whatever shape they scraped it; these readers give every format the same
face (an iterator of ``dict`` rows) so the rest of the pipeline deals with one thing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from training.errors import InputError

FORMATS = (".csv", ".jsonl", ".json", ".parquet")


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a CSV (with header), JSONL (one object a line) or Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        csv.field_size_limit(1 << 24)
        with path.open(encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)
    elif suffix in (".jsonl", ".json"):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InputError(f"{path}:{number}: not a JSON object ({exc.msg})") from exc
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
    else:
        raise InputError(f"{path}: unknown format {suffix!r} (use one of {', '.join(FORMATS)})")


def columns_of(path: Path) -> list[str]:
    """The column names of a table, read without loading it (first row for JSONL)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet" and path.is_file():
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    for row in read_rows(path):
        return list(row)
    return []


def pick_column(path: Path, wanted: str | None, candidates: Iterable[str], what: str) -> str:
    """The column to use for ``what``: ``wanted`` if given, else the first candidate present."""
    names = columns_of(path)
    if not names:
        raise InputError(f"{path}: the table is empty")
    options = [wanted] if wanted else list(candidates)
    for option in options:
        if option in names:
            return option
    raise InputError(
        f"{path}: no {what} column (looked for {', '.join(options)}; the table has {', '.join(names)})"
    )


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSONL (UTF-8, one object a line); returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All rows of a JSONL file (an :class:`InputError` if it is missing or empty)."""
    rows = list(read_rows(Path(path)))
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows
