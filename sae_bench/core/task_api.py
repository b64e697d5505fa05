"""What a task plugin is: a named, versioned measurement of one SAE in one EvalContext.

A task declares its config as a dataclass (hashed into every result so that numbers measured
under different settings are never ranked together), what it needs from the context, and returns
`TaskOutput`. Tasks never see checkpoint formats or file layouts, and never write files: the
runner owns output.

A task also declares its metrics (`metrics`: one `MetricSpec` each, or one per family such as
`sae_accuracy_k*`): which way is better, the gate's default minimum effect, the headline order,
the unit and a one-line definition. The runner refuses a metric the task does not declare, every
record carries the specs of its metrics, and compare, gate, the terminal summary, the leaderboard
and docs/metrics.md read them from there (lm-eval's `higher_is_better`, kept with the metric).

Bump `version` whenever a change alters what a metric means or how it is computed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping, NamedTuple

from sae_bench.core.metric_directions import MetricRule
from sae_bench.records.provenance import portable

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.core.context import EvalContext
    from sae_bench.checkpoints.sae import SparseAutoencoder


class Metric(NamedTuple):
    """One number with its standard error. `value is None` only with a `reason` (never NaN)."""

    value: float | None
    stderr: float | None = None
    reason: str | None = None  # why value is None (e.g. "zero-ablation changes nothing")

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "stderr": self.stderr, **({"reason": self.reason} if self.reason else {})}

    @classmethod
    def null(cls, reason: str) -> "Metric":
        return cls(None, None, reason)


PRESENTATION = ("frontier", "depth")  # MetricSpec fields that say how the leaderboard shows a metric


@dataclass(frozen=True)
class MetricSpec:
    """What one metric (or a family of metrics, `name` a shell pattern) means and which way is better.

    direction: higher | lower | none (no better side: l0 is a design choice, l2_ratio's ideal is 1);
    min_effect: the gate's default minimum effect, absolute in `unit`, or a fraction of |baseline|
    when `relative`; headline: position among the headline columns (terminal summary, leaderboard
    page), None for "all metrics" only; ranking: priority as the leaderboard's ranking metric (the
    lowest present ranks the rows), None: never ranks; parts: the same metric over one part of the
    data, `name/<part>` (a category, an lm-eval task), is covered too (and never headline or ranks).
    frontier / depth: position of the metric's panel in the leaderboard's frontier plots (against L0)
    and depth plot (against the layer), None: no panel. These two are presentation: records do not
    carry them, the leaderboard reads them from the task as it is now (`leaderboard_build.views`)."""

    name: str
    direction: str
    definition: str
    unit: str = ""
    min_effect: float = 0.0
    relative: bool = False
    headline: int | None = None
    ranking: int | None = None
    parts: bool = False
    frontier: int | None = field(default=None, compare=False)
    depth: int | None = field(default=None, compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a MetricSpec needs a non-empty name")
        try:
            self.rule  # checks direction and min_effect
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{self.name}: {exc}") from None
        if self.ranking is not None and self.direction == "none":
            raise ValueError(f"{self.name}: a ranking metric needs a direction")
        if not self.definition or "\n" in self.definition:
            raise ValueError(f"{self.name}: the definition is one non-empty line")

    @property
    def rule(self) -> MetricRule:
        """The gate's and compare's default rule for this metric."""
        return MetricRule(self.direction, float(self.min_effect), self.relative)

    @property
    def higher_is_better(self) -> bool | None:
        return None if self.direction == "none" else self.direction == "higher"

    @property
    def is_pattern(self) -> bool:
        return any(c in self.name for c in "*?[")

    def matches(self, metric: str) -> bool:
        return (metric == self.name or (self.is_pattern and fnmatch.fnmatchcase(metric, self.name))
                or (self.parts and metric.startswith(self.name + "/")))

    def for_metric(self, metric: str) -> "MetricSpec":
        """This spec as it applies to `metric`: a part (`name/<part>`) is shown and ranked nowhere."""
        if self.parts and metric != self.name and metric.startswith(self.name + "/"):
            return dataclasses.replace(self, headline=None, ranking=None)
        return self

    def to_json(self) -> dict[str, Any]:
        """What records carry: the spec without its presentation (`PRESENTATION`)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in PRESENTATION}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "MetricSpec":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def find_spec(specs: Iterable[MetricSpec], metric: str) -> MetricSpec | None:
    """The spec of `metric`: an exact name first, then the first pattern or parts spec that matches
    (as it applies to `metric`); None if undeclared."""
    specs = list(specs)
    exact = next((s for s in specs if s.name == metric), None)
    found = exact or next((s for s in specs if s.matches(metric)), None)
    return None if found is None else found.for_metric(metric)


@dataclass
class TaskOutput:
    """What a task returns: metrics, counts of what they rest on, and JSON-able artifacts."""

    metrics: dict[str, Metric]
    counts: dict[str, int] = field(default_factory=dict)  # e.g. {"tokens": 4096, "sequences": 64}
    artifacts: dict[str, Any] = field(default_factory=dict)  # e.g. histograms, per-feature tables
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaskConfig:
    """Base config: subclasses add fields. Everything here goes into the config hash.

    Subclasses name fields that must be > 0 in `positive`, >= 0 in `non_negative`, in [0, 1] in
    `unit_interval` and < 0 in `negative` (a position counted from the end), so a bad option fails
    before any work (None always passes: it means "default"). Every numeric field must be in one of these (tests/test_fault_environment.py checks each
    registered task); NaN and infinities never pass. Fields naming a file or folder are listed in `paths`:
    a suite file's value for them is relative to the suite's folder, as its other paths are, and records
    store them as `provenance.portable` does (the config hash does not depend on the checkout's place)."""

    positive: ClassVar[tuple[str, ...]] = ()
    non_negative: ClassVar[tuple[str, ...]] = ()
    unit_interval: ClassVar[tuple[str, ...]] = ()
    negative: ClassVar[tuple[str, ...]] = ()
    paths: ClassVar[tuple[str, ...]] = ()

    def problems(self) -> list[str]:
        """Why these option values cannot work (empty when they can)."""
        found = []
        checks = [(n, lambda v: v <= 0, "must be > 0") for n in self.positive] \
            + [(n, lambda v: v < 0, "must be >= 0") for n in self.non_negative] \
            + [(n, lambda v: not 0 <= v <= 1, "must be in [0, 1]") for n in self.unit_interval] \
            + [(n, lambda v: v >= 0, "must be < 0 (counted from the end)") for n in self.negative]
        for name, bad, wanted in checks:
            value = getattr(self, name)
            values = value if isinstance(value, (tuple, list)) else (value,)
            numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if any(not math.isfinite(v) or bad(v) for v in numbers):
                found.append(f"{name}={value!r} {wanted}")
        return found

    def to_json(self) -> dict[str, Any]:
        """The options as records store and hash them: path options without an absolute local path."""
        values = dataclasses.asdict(self)
        return {name: portable(value) if name in self.paths and isinstance(value, str) else value
                for name, value in values.items()}

    def config_hash(self) -> str:
        blob = json.dumps(self.to_json(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class Task:
    """Subclass, set `name`, `version`, `Config`, `metrics`, implement `run`, and decorate with
    `@sae_bench.core.registry.register_task`."""

    name: ClassVar[str]
    version: ClassVar[str]
    Config: ClassVar[type[TaskConfig]] = TaskConfig
    # Every metric `run` may report, declared once (patterns for families); see MetricSpec.
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    description: ClassVar[str] = ""
    # What in this task is random and how it is seeded (recorded in every result); () = deterministic.
    random_sources: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: TaskConfig | None = None, **overrides: Any):
        base = config if config is not None else self.Config()
        self.config = dataclasses.replace(base, **overrides) if overrides else base

    @classmethod
    def metric_spec(cls, metric: str) -> MetricSpec | None:
        """The declared spec of `metric`, None when this task does not declare it."""
        return find_spec(cls.metrics, metric)

    def skip_reason(self, sae: "SparseAutoencoder", ctx: "EvalContext") -> str | None:
        """Return why this task does not apply (e.g. no feature map), or None to run it."""
        return None

    def check_inputs(self, resources: dict[str, Any]) -> None:
        """Validate the task's options and the input files they (or `resources`) name, raising
        InputError; the runner calls this for every task before any work, so that a bad file fails
        the run before the first record is written. Must stay cheap: no model, no SAE."""

    def run(self, sae: "SparseAutoencoder", ctx: "EvalContext") -> TaskOutput:  # pragma: no cover
        raise NotImplementedError

    # Optional two-step protocol for tasks whose expensive part can be shared by every checkpoint at
    # one hookpoint (spliced loss: the clean log-probs of each chunk). A task sets
    # `shares_work = True` and implements `prepare(sae, ctx) -> state` (the part that needs the SAE;
    # `state.nbytes` says what it holds) and `finish([state, ...], ctx) -> [TaskOutput, ...]`. The
    # runner prepares the checkpoints of a hookpoint one after another (one SAE in memory at a
    # time) and finishes them together, holding at most `max_pending_bytes` of states.
    shares_work: ClassVar[bool] = False
    max_pending_bytes: ClassVar[int] = 1 << 30
    # What the run must provide and plan for: the clean final states of the model (shared across the
    # sites of one model pass), and whether the task runs the model's suffix per checkpoint (the
    # sweep plan counts those forwards).
    needs_clean_final: ClassVar[bool] = False
    runs_suffix: ClassVar[bool] = False

    # What the task shows and offers besides its metrics, found through the registry (the leaderboard
    # and the CLI name no task): sections of each checkpoint page and per-checkpoint figures
    # (`sae_bench.leaderboard_build.views.PageSection` / `RowPlot`), and subcommands of `sae-bench`
    # ({command name: module with register(subparsers)}, as the modules of `sae_bench.cli`).
    page_sections: ClassVar[tuple[Any, ...]] = ()
    row_plots: ClassVar[tuple[Any, ...]] = ()
    commands: ClassVar[Mapping[str, str]] = {}
