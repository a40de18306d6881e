"""schemathesis (`--checks all`) against a running daemon and its own OpenAPI document, on a
bounded budget: no server error, no undocumented status or media type, no request valid by
the document refused and none invalid accepted (rules a JSON schema cannot say are listed,
with their reasons, in tests/schemathesis.toml)."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from sio_server.admission.auth import mint_token
from tests.conftest import TEST_SECRET, own_daemon
from tests.helpers import new_tenant

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
CONFIG = Path(__file__).parent / "schemathesis.toml"
REVOCATIONS = "POST /api/v1/admin/revocations"
pytestmark = pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis not installed")


@pytest_asyncio.fixture(scope="module")
async def fuzzed(broker: str, redis_url: str, tmp_path_factory: Any) -> AsyncIterator[str]:
    """A daemon of its own: no rate limit or connection cap in the way of the generated
    requests, and whatever they create (windows, silences, methods) kept apart."""
    async with own_daemon(
        broker,
        redis_url,
        tmp_path_factory.mktemp("fuzz-config"),
        http_rate="100000/s",
        http_burst=100_000,
        max_connections_per_user=100_000,
    ) as daemon:
        yield f"http://127.0.0.1:{daemon.http_port}"


async def schemathesis(base: str, token: str, *selection: str) -> tuple[int, str]:
    assert SCHEMATHESIS is not None
    proc = await asyncio.create_subprocess_exec(
        SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{base}/api/v1/openapi.json",
        "--checks",
        "all",
        "-H",
        f"Authorization: Bearer {token}",
        "--max-examples",
        "12",
        "--seed",
        "20261207",
        "--request-timeout",
        "1.0",  # a stream (SSE) answers and stays open: read what came in a second
        "--phases",
        "examples,coverage,fuzzing",
        "--no-color",
        *selection,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    return await proc.wait(), out.decode()


async def test_the_document_holds_against_the_running_daemon(fuzzed):
    tenant = new_tenant()
    token = mint_token(TEST_SECRET, tenant, "fuzzer", ["admin", "operator", "oncall"], None, 3600)
    # every operation but revoking tokens (the fuzzer would revoke its own), then that alone
    code, out = await schemathesis(fuzzed, token, "--exclude-name", REVOCATIONS)
    assert code == 0, out[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", out)
    tested = re.search(r"Tested: (\d+)", out)
    assert generated and int(generated.group(1)) > 1000, out[-3000:]  # it really ran
    assert generated.group(1) == generated.group(2)
    assert tested and int(tested.group(1)) >= 50, out[-3000:]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{fuzzed}/api/v1/incidents", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200  # the token held all along: answers were not all 401s
    code, out = await schemathesis(fuzzed, token, "--include-name", REVOCATIONS)
    assert code == 0, out[-6000:]
