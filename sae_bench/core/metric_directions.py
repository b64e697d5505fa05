"""Gate and compare rules: which way is better for a metric and how large a change matters.

A `MetricRule` says whether higher or lower values are better (or neither: `none`, never gated)
and the minimum effect below which a change is not a regression, either absolute (`0.01`) or
relative to the baseline value (`5%`). The defaults are not here: each task declares them with its
metrics (`sae_bench.core.task_api.MetricSpec`, carried by every record). This module parses the user's
overrides (`--rule`, rules files) and picks the rule for a metric: an override first (a key
`task.metric` beats a bare `metric`, exact names beat shell patterns such as `sae_accuracy_k*`),
else the metric's declared spec; a metric with neither is reported but never gated.

Rule text (command line, rules files): `direction[:min_effect]`, e.g. `lower:0.01`, `higher:2%`,
`none`. This module never reads records or computes metrics.
"""

from __future__ import annotations

import fnmatch
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from sae_bench.core.errors import InputError
from sae_bench.inputs.input_files import loads_json, read_text

DIRECTIONS = ("higher", "lower", "none")


@dataclass(frozen=True)
class MetricRule:
    """`direction`: higher | lower | none. `min_effect`: absolute, or a fraction of |baseline| when `relative`."""

    direction: str
    min_effect: float = 0.0
    relative: bool = False

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if not math.isfinite(self.min_effect) or self.min_effect < 0:
            raise ValueError(f"min_effect must be a finite number >= 0, got {self.min_effect!r}")

    def threshold(self, baseline_value: float) -> float:
        """The minimum effect in the metric's own units for this baseline value."""
        return self.min_effect * abs(baseline_value) if self.relative else self.min_effect

    def describe(self) -> str:
        if self.direction == "none":
            return "none"
        effect = f"{self.min_effect * 100:g}%" if self.relative else f"{self.min_effect:g}"
        return f"{self.direction}:{effect}"


def lookup(metric: str, rules: Mapping[str, MetricRule], task: str | None = None) -> MetricRule | None:
    """The rule for `metric` (of `task`) in `rules`: `task.metric` then `metric` exact, then patterns; None if absent."""
    names = ([f"{task}.{metric}"] if task else []) + [metric]
    for name in names:
        if name in rules:
            return rules[name]
    for name in names:
        for pattern, rule in rules.items():
            if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(name, pattern):
                return rule
    return None


def rule_for(metric: str, task: str, declared: MetricRule | None,
             overrides: Mapping[str, MetricRule] | None = None) -> MetricRule | None:
    """The user's override for `metric` if any, else its declared rule (None: report, never gate)."""
    return lookup(metric, overrides or {}, task=task) or declared


def parse_rule_text(text: str, source: str) -> MetricRule:
    """`lower:0.01`, `higher:2%`, `higher` (effect 0), `none` -> MetricRule; InputError naming `source`."""
    direction, _, effect = str(text).strip().partition(":")
    direction = direction.strip().lower()
    if direction not in DIRECTIONS:
        raise InputError(source, f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    effect = effect.strip()
    relative = effect.endswith("%")
    try:
        value = float(effect[:-1] if relative else effect) if effect else 0.0
    except ValueError:
        raise InputError(source, f"minimum effect {effect!r} is not a number (or a percentage like 5%)") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(source, f"minimum effect {effect!r} must be a finite number >= 0")
    return MetricRule(direction, value / 100 if relative else value, relative)


def parse_rule_arg(text: str) -> tuple[str, MetricRule]:
    """`metric=direction:min_effect` (the `--rule` option)."""
    name, sep, rule = text.partition("=")
    if not sep or not name.strip():
        raise InputError(f"--rule {text}", "expected METRIC=DIRECTION[:MIN_EFFECT], e.g. fvu=lower:0.02")
    return name.strip(), parse_rule_text(rule, f"--rule {text}")


def rule_from_value(value, source: str) -> MetricRule:
    """A MetricRule, rule text (`lower:0.01`) or an object {direction, min_effect} -> MetricRule."""
    if isinstance(value, MetricRule):
        return value
    if isinstance(value, str):
        return parse_rule_text(value, source)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"direction", "min_effect"})
        if unknown or "direction" not in value:
            raise InputError(source, "a rule object needs 'direction' and optionally 'min_effect' (number or 'N%')")
        effect = value.get("min_effect", 0)
        if isinstance(effect, bool) or not isinstance(effect, (int, float, str)):
            raise InputError(source, f"min_effect {effect!r} is not a number or a percentage string")
        return parse_rule_text(f"{value['direction']}:{effect}", source)
    raise InputError(source, "a rule is a string like 'lower:0.01' or an object {direction, min_effect}")


def load_rules_file(path: str | os.PathLike) -> dict[str, MetricRule]:
    """Rules from JSON or TOML: `{"fvu": "lower:0.02", "cossim": {"direction": "higher", "min_effect": 0.005}}`.

    A top-level `rules` table is also accepted (so a TOML file can use `[rules]`)."""
    path = Path(path)
    text = read_text(path, InputError, "rules file")
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(path, f"malformed TOML: {exc}") from None
    else:
        data = loads_json(text, path, InputError)
    if isinstance(data, dict) and isinstance(data.get("rules"), dict) and len(data) == 1:
        data = data["rules"]
    if not isinstance(data, dict):
        raise InputError(path, "a rules file is an object mapping metric names to rules")
    return {str(name): rule_from_value(value, f"{path} [{name}]") for name, value in data.items()}
