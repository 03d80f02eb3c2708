"""Quality declarations: the suites and metric sanity checks of quality/*.yml, validated when they load."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reverie.config import yaml_files

MIN_VOLUME_HISTORY = 7  # batches a volume check needs before it judges one


class QualityError(ValueError):
    """A quality declaration that cannot be used; the message names the file and the field."""


class Check(BaseModel):
    """One check of a suite."""
    model_config = ConfigDict(extra="forbid")
    check: Literal["not_null", "unique", "in_set", "between", "expectation", "freshness", "volume", "time_window"]
    column: str | None = None
    values: list | None = None
    min: float | None = None
    max: float | None = None
    mostly: float = Field(1.0, gt=0, le=1)
    expectation: str | None = None
    kwargs: dict = Field(default_factory=dict)
    max_age_hours: float | None = Field(None, gt=0)
    live: bool = Field(True, description="freshness: compare the newest row with the clock (else with its batch's arrival)")
    min_ratio: float = Field(0.5, ge=0)
    max_ratio: float = Field(2.0, gt=0)
    history: int = Field(28, ge=MIN_VOLUME_HISTORY)
    max_ahead_hours: float | None = Field(None, ge=0)
    max_behind_days: float | None = Field(None, ge=0)
    severity: Literal["error", "warning"] = "error"

    @model_validator(mode="after")
    def _complete(self):
        needs = {"in_set": ["column", "values"], "between": ["column"], "not_null": ["column"], "unique": ["column"],
                 "expectation": ["expectation"], "freshness": ["max_age_hours"]}.get(self.check, [])
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{self.check} needs {' and '.join(missing)}")
        if self.check == "between" and self.min is None and self.max is None:
            raise ValueError("between needs min, max or both")
        if self.check == "time_window" and self.max_ahead_hours is None and self.max_behind_days is None:
            raise ValueError("time_window needs max_ahead_hours, max_behind_days or both")
        return self

    @property
    def label(self) -> str:
        """The check's name in results: the great-expectations class for an `expectation` check."""
        return self.expectation if self.check == "expectation" else self.check


class MetricCheck(BaseModel):
    """A sanity check of computed metric values."""
    model_config = ConfigDict(extra="forbid")
    check: Literal["between", "no_missing_periods"]
    metrics: list[str] = Field(min_length=1)
    min: float | None = None
    max: float | None = None
    severity: Literal["error", "warning"] = "error"

    @model_validator(mode="after")
    def _bounds(self):
        if self.check == "between" and self.min is None and self.max is None:
            raise ValueError("between needs min, max or both")
        return self


@dataclass
class QualityConfig:
    """Every suite (with the file that declares it) and every metric check of a project."""
    suites: dict[str, list[Check]] = field(default_factory=dict)
    suite_files: dict[str, str] = field(default_factory=dict)
    metric_checks: list[MetricCheck] = field(default_factory=list)

    def metric_checks_for(self, metric: str) -> list[MetricCheck]:
        """The sanity checks that name this metric."""
        return [c for c in self.metric_checks if metric in c.metrics]


def _problems(exc: ValidationError) -> str:
    return "; ".join((f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
                     for e in exc.errors())


def load_quality(folder: Path) -> QualityConfig:
    """Every suite and metric check declared in folder/*.yml; errors name the file, the suite and the field."""
    config = QualityConfig()
    for path, document in yaml_files(folder, QualityError):
        if not isinstance(document, dict) or set(document) - {"suites", "metrics"}:
            raise QualityError(f"{path}: expected top-level 'suites:' and/or 'metrics:'")
        suites = document.get("suites") or {}
        if not isinstance(suites, dict):
            raise QualityError(f"{path}: suites: expected a mapping of suite name to a list of checks")
        for name, checks in suites.items():
            if name in config.suites:
                raise QualityError(f"{path}: suite '{name}' is already declared in {config.suite_files[name]}")
            if not isinstance(checks, list):
                raise QualityError(f"{path}: suites.{name}: expected a list of checks")
            parsed = []
            for i, entry in enumerate(checks):
                try:
                    parsed.append(Check.model_validate(entry))
                except ValidationError as exc:
                    raise QualityError(f"{path}: suites.{name}[{i}]: {_problems(exc)}") from exc
            config.suites[name], config.suite_files[name] = parsed, str(path)
        for i, entry in enumerate(document.get("metrics") or []):
            try:
                config.metric_checks.append(MetricCheck.model_validate(entry))
            except ValidationError as exc:
                raise QualityError(f"{path}: metrics[{i}]: {_problems(exc)}") from exc
    return config
