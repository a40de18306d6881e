"""Every script the dashboard loads parses (`node --check`): a syntax error or a name
declared twice would leave the wall screen blank, and the browser tests would say only
that it never went live."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import node_bin

STATIC = Path(__file__).parent.parent / "sio_server" / "static"
SCRIPTS = sorted(p for p in STATIC.glob("*.js") if p.name != "socket.io.min.js")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_dashboards_scripts_parse(script: Path) -> None:
    found = subprocess.run(
        [node_bin(), "--check", str(script)], capture_output=True, text=True, timeout=30
    )
    assert found.returncode == 0, found.stderr


def test_every_script_of_the_page_is_checked() -> None:
    page = (STATIC / "index.html").read_text()
    named = {part.split('"')[0] for part in page.split('src="/static/')[1:]}
    assert {p.name for p in SCRIPTS} >= named - {"socket.io.min.js"}
