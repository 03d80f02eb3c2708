"""Where reverie's own files live: SQL, prompts, deployments (inside the installed package or the checkout)."""

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PACKAGE_ROOT / "sql"
PROMPTS_DIR = PACKAGE_ROOT / "prompts"
DEPLOYMENTS_DIR = PACKAGE_ROOT / "deployments"
