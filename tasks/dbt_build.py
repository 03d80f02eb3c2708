"""dbt build: the dbt project's models built (and tested) before a cycle reads them."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reverie.dbt_project import DbtError, DbtProject
from reverie.logs import run_logger


@task(name="dbt-build", cache_policy=NO_CACHE)
def build_dbt_project(project: DbtProject) -> dict:
    """Run `dbt build` in the project; a failure is returned in one line (the cycle then leaves unbuilt models as
    they were loaded), never raised."""
    logger = run_logger()
    try:
        built = project.run("build")
    except DbtError as exc:
        logger.warning("dbt build: %s", exc)
        return {"ok": False, "error": str(exc), "seconds": 0.0}
    if built.ok:
        logger.info("dbt build: done in %.1f s", built.seconds)
    else:
        logger.warning("dbt build failed in %.1f s: %s; the models it did not build are not read this cycle",
                       built.seconds, built.error)
    return {"ok": built.ok, "error": built.error, "seconds": built.seconds}
