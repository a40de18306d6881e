"""The package a user installs, not the checkout: the sdist and the wheel are built, the
wheel is installed (not editable) into a fresh virtualenv outside the checkout, and from an
empty directory the installed command prints its version, checks the shipped example
configuration and runs until `/readyz` answers and the dashboard with every asset it names
is served. An editable install (what `./dev` makes) hides a forgotten sub-package or data
file; this cannot.

Building and installing take ~40 s, mostly pip: `start_install_job` begins them in the
background when the session starts (conftest), so the rest of the suite overlaps them.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import aiohttp

from tests.helpers import cli_env

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("notify_core", "pipeline", "sio_server", "escalation", "towerco_notify")
_JOB: dict[str, object] = {}


def start_install_job() -> None:
    """Build the sdist and the wheel and install the wheel into a fresh venv, in the
    background; `_installed()` waits for it. Idempotent."""
    if _JOB:
        return
    work = Path(tempfile.mkdtemp(prefix="towerco-install-"))
    script = (
        f"set -e; {sys.executable} -m build -q --outdir {work}/dist {ROOT} >{work}/build.log 2>&1;"
        f" {sys.executable} -m venv {work}/venv;"
        f" {work}/venv/bin/pip install -q --disable-pip-version-check {work}/dist/*.whl"
        f" >{work}/pip.log 2>&1"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _JOB["work"] = work
    _JOB["proc"] = subprocess.Popen(["bash", "-c", script], env=env)


async def _installed() -> Path:
    start_install_job()
    proc = _JOB["proc"]
    work = _JOB["work"]
    assert isinstance(proc, subprocess.Popen) and isinstance(work, Path)
    await asyncio.to_thread(proc.wait)
    logs = "".join(p.read_text()[-3000:] for p in work.glob("*.log"))
    assert proc.returncode == 0, f"build or install failed:\n{logs}"
    return work


def _source_packages() -> set[str]:
    """Every directory of the source tree that holds Python modules, as a dotted name."""
    found = set()
    for top in TOP_LEVEL:
        for init in (ROOT / top).rglob("*.py"):
            rel = init.parent.relative_to(ROOT)
            if "__pycache__" not in rel.parts:
                found.add(".".join(rel.parts))
    return found


async def test_wheel_holds_every_package_and_data_file() -> None:
    work = await _installed()
    (wheel,) = (work / "dist").glob("*.whl")
    (sdist,) = (work / "dist").glob("*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    in_wheel = {".".join(Path(n).parent.parts) for n in names if n.endswith(".py")}
    missing = _source_packages() - in_wheel
    assert not missing, f"packages left out of the wheel: {sorted(missing)}"
    assert "escalation.receivers" in in_wheel  # the one that was forgotten before
    static = {Path(n).name for n in names if n.startswith("sio_server/static/")}
    assert static == {p.name for p in (ROOT / "sio_server" / "static").iterdir()}
    shipped = {Path(n).name for n in names if n.startswith("towerco_notify/example_config/")}
    assert shipped == {p.name for p in (ROOT / "config").glob("*.yaml")}
    assert sdist.stat().st_size > 0


async def test_installed_wheel_starts_from_an_empty_directory(tmp_path: Path) -> None:
    work = await _installed()
    venv_bin = work / "venv" / "bin"
    env = cli_env(PATH=f"{venv_bin}:/usr/bin:/bin", NOTIFY_HTTP_PORT="0")
    env.pop("PYTHONPATH", None)
    run = tmp_path / "empty"
    run.mkdir()

    async def cli(program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [str(venv_bin / program), *args],
            cwd=run,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    # the installed code, not the checkout's: nothing of ROOT on its path
    where = await cli("python", "-c", "import towerco_notify; print(towerco_notify.__file__)")
    assert str(work / "venv") in where.stdout, where

    version = await cli("towerco-notify", "--version")
    assert version.returncode == 0, version.stderr
    assert re.fullmatch(r"towerco-notify \d+\.\d+\.\d+\S*\n", version.stdout)
    as_module = await cli("python", "-m", "towerco_notify", "--version")
    assert as_module.stdout == version.stdout

    check = await cli("towerco-notify", "check-config")
    assert check.returncode == 0, check.stderr
    for name in ("thresholds.yaml", "escalation.yaml", "suppression.yaml"):
        assert f"example_config/{name}: OK" in check.stdout
    # a named directory that does not exist is an error, not a silent fallback
    wrong = await cli("towerco-notify", "check-config", "nowhere")
    assert wrong.returncode == 1 and "nowhere: not a directory" in wrong.stderr

    proc = await asyncio.create_subprocess_exec(
        str(venv_bin / "towerco-notify"),
        "run",
        cwd=run,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        seen: list[str] = []
        url = None
        while url is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 90)).decode()
            assert line, "daemon exited:\n" + "".join(seen)
            seen.append(line)
            if match := re.search(r"HTTP \+ Socket\.IO : (http://\S+)", line):
                url = match.group(1)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/readyz") as resp:
                assert resp.status == 200
            async with http.get(f"{url}/api/v1/thresholds") as resp:
                assert resp.status == 401  # the API is up and guarded
            async with http.get(f"{url}/") as resp:
                assert resp.status == 200
                page = await resp.text()
            assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
            assert len(assets) >= 5
            for asset in assets:
                async with http.get(f"{url}{asset}") as resp:
                    assert resp.status == 200, asset
                    assert len(await resp.read()) > 0, asset
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
