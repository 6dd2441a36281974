"""A tiny evaluator of the KQL the alert rules and the guides use, over `traces` rows, to check them offline.

It knows exactly the operators our queries use, with Kusto's documented semantics for them, and refuses anything
else (an unknown stage or predicate is an error, so a query rewritten with new syntax fails the test until this
learns it honestly):

- `traces`: the rows given (`message`, `itemCount`).
- `where P`: P is atoms joined by `or` / `and` (`and` binds tighter; no parentheses). Atoms:
  `message startswith_cs "lit"` (case-sensitive prefix), `message startswith "lit"` (case-insensitive prefix),
  `tostring(f.X) == "lit"` (a missing field is the empty string), `tobool(f.X)`, and `timestamp > ago(...)`
  (true: every row given is recent).
- `extend f = parse_json(substring(message, indexof(message, " ") + 1))`: the JSON after the first space; text
  that is not JSON stays a string (parse_json's rule), on which every field is missing.
- `summarize N = sum(itemCount) [by filer = tostring(f.filer)]`, `summarize N = count()`, and `count`.

Stages that only shape what a person reads (`project`, `render`, `arg_max`, `bin` ...) are not evaluated:
`fields_used` lists the JSON fields a query reads anywhere, for the caller to check against the lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

PARSE_STAGE = 'extend f = parse_json(substring(message, indexof(message, " ") + 1))'
_STARTS = re.compile(r'^message startswith(_cs)? "([^"]*)"$')
_EQUALS = re.compile(r'^tostring\(f\.(\w+)\) == "([^"]*)"$')
_TOBOOL = re.compile(r"^tobool\(f\.(\w+)\)$")
_RECENT = re.compile(r"^timestamp > ago\(\d+[smhd]\)$")
_SUM_BY = re.compile(r"^summarize (\w+) = sum\(itemCount\)(?: by (\w+) = tostring\(f\.(\w+)\))?$")
_COUNT = re.compile(r"^summarize (\w+) = count\(\)$")
_FIELD = re.compile(r"\bf\.(\w+)")
_LITERAL = re.compile(r'"([^"]*)"')


class Unsupported(ValueError):
    """The query uses KQL this evaluator does not know."""


@dataclass
class Row:
    message: str
    item_count: int = 1
    f: Any = None  # set by the parse stage


def stages(query: str) -> list[str]:
    """The query's stages: `//` comments dropped, lines joined, split at the top-level pipes (our literals hold
    no `|`)."""
    text = " ".join(line.split("//", 1)[0].strip() for line in query.splitlines())
    return [" ".join(part.split()) for part in text.split("|") if part.strip()]


def fields_used(query: str) -> set[str]:
    return set(_FIELD.findall(query))


def literals(query: str) -> list[str]:
    return _LITERAL.findall(query)


def prefixes(query: str) -> list[str]:
    """The message prefixes the query's `startswith` atoms test."""
    out = []
    for stage in stages(query):
        if stage.startswith("where "):
            for atom in _atoms(stage[len("where ") :]):
                if m := _STARTS.match(atom):
                    out.append(m.group(2))
    return out


def _atoms(predicate: str) -> list[str]:
    return [a.strip() for term in predicate.split(" or ") for a in term.split(" and ")]


def _field(f: Any, name: str) -> Any:
    return f.get(name) if isinstance(f, dict) else None


def _atom(atom: str, row: Row) -> bool:
    if m := _STARTS.match(atom):
        prefix = m.group(2)
        return row.message.startswith(prefix) if m.group(1) else row.message.lower().startswith(prefix.lower())
    if m := _EQUALS.match(atom):
        value = _field(row.f, m.group(1))
        text = "" if value is None else (json.dumps(value) if isinstance(value, dict | list) else str(value))
        if isinstance(value, bool):
            text = "true" if value else "false"
        return text == m.group(2)
    if m := _TOBOOL.match(atom):
        return _field(row.f, m.group(1)) is True
    if _RECENT.match(atom):
        return True
    raise Unsupported(f"predicate {atom!r}")


def _where(predicate: str, row: Row) -> bool:
    return any(all(_atom(a.strip(), row) for a in term.split(" and ")) for term in predicate.split(" or "))


def _parse(message: str) -> Any:
    try:
        return json.loads(message[message.index(" ") + 1 :])
    except ValueError:  # no space (substring from 0: the whole text) or not JSON: parse_json keeps the string
        return message


def run(query: str, rows: Iterable[Row]) -> list[dict[str, Any]] | None:
    """The query's result over the rows, or None when it ends in stages that only shape the display (the rows
    reaching them were checked: every `where` and parse before them ran)."""
    parts = stages(query)
    if not parts or parts[0] != "traces":
        raise Unsupported(f"a query on something else than traces: {parts[:1]}")
    current = [Row(r.message, r.item_count) for r in rows]
    for stage in parts[1:]:
        if stage.startswith("where "):
            current = [r for r in current if _where(stage[len("where ") :], r)]
        elif stage == PARSE_STAGE:
            for r in current:
                r.f = _parse(r.message)
        elif m := _SUM_BY.match(stage):
            name, by, field = m.groups()
            if by is None:
                return [{name: sum(r.item_count for r in current)}]
            groups: dict[str, int] = {}
            for r in current:
                key = _field(r.f, field)
                groups[key if isinstance(key, str) else ""] = groups.get(key, 0) + r.item_count
            return [{by: k, name: v} for k, v in groups.items()]
        elif m := _COUNT.match(stage):
            return [{m.group(1): len(current)}]
        elif stage == "count":
            return [{"Count": len(current)}]
        elif stage.split(" ", 1)[0] in ("project", "render", "summarize", "order", "sort", "take", "top"):
            return None
        else:
            raise Unsupported(f"stage {stage!r}")
    return [{"message": r.message} for r in current]
