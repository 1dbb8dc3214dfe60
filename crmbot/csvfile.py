"""CSV files for import: reading them (encodings, delimiters, quoted newlines), what an
import reports, rejected rows written back, and the progress bar."""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmbot.csvmap import Kind

FIELD_LIMIT = 16 * 1024 * 1024
SHOWN_REJECTS = 10
Progress = Callable[[int, int], None]


class CsvProblem(Exception):
    """The file can't be imported at all (encoding, no header, no usable column)."""


class Rejected(Exception):
    """One row can't be imported; the message is its reason."""


@dataclass
class ImportSummary:
    kind: Kind
    dry_run: bool = False
    imported: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    accounts_created: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    unknown_owners: set[str] = field(default_factory=set)
    rejects_path: Path | None = None
    first_rejects: list[tuple[int, str]] = field(default_factory=list)

    def line(self) -> str:
        """The summary line the spec promises."""
        return (
            f"imported {self.imported}, updated {self.updated}, "
            f"duplicates {self.duplicates}, rejected {self.rejected}"
        )


# --- reading the file ------------------------------------------------------------------------


def decode(path: Path, encoding: str | None = None) -> str:
    """The file's text: UTF-8 (with or without BOM) unless `encoding` names another."""
    data = path.read_bytes()
    if encoding:
        name = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        try:
            return data.decode(name)
        except LookupError:
            raise CsvProblem(f"{encoding!r} is not an encoding Python knows.") from None
        except UnicodeDecodeError as error:
            raise CsvProblem(f"{path} is not valid {encoding}: {error.reason}.") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CsvProblem(
            f"{path} is not UTF-8 (byte 0x{data[error.start]:02X} on line {line}). Save it as "
            "UTF-8 (in Excel: CSV UTF-8), or say what it is, e.g. --encoding latin-1, "
            "--encoding cp1252 or --encoding utf-16."
        ) from None


def read_rows(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank rows with the line each starts on (quoted newlines ok)."""
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t|", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvProblem("The file is empty.") from None
    except csv.Error as error:
        raise CsvProblem(f"The header row can't be read: {error}.") from None
    rows: list[tuple[int, list[str]]] = []
    start = reader.line_num + 1
    try:
        for row in reader:
            if "".join(row).strip():
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as error:
        raise CsvProblem(f"Line {start} can't be read as CSV: {error}.") from None
    return [h.strip() for h in header], rows


def write_rejects(path: Path, header: list[str], rejects: list[tuple[int, list[str], str]]) -> Path:
    """Beside the input: FILE.rejected.csv, the rejected rows with their line and reason."""
    target = path.with_name(f"{path.stem}.rejected.csv")
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason", *header])
        for line, cells, reason in rejects:
            writer.writerow([line, reason, *cells])
    return target


def terminal_progress(stream: Any = None) -> Progress | None:
    """A progress bar on stderr when it is a terminal; None otherwise."""
    out = stream or sys.stderr
    if not out.isatty():
        return None
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        rate = done / max(time.monotonic() - started, 1e-6)
        out.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} rows ({rate:,.0f}/s)"
        )
        if done >= total:
            out.write("\n")
        out.flush()

    return show
