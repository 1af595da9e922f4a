"""What every table loader shares: the error type, an error collector that reads typed
keys, TOML reading, and the enum tables both hw/isa.toml and hw/csr.toml hold."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:          # Python 3.10 (a PYNQ image's): the same parser as tomli
    import tomli as tomllib

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
UPPER_IDENT = re.compile(r"[A-Z][A-Z0-9_]*\Z")

_MISSING = object()


class CodegenError(Exception):
    """A source table is malformed or inconsistent. The message names file and key."""


class Errors:
    """Collects every problem in one table (file) so one run reports them all."""

    def __init__(self, file: str = "") -> None:
        self.file = file
        self.msgs: list[str] = []

    def add(self, key: str, msg: str, file: str | None = None) -> None:
        self.msgs.append(f"{file or self.file}: {key}: {msg}")

    def raise_if_any(self) -> None:
        if self.msgs:
            raise CodegenError("\n".join(self.msgs))

    def get(self, key: str, table: dict, name: str, typ: type | tuple, default: Any = _MISSING) -> Any:
        """table[name] checked against typ (bool is never an int here); a missing or
        mistyped value is reported and reads as default (None when required)."""
        fallback = None if default is _MISSING else default
        if name not in table:
            if default is _MISSING:
                self.add(key, f"missing {name!r}")
            return fallback
        v = table[name]
        types = typ if isinstance(typ, tuple) else (typ,)
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            self.add(key, f"{name} = {v!r}: expected {' or '.join(t.__name__ for t in types)}")
            return fallback
        return v

    def unknown_keys(self, key: str, table: dict, allowed: tuple[str, ...]) -> None:
        for k in table:
            if k not in allowed:
                self.add(key, f"unknown key {k!r} (known: {', '.join(allowed)})")

    def unique_name(self, key: str, name: str, seen: set[str], what: str) -> None:
        """An entry's name: an upper-case identifier, not in seen (and now in it)."""
        if not UPPER_IDENT.match(name):
            self.add(key, "names are upper-case identifiers (A-Z, 0-9, _)")
        if name in seen:
            self.add(key, f"duplicate {what} name")
        seen.add(name)

    def tables(self, raw: dict, name: str, shape: str = "a table") -> list[tuple[str, str, dict]]:
        """The [name.KEY] tables as (key, KEY, table); an entry that is no table is reported
        as not being shape."""
        items = raw.get(name, {})
        if not isinstance(items, dict):
            self.add(name, "expected a table of tables")
            return []
        out = []
        for k, t in items.items():
            if isinstance(t, dict):
                out.append((f"{name}.{k}", k, t))
            else:
                self.add(f"{name}.{k}", f"expected {shape}")
        return out

    def entries(self, raw: dict, name: str) -> list[tuple[str, dict]]:
        """The [[name]] array of tables as (key, table): the key is `name NAME` for an
        entry with a string name, `name[i]` otherwise."""
        items = raw.get(name, [])
        if not isinstance(items, list):
            self.add(name, f"expected [[{name}]] entries")
            return []
        out = []
        for i, t in enumerate(items):
            if not isinstance(t, dict):
                self.add(f"{name}[{i}]", "expected a table")
                continue
            nm = t.get("name")
            out.append((f"{name} {nm}" if isinstance(nm, str) else f"{name}[{i}]", t))
        return out


def overlaps(lo: int, hi: int, other_lo: int, other_hi: int) -> bool:
    """Whether the closed ranges lo..hi and other_lo..other_hi share a point."""
    return lo <= other_hi and other_lo <= hi


def read_toml(root: Path, rel: str) -> tuple[dict, str]:
    """The parsed table and its text."""
    path = root / rel
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CodegenError(f"{rel}: cannot read: {e.strerror}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise CodegenError(f"{rel}: not valid TOML: {e}") from None


def header_notes(text: str) -> str:
    """The leading comment block of a TOML file, less its first paragraph (the
    'single source' banner): the conventions the table's entries rely on."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:]
        lines.append(body[1:] if body.startswith(" ") else body)
    paras: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            paras[-1].append(line.rstrip())
        elif paras[-1]:
            paras.append([])
    return "\n\n".join("\n".join(p) for p in paras[1:] if p)


def load_enum(err: Errors, en: str, et: Any) -> list[tuple[str, int, str]]:
    """An enum table, NAME = value or NAME = { value = v, doc = "..." }: [(NAME, value, doc)]."""
    key = f"enums.{en}"
    out: list[tuple[str, int, str]] = []
    if not isinstance(et, dict) or not et:
        err.add(key, "expected a non-empty table of NAME = value")
        return out
    if not IDENT.match(en):
        err.add(key, "enum names must be identifiers")
    seen: dict[int, str] = {}
    for vn, vv in et.items():
        vkey = f"{key}.{vn}"
        doc = ""
        if isinstance(vv, dict):
            err.unknown_keys(vkey, vv, ("value", "doc"))
            doc = err.get(vkey, vv, "doc", str, "")
            vv = err.get(vkey, vv, "value", int)
            if vv is None:
                continue
        if not isinstance(vv, int) or isinstance(vv, bool):
            err.add(vkey, f"{vv!r}: expected an integer value")
            continue
        if not IDENT.match(vn):
            err.add(vkey, "enum value names must be identifiers")
        if vv < 0:
            err.add(vkey, f"{vv}: enum values are unsigned")
            continue
        if vv in seen:
            err.add(vkey, f"value {vv} already used by {seen[vv]}")
        seen[vv] = vn
        out.append((vn, vv, doc))
    return out


def enum_width(values) -> int:
    """Bits the largest of values needs (at least 1)."""
    return max(1, max(values).bit_length())
