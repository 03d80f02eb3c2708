"""reverie as a user installs it: the wheel built from this checkout, installed with the locked dependencies into a
fresh virtual environment, holds nothing outside `reverie/` (no top-level `flows` or `tasks` to collide with another
package's), and from there runs the demo and a deployment served by `reverie serve` on a Prefect server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.helpers import processes
from tests.helpers.prefect_server import CHECKOUT, Server

UV = shutil.which("uv")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """The wheel, and the bin folder of a fresh virtual environment it is installed in (uv.lock's versions)."""
    folder = tmp_path_factory.mktemp("package")
    built = processes.run([UV, "build", "--wheel", "--out-dir", str(folder / "dist")], cwd=CHECKOUT, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (folder / "dist").glob("reverie-*.whl")
    requirements = folder / "requirements.txt"
    exported = processes.run([UV, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project",
                              "--output-file", str(requirements)], cwd=CHECKOUT, timeout=120)
    assert exported.returncode == 0, exported.stderr[-3000:]
    venv = folder / "venv"
    for command in ([UV, "venv", "--python", sys.executable, str(venv)],
                    [UV, "pip", "install", "--python", str(venv / "bin" / "python"), "-r", str(requirements),
                     str(wheel)]):
        done = processes.run(command, cwd=folder, timeout=1200)
        assert done.returncode == 0, done.stderr[-3000:]
    return wheel, venv / "bin"


@pytest.mark.heavy("builds and installs the wheel into a fresh environment")
def test_the_wheel_holds_nothing_outside_reveries_own_namespace(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"reverie", next(t for t in tops if t.endswith(".dist-info"))}, sorted(tops)
    for shipped in ("reverie/flows/sleep_cycle.py", "reverie/tasks/detect/__init__.py",
                    "reverie/sql/detect/detectors/unusual_change.sql", "reverie/prompts/analyst_embedded.md",
                    "reverie/deployments/prefect.yaml", "reverie/templates/brief.html.j2"):
        assert shipped in names, shipped


@pytest.mark.heavy("builds and installs the wheel into a fresh environment, then runs the demo from it")
def test_the_installed_package_runs_the_demo(installed, tmp_path):
    _, bin_dir = installed
    project = tmp_path / "demo"
    project.mkdir()
    done = processes.run([bin_dir / "reverie", "demo", "--days", "30", "--json"], cwd=project, timeout=1200,
                         env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path),
                              "PREFECT_HOME": str(tmp_path / "prefect")})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["status"] in ("completed", "degraded"), result
    assert Path(result["stages"]["deliver"]["brief"]).exists()
    # what ran was the installed copy, not this checkout
    where = processes.run([bin_dir / "python", "-c", "import reverie.flows.sleep_cycle as m; print(m.__file__)"],
                          cwd=tmp_path, timeout=120)
    assert where.stdout.strip().startswith(str(bin_dir.parent)), where.stdout


@pytest.mark.heavy("a Prefect server and `reverie serve` from the installed package")
def test_the_installed_package_serves_its_deployments_and_runs_the_nightly_cycle(installed, tmp_path):
    _, bin_dir = installed
    project = tmp_path / "served"
    project.mkdir()
    init = processes.run([bin_dir / "reverie", "init", "."], cwd=project, timeout=300)
    generated = processes.run([bin_dir / "reverie", "generate", "--days", "21"], cwd=project, timeout=300)
    assert init.returncode == 0 and generated.returncode == 0, init.stderr + generated.stderr
    server = Server(tmp_path / "prefect")
    log = tmp_path / "serve.log"
    try:
        with open(log, "w") as out, processes.started([bin_dir / "reverie", "serve"], cwd=project, env=server.env,
                                                      stdout=subprocess.DEVNULL, stderr=out) as serve:
            deadline = time.monotonic() + 300
            while True:
                try:
                    nightly = server.deployment("sleep-cycle", "nightly")
                    if nightly["parameters"]["project_dir"] == str(project):
                        break
                except httpx.HTTPStatusError:
                    pass
                assert serve.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            run = server.wait(server.run("sleep-cycle", "nightly"), timeout=1200)
            assert run["state_type"] == "COMPLETED", log.read_text()[-3000:]
    finally:
        server.stop()
    assert (project / ".reverie" / "briefs" / "latest.md").exists()
