"""Where reverie's own files live: SQL, prompts, deployments, templates — inside the package, in the wheel and in a
checkout alike (there reverie/sql and the others are links to the folders at the top); a path as people read it."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).parent
SQL_DIR = PACKAGE_DIR / "sql"
PROMPTS_DIR = PACKAGE_DIR / "prompts"
DEPLOYMENTS_DIR = PACKAGE_DIR / "deployments"
TEMPLATES_DIR = PACKAGE_DIR / "templates"


def shown(path: str | Path) -> str:
    """A path relative to the working folder when it lies inside it, else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
