"""Generate the published contracts (JSON Schemas, AsyncAPI) from the registry, or check them."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from atlas_events.cloudevents import HEADER_PREFIX, JSON_CONTENT_TYPE, SPECVERSION
from atlas_events.registry import REGISTRY, EventType, Topic, TopicRegistry

CONTRACTS_DIR = Path("contracts")
SCHEMAS_DIR = CONTRACTS_DIR / "schemas"
ASYNCAPI_PATH = CONTRACTS_DIR / "asyncapi.yaml"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
JSON_SCHEMA_FORMAT = "application/schema+json;version=2020-12"
KAFKA_BINDING_VERSION = "0.5.0"
GENERATED_NOTE = "Generated from atlas_events.registry by `make contracts`; do not edit."
HR_SOURCE = "urn:atlas:rh:sirh-terre"
EXAMPLE_TIME = "2027-05-01T08:00:00Z"


class _PlainDumper(yaml.SafeDumper):
    """YAML dumper that writes shared values out again instead of as anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def schema_path(ce_type: str) -> Path:
    """Where the JSON Schema of an event type's data is published."""
    return SCHEMAS_DIR / f"{ce_type}.json"


def json_schema(event: EventType) -> dict[str, Any]:
    """JSON Schema 2020-12 of an event type's data, with its `$id` and the type as title."""
    schema = event.data.model_json_schema(mode="validation")
    schema.update(
        {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": event.dataschema,
            "$comment": GENERATED_NOTE,
            "title": event.type,
        }
    )
    return schema


def examples(event: EventType) -> list[Any]:
    """The example payloads a data model publishes in its JSON Schema."""
    found = event.data.model_json_schema(mode="validation").get("examples", [])
    return list(found) if isinstance(found, list) else []


def _source(topic: Topic) -> str:
    return HR_SOURCE if topic.owner == "hr" else f"urn:atlas:{topic.owner}"


def _headers_schema() -> dict[str, Any]:
    """Schema of the CloudEvents Kafka binary-mode headers shared by every message."""
    return {
        "type": "object",
        "description": (
            "CloudEvents 1.0 Kafka protocol binding, binary content mode: context attributes "
            "as ce_* headers (UTF-8 strings), the data's media type as content-type."
        ),
        "required": [f"{HEADER_PREFIX}{name}" for name in ("specversion", "id", "source", "type")]
        + ["content-type"],
        "properties": {
            "ce_specversion": {"type": "string", "const": SPECVERSION},
            "ce_id": {
                "type": "string",
                "minLength": 1,
                "description": "Unique per source (a UUID); consumers deduplicate on it.",
            },
            "ce_source": {
                "type": "string",
                "minLength": 1,
                "format": "uri-reference",
                "description": "The producing system, e.g. urn:atlas:mobility.",
            },
            "ce_type": {"type": "string", "description": "The event type."},
            "ce_time": {
                "type": "string",
                "format": "date-time",
                "description": "When the occurrence happened (RFC 3339).",
            },
            "ce_subject": {"type": "string", "description": "What the event is about, if set."},
            "ce_dataschema": {
                "type": "string",
                "format": "uri",
                "description": "The `$id` of the data's JSON Schema, if set.",
            },
            "content-type": {"type": "string", "const": JSON_CONTENT_TYPE},
            "traceparent": {
                "type": "string",
                "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "W3C trace context, when the producer traces.",
            },
        },
        "patternProperties": {
            "^ce_[a-z0-9]+$": {"type": "string", "description": "A CloudEvents extension."}
        },
    }


def _message(event: EventType, topic: Topic) -> dict[str, Any]:
    headers_example = {
        "ce_specversion": SPECVERSION,
        "ce_id": str(uuid.uuid5(uuid.NAMESPACE_URL, event.dataschema)),
        "ce_source": _source(topic),
        "ce_type": event.type,
        "ce_time": EXAMPLE_TIME,
        "content-type": JSON_CONTENT_TYPE,
    }
    return {
        "name": event.type,
        "title": event.data.__name__,
        "summary": event.description,
        "contentType": JSON_CONTENT_TYPE,
        "headers": {
            "type": "object",
            "allOf": [
                {"$ref": "#/components/schemas/CloudEventHeaders"},
                {"properties": {"ce_type": {"const": event.type}}},
            ],
        },
        "payload": {
            "schemaFormat": JSON_SCHEMA_FORMAT,
            "schema": {"$ref": schema_path(event.type).relative_to(CONTRACTS_DIR).as_posix()},
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": f"The {topic.key}, UTF-8."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [
            {"name": f"example{index}", "headers": headers_example, "payload": payload}
            for index, payload in enumerate(examples(event), start=1)
        ],
    }


def _channel(topic: Topic) -> dict[str, Any]:
    topic_configuration: dict[str, Any] = {"cleanup.policy": [topic.cleanup_policy]}
    if topic.retention_ms is not None:
        topic_configuration["retention.ms"] = topic.retention_ms
    audience = "Integrators may subscribe." if topic.public else "Internal to the platform."
    return {
        "address": topic.name,
        "title": topic.name,
        "description": (
            f"{topic.description} Key: {topic.key}. Written by {', '.join(topic.producers)}. "
            f"{audience} Unprocessable messages go to {topic.dlq}."
        ),
        "messages": {
            event.type: {"$ref": f"#/components/messages/{event.type}"} for event in topic.events
        },
        "tags": [{"name": "public" if topic.public else "internal"}],
        "bindings": {
            "kafka": {
                "topic": topic.name,
                "partitions": topic.partitions,
                "topicConfiguration": topic_configuration,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _operations(topic: Topic) -> dict[str, Any]:
    channel = {"$ref": f"#/channels/{topic.name}"}
    messages = [
        {"$ref": f"#/channels/{topic.name}/messages/{event.type}"} for event in topic.events
    ]
    operations: dict[str, Any] = {}
    for producer in topic.producers:
        operations[f"{producer}.send.{topic.name}"] = {
            "action": "send",
            "channel": channel,
            "title": f"{producer} publishes to {topic.name}",
            "messages": messages,
        }
    for consumer in topic.consumers:
        operations[f"{consumer}.receive.{topic.name}"] = {
            "action": "receive",
            "channel": channel,
            "title": f"{consumer} consumes {topic.name}",
            "messages": messages,
        }
    return operations


def asyncapi(registry: TopicRegistry = REGISTRY) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every topic and event type in the registry."""
    topics = registry.topics()
    operations: dict[str, Any] = {}
    for topic in topics:
        operations.update(_operations(topic))
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ATLAS platform events",
            "version": "1.0.0",
            "description": (
                "Kafka topics of the ATLAS platform. Every message is a CloudEvents 1.0 event in "
                "binary content mode: ce_* headers, the data as UTF-8 JSON in the value. "
                "Contracts change only additively; a breaking change gets a new .vN type and topic."
            ),
        },
        "defaultContentType": JSON_CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The single-node broker started by `make run`.",
            }
        },
        "channels": {topic.name: _channel(topic) for topic in topics},
        "operations": operations,
        "components": {
            "schemas": {"CloudEventHeaders": _headers_schema()},
            "messages": {
                event.type: _message(event, topic) for topic in topics for event in topic.events
            },
        },
    }


def generate(registry: TopicRegistry = REGISTRY) -> dict[Path, str]:
    """Every contract file, relative path to text, in a stable order."""
    files: dict[Path, str] = {}
    for event in registry.event_types():
        text = json.dumps(json_schema(event), indent=2, sort_keys=True, ensure_ascii=False)
        files[schema_path(event.type)] = text + "\n"
    document = yaml.dump(
        asyncapi(registry),
        Dumper=_PlainDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    files[ASYNCAPI_PATH] = f"# {GENERATED_NOTE}\n{document}"
    return dict(sorted(files.items(), key=lambda item: item[0].as_posix()))


def _orphans(root: Path, expected: dict[Path, str]) -> list[Path]:
    """Schema files on disk that the registry no longer generates."""
    directory = root / SCHEMAS_DIR
    if not directory.is_dir():
        return []
    return sorted(
        path.relative_to(root)
        for path in directory.glob("*.json")
        if path.relative_to(root) not in expected
    )


def write(root: Path) -> list[Path]:
    """Write the contracts under `root` (the repository root), removing orphaned schemas."""
    expected = generate()
    for orphan in _orphans(root, expected):
        (root / orphan).unlink()
    written = []
    for relative, text in expected.items():
        target = root / relative
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(relative)
    return written


def check(root: Path) -> list[str]:
    """Differences between the contracts under `root` and what the registry generates."""
    expected = generate()
    problems = []
    for relative, text in expected.items():
        target = root / relative
        if not target.is_file():
            problems.append(f"{relative.as_posix()}: missing")
        elif target.read_text(encoding="utf-8") != text:
            problems.append(f"{relative.as_posix()}: stale")
    problems.extend(
        f"{orphan.as_posix()}: not generated by the registry" for orphan in _orphans(root, expected)
    )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write the contracts, or with --check report stale ones and exit 1."""
    parser = argparse.ArgumentParser(prog="python -m atlas_events.contracts", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="repository root (default: .)"
    )
    args = parser.parse_args(argv)
    root: Path = args.root
    if args.check:
        problems = check(root)
        if problems:
            print("contracts are out of date; run `make contracts`:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(f"contracts up to date ({len(generate())} files)")
        return 0
    written = write(root)
    print(f"wrote {len(written)} contract files under {root / CONTRACTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
