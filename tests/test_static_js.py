"""Every script the dashboard loads parses (`node --check`): a syntax error or a name
declared twice would leave the wall screen blank, and the browser tests would say only
that it never went live."""

from __future__ import annotations

import json
import re
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
    """The page's scripts and every module they import, followed from index.html."""
    page = (STATIC / "index.html").read_text()
    named = {part.split('"')[0] for part in page.split('src="/static/')[1:]}
    todo, seen = [n for n in named if n.endswith(".js")], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += re.findall(
            r'^import .* from "\./([\w.-]+\.js)";$', (STATIC / name).read_text(), re.M
        )
    assert "notify-client.js" in seen and "dashboard-list.js" in seen  # modules followed
    assert {p.name for p in SCRIPTS} >= seen - {"socket.io.min.js"}


def test_the_vendored_oidc_client_is_the_pinned_npm_release() -> None:
    """`oidc-client-ts.min.js` is npm's file (tests/node pins the version) with a license
    banner and without its source map line: upgrading means copying it again."""
    npm = Path(__file__).parent / "node" / "node_modules" / "oidc-client-ts"
    if not npm.exists():
        pytest.skip("tests/node packages not installed (./dev test installs them)")
    shipped = (STATIC / "oidc-client-ts.min.js").read_text().splitlines()
    original = (npm / "dist" / "browser" / "oidc-client-ts.min.js").read_text().splitlines()
    version = json.loads((npm / "package.json").read_text())["version"]
    assert shipped[0].startswith(f"/*! oidc-client-ts v{version} ")
    assert shipped[1:] == [line for line in original if not line.startswith("//# sourceMappingURL")]
