"""The one exception a source raises for a file-level problem.

A file-level problem stops the run, so its message must be enough for a finance user to fix the
export or the mapping without reading a traceback: which file, what is wrong, and what to do.
"""

from __future__ import annotations

from pathlib import Path


class SourceFileError(Exception):
    """A whole file (or its mapping) cannot be ingested."""

    def __init__(self, file: Path | str, problem: str, fix: str) -> None:
        self.file = str(file)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.file}: {problem}. Fix: {fix}")
