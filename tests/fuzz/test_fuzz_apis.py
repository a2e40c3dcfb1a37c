"""Every HTTP API fuzzed from its own /openapi.json with schemathesis (issue #22), as deployed.

The five services and the ops dashboard run as their own processes on the real broker and
PostgreSQL (`e2e_platform`, as `make run` starts them). For each, `st run` generates requests for
every operation in all of schemathesis' phases (examples, coverage, fuzzing, and stateful chains
through the links it infers: create, then read, update, transition) with every check it has,
plus the project's own two (`fuzz_hooks`): a 4xx carries the JSON error body, and a staff token
never receives another space's data. Requests are sent as each kind of caller in turn: ops, admin,
manager and staff of one space, agent, hr_system, a token of every unscoped role, and no, expired
or forged tokens.

After each service's run its database is checked for half-writes: every row that appeared during
the run, and every outbox event, must carry an identifier some accepted (2xx) exchange of the run
named; a row only a refused request could have written is a finding.

`ATLAS_FUZZ_EXAMPLES` (default 4) bounds the examples per operation and phase; `make fuzz` runs
the same with more. The seed is fixed, so a run is reproducible; `ATLAS_FUZZ_SEED` changes it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # the e2e_platform helper

from e2e_platform import DASHBOARD, REPO, SERVICES, Platform, start_platform

from atlas_devstack.pytest_plugin import DATABASE_PREFIX
from atlas_events.auth import LocalSigningKey, Role
from atlas_events.outbox import unpack_records

HERE = Path(__file__).resolve().parent
EXAMPLES = int(os.environ.get("ATLAS_FUZZ_EXAMPLES", "4"))
SEED = int(os.environ.get("ATLAS_FUZZ_SEED", "22"))
APIS = (*SERVICES, DASHBOARD)
# Services whose data belongs to spaces: a staff token must see only its own space there.
SCOPED = frozenset({"requests", "mobility", "notify", "vault", DASHBOARD})
# Operations that never end by themselves: tested below with a bounded read, not by `st run`.
STREAMS = {"notify": ("/v1/inbox/stream",)}
# Tables a service's consumers fill from other services' topics (or its own bookkeeping), which
# no HTTP request of the run writes directly; the half-write check skips them, with the reason.
BACKGROUND_TABLES: Mapping[str, Mapping[str, str]] = {
    "*": {
        "alembic_version": "migrations",
        "atlas_processed_events": "the consumers' idempotency records",
    },
}

# Events an accepted request emits for rows it does not name (a national switch announces every
# space's new state): event type -> the operation, which must have been accepted in the run.
FAN_OUT: Mapping[str, Mapping[str, str]] = {
    "catalog": {"fr.defense.atlas.catalog.space.crisis_mode_changed.v1": "PUT /v1/crisis"},
}


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    postgres_server: Any,
    _atlas_test_databases: list[str],
) -> Iterator[Platform]:
    def database(service: str) -> str:
        name = f"{DATABASE_PREFIX}fuzz_{os.getpid()}_{service}_{secrets.token_hex(3)}"
        postgres_server.create_database(name)
        _atlas_test_databases.append(name)
        return str(postgres_server.url(name))

    quiet = {"ATLAS_NOTIFY_QUIET_HOURS_START": "00:00", "ATLAS_NOTIFY_QUIET_HOURS_END": "00:00"}
    home = tmp_path_factory.mktemp("fuzz") / "atlas"
    with start_platform(
        home, kafka_bootstrap, database, extra_env={"notify": quiet}, dashboard=True
    ) as started:
        yield started


AGENT_ID = "0123456789"  # the agent token's `sub`


@pytest.fixture(scope="module")
def known(platform: Platform) -> dict[str, str]:
    """Values that exist on the platform, which the hooks put in half of the requests: the space
    of the staff and manager tokens (a real one, so its data exists), one of its communes, a
    prestation offered there, the agent token's own id."""
    with platform.client("fuzz-setup", Role.OPS) as ops:
        spaces = ops.get(platform.url("catalog", "/v1/spaces"), params={"limit": 5})
        spaces.raise_for_status()
        space = spaces.json()["items"][1]
        offered = ops.get(
            platform.url("catalog", "/v1/prestations"), params={"space": space["atlas_id"]}
        )
        offered.raise_for_status()
    return {
        "atlas_id": space["atlas_id"],
        "commune_insee": space["commune_insee"],
        "prestation_code": offered.json()["items"][0]["code"],
        "agent_id": AGENT_ID,
    }


def callers(platform: Platform, space: str, forger: LocalSigningKey) -> dict[str, str | None]:
    """The token of every kind of caller, good and bad (None: no Authorization header)."""
    key = platform.key
    return {
        "ops": key.issue("fuzz-ops", [Role.OPS]),
        "admin": key.issue("fuzz-admin", [Role.ADMIN]),
        "manager": key.issue("fuzz-manager", [Role.MANAGER], atlas_id=space),
        "staff": key.issue("fuzz-staff", [Role.STAFF], atlas_id=space),
        "agent": key.issue(AGENT_ID, [Role.AGENT]),
        "hr_system": key.issue("fuzz-hr", [Role.HR_SYSTEM]),
        "all": key.issue("fuzz-all", [Role.OPS, Role.ADMIN, Role.AGENT, Role.HR_SYSTEM]),
        "missing": None,
        "expired": key.issue("fuzz-ops", [Role.OPS], ttl=timedelta(seconds=-120)),
        "forged": forger.issue("fuzz-ops", [Role.OPS]),
    }


@pytest.mark.parametrize("api", APIS)
def test_api_fuzzed_from_its_openapi(
    platform: Platform, known: dict[str, str], api: str, tmp_path: Path
) -> None:
    forger = LocalSigningKey.load_or_create(tmp_path / "forged.pem")
    space = known["atlas_id"]
    tokens = callers(platform, space, forger)
    config = {
        "callers": tokens,
        "space": space,
        "scoped": api in SCOPED,
        "known": known,
    }
    (tmp_path / "callers.json").write_text(json.dumps(config))
    ledger = tmp_path / "ledger.jsonl"
    ledger.touch()
    database = _sync_url(platform.database_urls[api])
    before = _settled_row_keys(database)

    run = _st_run(platform.url(api, "/openapi.json"), api, tmp_path, ledger)
    exchanges = [json.loads(line) for line in ledger.read_text().splitlines()]
    operations = sorted({entry["operation"] for entry in exchanges})
    statuses = Counter(f"{entry['status'] // 100}xx" for entry in exchanges)
    print(
        f"\n{api}: {len(operations)} operations, {len(exchanges)} requests"
        f" ({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}), exit {run.returncode}"
    )
    assert run.returncode == 0, f"schemathesis found problems in {api}:\n{_findings(run.stdout)}"
    assert exchanges, f"{api}: schemathesis sent nothing"
    assert statuses["2xx"], f"{api}: no request was accepted, so nothing deep was reached"

    subs = {name: _sub(token) for name, token in tokens.items() if token}
    half_writes = _half_writes(api, database, before, exchanges, subs)
    assert not half_writes, f"{api}: rows no accepted request explains:\n" + "\n".join(half_writes)
    assert not platform.exited(), platform.logs()


@pytest.mark.parametrize(("api", "path"), [(a, p) for a, paths in STREAMS.items() for p in paths])
def test_streams_answer_every_caller_without_a_server_error(
    platform: Platform, known: dict[str, str], api: str, path: str, tmp_path: Path
) -> None:
    forger = LocalSigningKey.load_or_create(tmp_path / "forged.pem")
    answers = {}
    for name, token in callers(platform, known["atlas_id"], forger).items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with (
            httpx.Client(timeout=10, trust_env=False) as client,
            client.stream("GET", platform.url(api, path), headers=headers) as response,
        ):
            answers[name] = response.status_code
            if response.status_code >= 400:
                body = json.loads(response.read())
                assert isinstance(body.get("error"), str), (name, body)
            else:
                assert response.headers["content-type"].startswith("text/event-stream")
    assert all(code < 500 for code in answers.values()), answers
    assert {answers["missing"], answers["expired"], answers["forged"]} == {401}, answers
    assert answers["agent"] == 200, answers


def _st_run(
    schema_url: str, api: str, workdir: Path, ledger: Path
) -> subprocess.CompletedProcess[str]:
    excluded = [arg for path in STREAMS.get(api, ()) for arg in ("--exclude-path", path)]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "ATLAS_FUZZ_CALLERS": str(workdir / "callers.json"),
        "ATLAS_FUZZ_LEDGER": str(ledger),
        "NO_COLOR": "1",
    }
    command = [
        str(REPO / ".venv" / "bin" / "st"),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        schema_url,
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "15",
        *excluded,
    ]
    return subprocess.run(
        command, env=env, cwd=workdir, capture_output=True, text=True, timeout=600, check=False
    )


def _findings(output: str) -> str:
    """The failures section of `st run`'s report (the whole report if it has none)."""
    start = output.find("=== FAILURES")
    return output[start:] if start >= 0 else output[-20_000:]


# ---- half-writes ------------------------------------------------------------------------------


def _sync_url(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _tables(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """Every table of the public schema with its primary key columns."""
    rows = conn.execute(
        """
        SELECT c.relname, array_agg(a.attname ORDER BY a.attnum)
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
        WHERE i.indisprimary AND n.nspname = 'public'
        GROUP BY c.relname
        """
    ).fetchall()
    return {name: list(columns) for name, columns in rows}


def _settled_row_keys(
    database: str, quiet: float = 2.0, timeout: float = 30.0
) -> dict[str, set[tuple[Any, ...]]]:
    """The row keys once the service's consumers have caught up with what earlier runs sent it
    (no row added for `quiet` seconds), so that their late rows are not taken for this run's."""
    deadline = time.monotonic() + timeout
    keys = _row_keys(database)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = _row_keys(database)
        if again == keys:
            break
        keys = again
    return keys


def _row_keys(database: str) -> dict[str, set[tuple[Any, ...]]]:
    with psycopg.connect(database) as conn:
        return {
            table: {tuple(row) for row in conn.execute(_select(table, pk))}
            for table, pk in _tables(conn).items()
        }


def _select(table: str, columns: list[str] | None = None) -> sql.Composed:
    """SELECT the columns (all when None) of a table, names quoted as identifiers."""
    fields = sql.SQL(", ").join(map(sql.Identifier, columns)) if columns else sql.SQL("*")
    return sql.SQL("SELECT {} FROM {}").format(fields, sql.Identifier(table))


def _strings(value: Any) -> Iterator[str]:
    """Every string (and string of an integer) inside a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, bytes | memoryview):
        yield from _strings(bytes(value).decode("utf-8", "replace"))
    elif isinstance(value, str):
        yield value
        yield from value.split(":")  # composite ids, e.g. board:<match_id>:suggested:<sub>
        if value.startswith(("{", "[")):
            with contextlib.suppress(ValueError):
                yield from _strings(json.loads(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        yield str(value)


def _accepted_values(exchanges: list[dict[str, Any]], subs: Mapping[str, str]) -> set[str]:
    """Every value an accepted exchange named (request, answer, the caller's `sub`)."""
    values: set[str] = set()
    for entry in exchanges:
        if 200 <= entry["status"] < 300:
            for part in ("path", "path_parameters", "query", "body", "response", "location"):
                values.update(_strings(entry[part]))
            values.add(subs.get(entry["caller"], ""))
    return values


# A row named by any of its values (not its key) must share a distinctive one: "0" or "true"
# are in every run's accepted exchanges.
DISTINCTIVE = 6


def _half_writes(
    api: str,
    database: str,
    before: dict[str, set[tuple[Any, ...]]],
    exchanges: list[dict[str, Any]],
    subs: Mapping[str, str],
) -> list[str]:
    """The rows written during the run that no accepted exchange names."""
    accepted = _accepted_values(exchanges, subs)
    distinctive = {v for v in accepted if len(v) >= DISTINCTIVE}
    fanned_out = {
        event_type
        for event_type, operation in FAN_OUT.get(api, {}).items()
        if any(e["operation"] == operation and 200 <= e["status"] < 300 for e in exchanges)
    }
    skipped = {**BACKGROUND_TABLES["*"], **BACKGROUND_TABLES.get(api, {})}
    problems = []
    with psycopg.connect(database) as conn:
        for table, pk in _tables(conn).items():
            if table in skipped:
                continue
            cursor = conn.execute(_select(table))
            names = [column.name for column in cursor.description or ()]
            for row in cursor:
                record = dict(zip(names, row, strict=True))
                key = tuple(record[c] for c in pk)
                if key in before.get(table, set()):
                    continue
                for event in _events(table, record):  # a packed outbox row: each of its events
                    if event.get("event_type") in fanned_out:
                        continue
                    by_key, named = _names(table, key, event)
                    if not (accepted if by_key else distinctive).intersection(named):
                        problems.append(
                            f"{table} {dict(zip(pk, key, strict=True))}: {event!r:.300}"
                        )
    return problems


def _events(table: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The row itself, or for a packed outbox row the events it holds, each as a row."""
    if table != "atlas_outbox" or record.get("batch") is None:
        return [record]
    return [
        {"event_type": dict(headers)["ce_type"].decode(), "key": key, "value": value}
        for _, key, value, headers in unpack_records(bytes(record["batch"]))
    ]


def _sub(token: str) -> str:
    """The `sub` claim of a JWT (read, not verified: the test issued it)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def _names(table: str, key: tuple[Any, ...], record: dict[str, Any]) -> tuple[bool, list[str]]:
    """What identifies a row, and whether it is its key: a row its textual key; an outbox event
    its key and data, a row with a serial key any of its values."""
    if table == "atlas_outbox":
        return False, [*_strings(record["key"]), *_strings(record["value"])]  # value: the data
    if all(isinstance(v, str) for v in key):
        return True, [str(v) for v in key]
    return False, list(_strings(list(record.values())))
