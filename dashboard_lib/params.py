"""Declared hyperparameters and dataset options: one declaration drives the Train form, the CLI and validation."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

ERR_UNKNOWN_PARAM = "unknown {what} '{name}' for {owner}; valid names: {valid}"
ERR_OUT_OF_RANGE = "{owner}: {label} = {value} is outside its range {range}"
ERR_NOT_A_NUMBER = "{owner}: {label} must be {kind}, got {value!r}"
ERR_NOT_A_CHOICE = "{owner}: {label} = {value!r} is not one of {choices}"


@dataclass(frozen=True)
class Param:
    """One hyperparameter or dataset option, as a paper or its public code defines it.

    kind is "float", "int", "bool" or "choice". low/high bound the value (inclusive unless
    low_open/high_open); None leaves that side open. log=True asks the form for a log-scale input.
    source says where the default comes from (paper section or public code).
    """

    name: str
    default: Any
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    help: str = ""
    symbol: str = ""
    source: str = ""
    choices: tuple = ()
    low_open: bool = False
    high_open: bool = False
    log: bool = False

    @property
    def label(self) -> str:
        return f"{self.symbol} ({self.name})" if self.symbol and self.symbol != self.name else self.name

    def range_text(self) -> str:
        if self.kind == "choice":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        if self.kind == "bool":
            return "{true, false}"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None or self.high_open else "]"
        return f"{left}{lo}, {hi}{right}"

    def coerce(self, value: Any, owner: str = "") -> Any:
        """Return value converted to this parameter's type and checked against its range (ValueError otherwise)."""
        if self.kind == "choice":
            for choice in self.choices:
                if value == choice or str(value) == str(choice):
                    return choice
            raise ValueError(ERR_NOT_A_CHOICE.format(owner=owner, label=self.label, value=value, choices=list(self.choices)))
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(ERR_NOT_A_NUMBER.format(owner=owner, label=self.label, kind="true or false", value=value))
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(ERR_NOT_A_NUMBER.format(owner=owner, label=self.label, kind="a number", value=value)) from None
        if self.kind == "int":
            if not math.isfinite(number) or number != int(number):
                raise ValueError(ERR_NOT_A_NUMBER.format(owner=owner, label=self.label, kind="a whole number", value=value))
            number = int(number)
        elif not math.isfinite(number):
            raise ValueError(ERR_NOT_A_NUMBER.format(owner=owner, label=self.label, kind="a finite number", value=value))
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if too_low or too_high:
            raise ValueError(ERR_OUT_OF_RANGE.format(owner=owner, label=self.label, value=value, range=self.range_text()))
        return number

    def describe(self) -> dict:
        """A JSON-ready description (CLI listings, the run record)."""
        return {
            "name": self.name, "symbol": self.symbol, "kind": self.kind, "default": self.default,
            "range": self.range_text(), "help": self.help, "source": self.source,
        }


def resolve_params(params: Iterable[Param], values: Mapping[str, Any] | None, owner: str, what: str = "hyperparameter") -> dict:
    """Defaults overlaid with values, each coerced and range-checked; unknown names are an error naming the valid ones."""
    params = list(params)
    by_name = {p.name: p for p in params}
    values = dict(values or {})
    for name in values:
        if name not in by_name:
            valid = ", ".join(by_name) or "(none)"
            raise ValueError(ERR_UNKNOWN_PARAM.format(what=what, name=name, owner=owner, valid=valid))
    return {p.name: p.coerce(values.get(p.name, p.default), owner) for p in params}


def parse_assignments(items: Iterable[str] | None) -> dict[str, str]:
    """Parse CLI NAME=VALUE strings into a dict (values stay strings; Param.coerce types them)."""
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out
