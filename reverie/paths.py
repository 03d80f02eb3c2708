"""Where reverie's own files live: SQL, prompts, deployments (inside the installed package or the checkout); a path
as people read it."""

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PACKAGE_ROOT / "sql"
PROMPTS_DIR = PACKAGE_ROOT / "prompts"
DEPLOYMENTS_DIR = PACKAGE_ROOT / "deployments"


def shown(path: str | Path) -> str:
    """A path relative to the working folder when it lies inside it, else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
