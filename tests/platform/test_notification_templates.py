"""Every template another service asks notify for (a `notify.commands.v1` command) exists.

A missing one is not an error anyone sees at the source: the command lands in notify's DLQ with
`TemplateNotFound`. The template codes are read from the senders' source, so a new one cannot be
added without its French texts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from atlas_notify.templates.defaults import DEFAULT_TEMPLATES
from atlas_notify.templates.rendering import used_variables

ROOT = Path(__file__).resolve().parents[2]
SENDERS = ("catalog", "requests", "mobility", "vault")


def _requested_templates() -> dict[str, Path]:
    """String constants shaped like template codes (`<service>.<name>`) in the senders' calls
    that build a SendNotification, directly or through a helper taking the code."""
    found: dict[str, Path] = {}
    for svc in SENDERS:
        for path in (ROOT / "services" / svc / "src").rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            if "SendNotification(" not in source:
                continue
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, ast.Call):
                    continue
                args = [*node.args, *(k.value for k in node.keywords)]
                for arg in args:
                    if (
                        isinstance(arg, ast.Constant)
                        and isinstance(arg.value, str)
                        and arg.value.startswith(f"{svc}.")
                        and arg.value.replace(".", "").replace("_", "").isalnum()
                    ):
                        found[arg.value] = path
    return found


def test_the_senders_ask_for_templates_at_all() -> None:
    assert "requests.board_match_suggested" in _requested_templates()


@pytest.mark.parametrize("code", sorted(_requested_templates()))
def test_requested_template_exists_with_french_texts(code: str) -> None:
    assert code in DEFAULT_TEMPLATES, f"{code} (asked by {_requested_templates()[code]})"
    template = DEFAULT_TEMPLATES[code]
    assert template.in_app_title or template.email_subject
    variables = set().union(*used_variables(template).values())
    assert variables <= set(template.variables), "every variable has an example value"
