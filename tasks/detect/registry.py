"""Where detectors come from: reverie's sql/detect/detectors/ files, its Python detectors, and the project's detectors/ folder."""

from __future__ import annotations

from pathlib import Path

from reverie.config import CONFIG_FILE, SHARED_DETECT_SETTINGS, DetectSettings, unknown_field
from reverie.paths import SQL_DIR
from reverie.tasks.detect.detector import Detector, DetectorError
from reverie.tasks.detect.trend import TREND_CHANGE

BUILTIN_SQL_DIR = SQL_DIR / "detect" / "detectors"
PYTHON_DETECTORS = (TREND_CHANGE,)


def load_detectors(detectors_dir: str | Path | None = None, errors: list[str] | None = None) -> dict[str, Detector]:
    """Every detector by name: reverie's own, then a project's `*.sql` files in `detectors_dir` (if it exists).
    With `errors`, a project detector that cannot be used is noted there and left out; reverie's own always raise."""
    detectors: dict[str, Detector] = {}
    for detector in (*map(Detector.from_sql_file, sorted(BUILTIN_SQL_DIR.glob("*.sql"))), *PYTHON_DETECTORS):
        _add(detectors, detector)
    project_files = sorted(Path(detectors_dir).glob("*.sql")) if detectors_dir is not None else []
    for path in project_files:
        try:
            _add(detectors, Detector.from_sql_file(path))
        except DetectorError as exc:
            if errors is None:
                raise
            errors.append(str(exc))
    return detectors


def _add(detectors: dict[str, Detector], detector: Detector) -> None:
    known = detectors.get(detector.name)
    if known is not None:
        raise DetectorError(f"{detector.source}: name = {detector.name!r} is already the detector "
                            f"declared in {known.source}")
    detectors[detector.name] = detector


def unclaimed_settings(detectors: dict[str, Detector], settings: DetectSettings) -> list[str]:
    """A line for each value in [detect] that no detector reads: a misspelt name, or a detector's that is gone."""
    declared = sorted({*SHARED_DETECT_SETTINGS, *(own.name for d in detectors.values() for own in d.own_settings)})
    return [unknown_field(Path(CONFIG_FILE), "detect", name, declared) for name in settings.own if name not in declared]
