"""Per-source column mappings: which export header feeds which Cadencia field.

Every company's export differs, so the mapping lives in YAML (`config/mappings/`), not in code.
A mapping is validated when it is loaded, before any file is read.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from config.settings import Settings
from tasks.sources.errors import SourceFileError
from tasks.sources.schemas import KINDS

SHIPPED_MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "config" / "mappings"


class ReadOptions(BaseModel):
    """How to read the file; `auto` sniffs it."""

    model_config = ConfigDict(extra="forbid")

    encoding: str = "auto"
    delimiter: str = "auto"
    number_format: Literal["auto", "1.234,56", "1,234.56"] = "auto"
    dayfirst: bool = True
    date_formats: list[str] = Field(default_factory=list)
    timezone: str | None = None  # zone of timestamps without an offset; default: settings
    sheet: str | int = 0

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(
                    f"unknown encoding {value!r}; use auto, utf-8, utf-8-sig, cp1252 or latin-1"
                ) from None
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        aliases = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
        value = aliases.get(value.lower() if len(value) > 1 else value, value)
        if value != "auto" and len(value) != 1:
            raise ValueError(
                f"delimiter must be one character (or auto, tab, comma, semicolon, pipe), "
                f"not {value!r}"
            )
        return value


class SourceMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["contacts", "open_items", "events", "renewals"]
    system: str
    file: str = Field(description="File name or glob inside the input folder")
    columns: dict[str, str]
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    options: ReadOptions = Field(default_factory=ReadOptions)
    origin: str = ""

    @model_validator(mode="after")
    def _fields_exist(self) -> SourceMapping:
        fields = KINDS[self.kind].fields
        unknown = sorted(set(self.columns) - set(fields))
        if unknown:
            raise ValueError(
                f"unknown field(s) {unknown} for kind {self.kind!r}; known: {sorted(fields)}"
            )
        missing = sorted(f for f, spec in fields.items() if spec.required and f not in self.columns)
        if missing:
            raise ValueError(f"required field(s) {missing} are not mapped to a column")
        bad_values = sorted(set(self.values) - set(self.columns))
        if bad_values:
            raise ValueError(f"'values' translates unmapped field(s) {bad_values}")
        return self

    def header_for(self, field: str) -> str:
        return self.columns.get(field, field)


def mapping_path(name: str, settings: Settings) -> Path:
    """A user mapping in `mappings_dir` overrides the shipped one of the same name."""
    candidates = []
    if settings.mappings_dir is not None:
        candidates.append(settings.mappings_dir / f"{name}.yaml")
    candidates.append(SHIPPED_MAPPINGS_DIR / f"{name}.yaml")
    for path in candidates:
        if path.is_file():
            return path
    raise SourceFileError(
        candidates[0],
        f"no column mapping named {name!r}",
        "create that YAML mapping (see docs/sources.md) or remove the name from CADENCIA_SOURCES",
    )


def load_mapping(name: str, settings: Settings) -> SourceMapping:
    path = mapping_path(name, settings)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SourceFileError(
            path, f"mapping is not valid YAML{where}", "fix the YAML syntax"
        ) from None
    if not isinstance(raw, dict):
        raise SourceFileError(path, "mapping is not a YAML mapping", "see docs/sources.md")
    try:
        mapping = SourceMapping(**raw, origin=str(path))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'mapping'}: "
            + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise SourceFileError(
            path, f"invalid mapping ({problems})", "see docs/sources.md"
        ) from None
    return mapping


def load_mappings(settings: Settings) -> list[SourceMapping]:
    return [load_mapping(name, settings) for name in settings.sources]
