"""Applying the safe fixes findings carry (`scalelint check --fix` / `--diff`).

A fix is a set of character edits to one file. Edits that overlap an earlier one are
dropped (the next run picks them up); the edited text must still parse as well as
before (Python with libcst, SQL with sqlglot) or the file is left alone. Files are
written atomically, keeping their encoding, byte-order mark and line endings.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from scalelint.findings import Edit, Finding

BOM = b"\xef\xbb\xbf"


@dataclass
class FixReport:
    diff: str = ""
    fixed_files: list[str] = field(default_factory=list)
    edits: int = 0
    skipped: list[str] = field(default_factory=list)  # why a file's fixes were not applied


def _edits_by_file(findings: Iterable[Finding]) -> dict[str, list[Edit]]:
    by_file: dict[str, list[Edit]] = {}
    for finding in findings:
        for edit in finding.fixes:
            by_file.setdefault(edit.path, []).append(edit)
    return by_file


def _placed(edits: list[Edit], text: str) -> list[Edit]:
    """Edits with offsets (line/column insertions located), stale ones and overlaps dropped."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    placed: list[Edit] = []
    for edit in set(edits):
        if edit.line:
            if edit.line > len(starts) - 1:
                continue
            offset = starts[edit.line - 1] + edit.column - 1
            edit = Edit(edit.path, offset, offset, edit.replacement, before=edit.before, after=edit.after)
        if text[max(0, edit.start - len(edit.before)) : edit.start] != edit.before:
            continue
        if text[edit.end : edit.end + len(edit.after)] != edit.after:
            continue
        placed.append(edit)
    chosen: list[Edit] = []
    for edit in sorted(placed, key=lambda e: (e.start, e.end, e.replacement)):
        if not chosen or (edit.start >= chosen[-1].end and edit.start != chosen[-1].start):
            chosen.append(edit)
    return chosen


def _still_parses(path: str, before: str, after: str, dialect: str) -> bool:
    if path.endswith(".sql"):
        from scalelint.facts.sql import analyse_file

        return analyse_file(after, dialect)[1] <= analyse_file(before, dialect)[1]
    if path.endswith(".py"):
        import libcst as cst

        try:
            cst.parse_module(after)
        except cst.ParserSyntaxError:
            return False
    return True


def _write(target: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".scalelint")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, target.stat().st_mode & 0o7777)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def apply_fixes(
    findings: Iterable[Finding], root: Path, dialect: str, write: bool, cwd: Path | None = None
) -> FixReport:
    """Apply (or, with `write=False`, only show) the fixes of `findings`; the diff names
    files relative to `cwd` (default: the project root), as the report does."""
    from scalelint.engine import decode_source

    report = FixReport()
    diffs: list[str] = []
    for path, edits in sorted(_edits_by_file(findings).items()):
        target = root / path
        try:
            data = target.read_bytes()
            language = "python" if path.endswith(".py") else "sql"
            before = decode_source(data, language)
        except (OSError, UnicodeDecodeError, SyntaxError) as error:
            report.skipped.append(f"{path}: cannot be read ({error})")
            continue
        edits = _placed(edits, before)
        after = before
        for edit in reversed(edits):
            after = after[: edit.start] + edit.replacement + after[edit.end :]
        if after == before:
            continue
        if not _still_parses(path, before, after, dialect):
            report.skipped.append(f"{path}: the fixed text would not parse; left unchanged")
            continue
        shown = Path(os.path.relpath(target, cwd)).as_posix() if cwd is not None else path
        diffs.extend(
            difflib.unified_diff(
                before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{shown}", f"b/{shown}"
            )
        )
        report.edits += len(edits)
        report.fixed_files.append(path)
        if write:
            encoding = "utf-8"
            if language == "python":
                import io
                import tokenize

                encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
                encoding = "utf-8" if encoding == "utf-8-sig" else encoding
            prefix = BOM if data.startswith(BOM) else b""
            _write(target, prefix + after.encode(encoding))
    report.diff = "".join(line if line.endswith("\n") else line + "\n" for line in diffs)
    return report
