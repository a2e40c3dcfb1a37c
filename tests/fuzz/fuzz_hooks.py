"""Schemathesis hooks for the API fuzzing (issue #22), loaded by `st run` via SCHEMATHESIS_HOOKS.

The pytest side (`test_fuzz_apis.py`) writes a JSON file of callers and names it in
`ATLAS_FUZZ_CALLERS`; these hooks then:

- give each generated request one caller's `Authorization` header: every phase but the stateful
  one turns through all callers, good and bad, operation by operation; the stateful phase, which
  chains create → read → update → transition through the links, mostly uses the token holding
  every unscoped role so that deep states are reached;
- put known-good values (an existing space, prestation, commune, the agent token's own id) in
  place of generated ones in every other request, so requests are accepted and later steps reach
  deep states, while the other half still sends what the generator drew;
- add two checks of the project's own rules: a 4xx carries the JSON error body, and a token scoped
  to one space never receives another space's data;
- drop one kind of finding only: "schema-valid request rejected" (ST202) when the answer names one
  of the rules below that no JSON Schema can state (`BUSINESS_RULES`), each with its reason;
- append every exchange to the JSON-lines ledger named by `ATLAS_FUZZ_LEDGER`, which the test reads
  afterwards to count requests and to check the database for half-writes.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, HookContext, Response

_CONFIG: dict[str, Any] = json.loads(Path(os.environ["ATLAS_FUZZ_CALLERS"]).read_text())
CALLERS: dict[str, str | None] = _CONFIG["callers"]  # name -> token (None: no header)
SPACE: str = _CONFIG["space"]  # the space of the staff and manager tokens
SCOPED: bool = _CONFIG["scoped"]  # whether this service's data belongs to spaces
LEDGER = Path(os.environ["ATLAS_FUZZ_LEDGER"])
KNOWN: dict[str, str] = _CONFIG["known"]  # field name -> a value that exists on the platform
SPACE_CALLERS = frozenset({"staff", "manager"})
# Refusals of schema-valid requests that are the API's rules, not gaps in its OpenAPI: error name
# (and, for a generic validation error, the problem type) -> why no JSON Schema can say it.
BUSINESS_RULES: dict[tuple[str, str | None], str] = {
    ("SpaceNotFound", None): "the space must exist (the catalog's spaces, replicated)",
    ("UnknownPrestation", None): "the prestation must exist in the catalog's replica",
    ("BadAssignee", None): "the assignee must be on the space's staff roster",
    ("MissingParameter", None): "agent_id may be left out by an agent only (their own)",
    ("MissingVariables", None): "the params must hold the variables the template declares",
    ("TemplateInvalid", None): "a template needs one body at least (a rule across fields)",
    ("DigestMismatch", None): "the body's SHA-256 must equal the `sha256` parameter",
    ("ValidationError", "value_error"): "a rule across fields of one body (model validator)",
    ("InvalidMutation", "int_type"): "an HR revision is an integer literal: 2.0 is refused",
}
STATEFUL_CALLERS = ("all",) * 3 + ("manager", "staff", "agent", "hr_system")

_by_token = {token: name for name, token in CALLERS.items() if token}
_turns: dict[str, itertools.cycle[str]] = defaultdict(lambda: itertools.cycle(sorted(CALLERS)))
_stateful_turn = itertools.cycle(STATEFUL_CALLERS)
_lock = threading.Lock()


def caller_of(case: Case) -> str:
    """Which caller a request was sent as, from its Authorization header."""
    header = (case.headers or {}).get("Authorization", "")
    return _by_token.get(header.removeprefix("Bearer "), "missing")


@schemathesis.auth()
class Callers:
    """One caller per request, in turn: see the module docstring."""

    def get(self, case: Case, ctx: Any) -> dict[str, str | None]:
        return CALLERS

    def set(self, case: Case, data: dict[str, str | None], ctx: Any) -> None:
        with _lock:
            stateful = case.meta is not None and case.meta.phase.name == "stateful"
            name = next(_stateful_turn) if stateful else next(_turns[case.operation.label])
        headers = dict(case.headers or {})
        headers.pop("Authorization", None)
        token = data[name]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        case.headers = headers


_known_turn = itertools.count()


def _with_known(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: KNOWN[k] if k in KNOWN and isinstance(v, str) else v for k, v in values.items()}
    return values


@schemathesis.hook
def map_case(context: HookContext, case: Case) -> Case:
    """Every other request: known-good values in place of generated ones (module docstring)."""
    with _lock:
        turn = next(_known_turn)
    if turn % 2:
        case.body = _with_known(case.body)
        case.query = _with_known(case.query)
        case.path_parameters = _with_known(case.path_parameters)
    return case


@schemathesis.hook
def filter_failure(context: HookContext, failure: Any, case: Case, response: Response) -> bool:
    """Keep every finding but a rejected schema-valid request refused by a `BUSINESS_RULES` rule."""
    if getattr(failure, "code", None) != "ST202":
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    if not isinstance(body, dict):
        return True
    name = body.get("error")
    detail = body.get("detail")
    kinds = (
        {p.get("type") for p in detail if isinstance(p, dict)}
        if isinstance(detail, list)
        else set()
    )
    if (name, None) in BUSINESS_RULES:
        return False
    return not (kinds and all((name, kind) in BUSINESS_RULES for kind in kinds))


@schemathesis.check
def error_body(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A 4xx answers the project's `{"error": Name, "detail": ...}` JSON body."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} without a JSON body") from None
    if not (isinstance(body, dict) and isinstance(body.get("error"), str) and "detail" in body):
        raise AssertionError(f"{response.status_code} without the error body: {body!r:.200}")
    return True


@schemathesis.check
def space_scoping(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A staff or manager token of one space never receives another space's data."""
    if not SCOPED or caller_of(case) not in SPACE_CALLERS or response.status_code >= 300:
        return None
    if "json" not in response.headers.get("content-type", [""])[0]:
        return None
    foreign = sorted(set(_foreign_spaces(response.json())))
    if foreign:
        raise AssertionError(f"a token of {SPACE} received data of {', '.join(foreign)}")
    return True


def _foreign_spaces(value: Any, key: str = "") -> list[str]:
    """Space ids other than SPACE found under `*atlas_id` keys anywhere in a JSON body."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _foreign_spaces(v, str(k))]
    if isinstance(value, list):
        return [s for item in value for s in _foreign_spaces(item, key)]
    if key.endswith("atlas_id") and isinstance(value, str) and value != SPACE:
        return [value]
    return []


@schemathesis.hook
def after_call(context: HookContext, case: Case, response: Response) -> None:
    """Append the exchange to the ledger."""
    try:
        answer = response.json() if response.content and len(response.content) < 1 << 20 else None
    except ValueError:
        answer = None
    entry = {
        "operation": case.operation.label,
        "method": case.method.upper(),
        "path": case.formatted_path,
        "path_parameters": case.path_parameters,
        "query": case.query,
        "body": case.body if isinstance(case.body, dict | list | str | int | float) else None,
        "caller": caller_of(case),
        "status": response.status_code,
        "response": answer,
        "location": response.headers.get("location", [None])[0],
    }
    line = json.dumps(entry, default=str)  # ASCII: no line separator inside a line
    with _lock, LEDGER.open("a") as ledger:
        ledger.write(line + "\n")
