"""Local mode (`make run`) keeps requests on SQLite: reading a request with a running SLA works."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from requests_factories import started

from atlas_devstack.pytest_plugin import create_topic


async def test_submitted_request_reads_back_on_sqlite(kafka_bootstrap: str, tmp_path: Path) -> None:
    tag = f"{os.getpid()}.{secrets.token_hex(3)}"
    topics = {}
    for name in ("prestations", "spaces", "commands"):
        topics[name] = f"test.requests-sqlite.{name}.{tag}"
        await create_topic(kafka_bootstrap, topics[name], 1)
        await create_topic(kafka_bootstrap, f"{topics[name]}.dlq", 1)
    url = f"sqlite+aiosqlite:///{tmp_path}/requests.db"
    async with started(url, tmp_path / "jwt.pem", kafka_bootstrap, topics) as rq:
        agent = rq.agent("2019123456")
        created = await rq.file(agent, channel="en_ligne")
        request_id = created["request_id"]
        one = await rq.call("GET", f"/v1/requests/{request_id}", agent)
        assert one["status"] == "soumise"
        assert one["atlas_id"] == "toulon"
        listed = await rq.call("GET", "/v1/requests", rq.staff("toulon"))
        assert request_id in [item["request_id"] for item in listed["items"]]
