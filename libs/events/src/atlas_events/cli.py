"""The `atlas` operator command; each subcommand registers itself in `SUBCOMMANDS`."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TypeAlias

import structlog

from atlas_events.auth import (
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    STAFF_ROLES,
    LocalSigningKey,
    Role,
    default_local_key_path,
)

# argparse gives the subparsers action no public name, and it is generic only to type checkers.
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler = Callable[[argparse.Namespace], int]

_DURATION_PART = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90`, `90s`, `15m`, `8h`, `7d` or a sum such as `1h30m` as a timedelta."""
    text = text.strip().lower()
    if text.isdigit():
        return timedelta(seconds=int(text))
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (examples: 90s, 15m, 8h, 1h30m, 7d)")
    return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))


def _positive_duration(text: str) -> timedelta:
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if duration <= timedelta(0):
        raise argparse.ArgumentTypeError("the duration must be positive")
    return duration


def _add_token(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "token",
        help="print a JWT signed with the local key, accepted by every local service",
        description="Print one JWT on stdout, signed with the local Ed25519 key "
        "(created if missing), accepted by every service running in local mode.",
    )
    parser.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        choices=[role.value for role in Role],
        help="a role of the token; repeat for several",
    )
    parser.add_argument("--sub", default="ops-cli", help="the subject (an agent_id for agents)")
    parser.add_argument("--atlas-id", help="the ATLAS space of a staff or manager token")
    parser.add_argument(
        "--ttl", type=_positive_duration, default=timedelta(hours=8), help="e.g. 15m, 8h, 7d"
    )
    parser.add_argument(
        "--key",
        type=Path,
        help="the PEM key file (default: $ATLAS_HOME/keys/jwt-ed25519.pem, "
        "else ./.atlas/keys/jwt-ed25519.pem)",
    )
    parser.add_argument("--issuer", default=DEFAULT_ISSUER)
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE)
    parser.set_defaults(handler=_run_token)


def _run_token(args: argparse.Namespace) -> int:
    roles = [Role(name) for name in args.roles]
    if STAFF_ROLES.intersection(roles) and not args.atlas_id:
        print(
            "warning: a staff or manager token without --atlas-id is refused by space-scoped "
            "endpoints",
            file=sys.stderr,
        )
    key = LocalSigningKey.load_or_create(
        args.key or default_local_key_path(), issuer=args.issuer, audience=args.audience
    )
    print(key.issue(args.sub, roles, atlas_id=args.atlas_id, ttl=args.ttl))
    return 0


def _add_dlq(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser("dlq", help="dead-letter queues")
    actions = parser.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    replay = actions.add_parser(
        "replay",
        help="republish <topic>.dlq messages onto <topic>",
        description="Republish dead-lettered messages onto their original topic, once the cause "
        "is fixed. Idempotent consumers skip what they had already applied.",
    )
    replay.add_argument("topic", help="the original topic, e.g. hr.mutations.v1")
    replay.add_argument("--consumer", help="only messages that failed in this consumer group")
    replay.add_argument("--limit", type=int, help="at most this many messages")
    replay.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    replay.set_defaults(handler=_run_dlq_replay)


def _run_dlq_replay(args: argparse.Namespace) -> int:
    import asyncio

    from atlas_events.dlq import replay
    from atlas_events.kafka import client_options
    from atlas_events.settings import ServiceSettings

    # Inside the cluster the ATLAS_KAFKA_* variables give the SASL user and the CA.
    options = client_options(ServiceSettings())
    result = asyncio.run(
        replay(
            args.bootstrap,
            args.topic,
            consumer=args.consumer,
            limit=args.limit,
            kafka_options=options,
        )
    )
    print(f"replayed {result.replayed} message(s), skipped {result.skipped}")
    return 0


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a ratio is between 0 and 1")
    return value


def _add_hr(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser("hr", help="simulate the HR systems (mutation events)")
    actions = parser.add_subparsers(dest="hr_command", required=True, metavar="ACTION")
    publish = actions.add_parser(
        "publish",
        help="publish a realistic annual transfer plan to hr.mutations.v1",
        description="Generate a realistic annual transfer plan (destinations weighted by "
        "garrison size, household mixes, an overseas share, report dates in the summer season, "
        "amendments and cancellations as later revisions) and publish it per CONTRACTS.md §1. "
        "Needs the atlas_devstack package (tools/devstack).",
    )
    publish.add_argument("--count", type=int, help="number of mutations")
    publish.add_argument(
        "--missions",
        type=int,
        help="number of missions (OPEX, mission intérieure, embarquement) to hr.missions.v1",
    )
    publish.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    publish.add_argument("--topic", help="default hr.mutations.v1 (hr.missions.v1 for --missions)")
    publish.add_argument("--seed", type=int, help="random seed: the same seed, the same plan")
    publish.add_argument("--amend-ratio", type=_ratio, default=0.08)
    publish.add_argument("--cancel-ratio", type=_ratio, default=0.03)
    publish.add_argument("--overseas-ratio", type=_ratio, default=0.12)
    publish.set_defaults(handler=_run_hr_publish)


def _run_hr_publish(args: argparse.Namespace) -> int:
    if (args.count is None) == (args.missions is None):
        print("error: give one of --count or --missions", file=sys.stderr)
        return 2
    if (args.count if args.count is not None else args.missions) < 0:
        print("error: --count and --missions must be >= 0", file=sys.stderr)
        return 2
    try:
        # The simulator is a development tool; the library must not depend on it.
        from atlas_devstack.hrsim import run_publish, run_publish_missions
    except ImportError as exc:
        print(
            f"error: `atlas hr` needs the atlas_devstack package (tools/devstack), which is not "
            f"importable here ({exc}); install it with `pip install -e tools/devstack`.",
            file=sys.stderr,
        )
        return 2
    if args.missions is not None:
        return run_publish_missions(
            count=args.missions,
            bootstrap=args.bootstrap,
            topic=args.topic or "hr.missions.v1",
            seed=args.seed,
        )
    return run_publish(
        count=args.count,
        bootstrap=args.bootstrap,
        topic=args.topic or "hr.mutations.v1",
        seed=args.seed,
        amend_ratio=args.amend_ratio,
        cancel_ratio=args.cancel_ratio,
        overseas_ratio=args.overseas_ratio,
    )


# Later commands add their registering function here.
SUBCOMMANDS: list[Callable[[SubParsers], None]] = [_add_token, _add_dlq, _add_hr]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atlas", description="ATLAS platform operator commands.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def _stderr_logger(*_: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `atlas` console script."""
    # stdout carries the command's result (a token for `$(atlas token ...)`); logs go to stderr:
    # the one of the moment each logger is made, not a file bound now (called in-process, as the
    # tests do, this one may be closed by the time a later caller logs).
    structlog.configure(logger_factory=_stderr_logger, cache_logger_on_first_use=False)
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
