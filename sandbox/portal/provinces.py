"""Provincial-level units since 1 July 2025 and the 63 provinces merged into them.

Loaded once at start from `data/provinces.yml`; a bad file stops the portal from starting
(`ProvincesError` names the file and the problem). `Provinces.resolve` maps a name as a citizen
types it (old or new name, any case, with or without accents, an alias such as "tphcm") to the
current unit, matching like the catalogue's province notes (`catalogue.province_key`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import yaml
from pydantic import ValidationError, validator

from sandbox.portal.catalogue import CatalogueError, StrictModel, Text, province_key

DEFAULT_PROVINCES_FILE = Path(__file__).resolve().parent / "data" / "provinces.yml"

UNIT_COUNT = 34  # Nghị quyết 202/2025/QH15, in force since 1 July 2025
FORMER_COUNT = 63  # the provinces before the merger


class ProvincesError(CatalogueError):
    """The provinces file is missing, unreadable, off the schema or inconsistent."""


class FormerProvince(StrictModel):
    """A province as it was before 1 July 2025."""

    vi: str
    en: str
    aliases: List[str] = []

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.vi


class Unit(StrictModel):
    """A provincial-level unit in force, with the former provinces now part of it."""

    name: Text
    aliases: List[str] = []
    former: List[FormerProvince]

    @validator("former")
    def _not_empty(cls, value: List[FormerProvince]) -> List[FormerProvince]:  # noqa: N805
        if not value:
            raise ValueError("at least one former province (the unit itself) is required")
        return value


class ProvincesFile(StrictModel):
    source: str
    reviewed_on: dt.date
    sample_data: bool
    units: List[Unit]


@dataclass(frozen=True)
class Resolution:
    """What a name refers to: the current unit, and the merged-away province it named."""

    unit: Unit
    former: FormerProvince | None  # None: the input named the unit itself (or its namesake)

    @property
    def merged(self) -> bool:
        return self.former is not None


# Where a folded name points: (unit index, former index or None for the unit itself).
_Target = Tuple[int, int | None]


class Provinces:
    """The validated units and an index of every folded name and alias."""

    def __init__(self, data: ProvincesFile) -> None:
        """ValueError when the data is inconsistent (the message says what and where)."""
        self.source = data.source
        self.reviewed_on = data.reviewed_on
        self.sample_data = data.sample_data
        self.units: List[Unit] = list(data.units)
        self._index = _build_index(self.units)

    @property
    def former_count(self) -> int:
        return sum(len(unit.former) for unit in self.units)

    def resolve(self, name: str) -> Resolution | None:
        """The unit a citizen means by `name`, None when no unit or former province matches."""
        target = self._index.get(province_key(name))
        if target is None:
            return None
        unit_index, former_index = target
        unit = self.units[unit_index]
        return Resolution(unit, None if former_index is None else unit.former[former_index])


def _build_index(units: List[Unit]) -> Dict[str, _Target]:
    if len(units) != UNIT_COUNT:
        raise ValueError(f"expected {UNIT_COUNT} units, got {len(units)}")
    index: Dict[str, _Target] = {}
    owner_of_former: Dict[str, str] = {}

    def describe(target: _Target) -> str:
        unit_index, former_index = target
        unit = units[unit_index]
        if former_index is None:
            return repr(unit.name.vi)
        return f"{unit.former[former_index].vi!r} (now {unit.name.vi!r})"

    def add(name: str, target: _Target) -> None:
        key = province_key(name)
        if not key:
            raise ValueError(f"name or alias {name!r} has no letters or digits")
        existing = index.setdefault(key, target)
        if existing != target:
            raise ValueError(f"{name!r} points to both {describe(existing)} and {describe(target)}")

    for unit_index, unit in enumerate(units):
        own_key = province_key(unit.name.vi)
        namesakes = [f for f in unit.former if province_key(f.vi) == own_key]
        if len(namesakes) != 1:
            raise ValueError(
                f"unit {unit.name.vi!r} must list itself exactly once among its former "
                f"provinces, found {len(namesakes)} times"
            )
        for name in (unit.name.vi, unit.name.en, *unit.aliases):
            add(name, (unit_index, None))
        for former_index, former in enumerate(unit.former):
            key = province_key(former.vi)
            if key in owner_of_former:
                raise ValueError(
                    f"former province {former.vi!r} is listed under both "
                    f"{owner_of_former[key]!r} and {unit.name.vi!r}"
                )
            owner_of_former[key] = unit.name.vi
            target: _Target = (unit_index, None if key == own_key else former_index)
            for name in (former.vi, former.en, *former.aliases):
                add(name, target)
    if len(owner_of_former) != FORMER_COUNT:
        raise ValueError(
            f"expected {FORMER_COUNT} former provinces in all, got {len(owner_of_former)}"
        )
    return index


def load_provinces(path: Path = DEFAULT_PROVINCES_FILE) -> Provinces:
    """Read and validate the provinces file; ProvincesError (with the path) when it is bad."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProvincesError(f"{path}: cannot read YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProvincesError(f"{path}: expected a mapping at the top level")
    try:
        return Provinces(ProvincesFile.parse_obj(raw))
    except ValidationError as exc:
        raise ProvincesError(f"{path}: invalid provinces file:\n{exc}") from exc
    except ValueError as exc:
        raise ProvincesError(f"{path}: {exc}") from exc
