"""Sandboxed Jinja2 with strict undefined variables: all or nothing, never half-rendered."""

from collections.abc import Mapping
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from atlas_notify.errors import MissingVariables, TemplateInvalid
from atlas_notify.templates.models import RenderedMessage, Template, TemplateBase
from atlas_notify.templates.sms import sms_length

# Texts are plain text (e-mail text/plain, SMS, in-app text rendered by the gateways), so no
# HTML escaping; the sandbox keeps templates from reaching Python internals.
_ENV = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)

_FIELDS = ("email_subject", "email_body", "sms_body", "in_app_title", "in_app_body")


@lru_cache(maxsize=512)
def _compiled(text: str) -> JinjaTemplate:
    """Templates are immutable once saved, so their compiled form is cached by text."""
    return _ENV.from_string(text)


@lru_cache(maxsize=512)
def _variables(text: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(_ENV.parse(text)))


def _texts(template: TemplateBase | Template) -> dict[str, str]:
    return {name: text for name in _FIELDS if (text := getattr(template, name))}


def used_variables(template: TemplateBase | Template) -> dict[str, set[str]]:
    """The variables each text refers to; TemplateInvalid on a syntax error."""
    found: dict[str, set[str]] = {}
    for name, text in _texts(template).items():
        try:
            found[name] = set(_variables(text))
        except TemplateSyntaxError as exc:
            raise TemplateInvalid(
                f"{name}: syntax error line {exc.lineno}: {exc.message}",
                detail={"field": name, "line": exc.lineno, "message": exc.message},
            ) from exc
    return found


def check_template(
    template: TemplateBase, *, max_sms_segments: int
) -> tuple[str | None, int | None]:
    """Validate a template before saving; return the SMS encoding and segments of the example."""
    if not _texts(template):
        raise TemplateInvalid("a template needs at least one of email_body, sms_body, in_app_body")
    if template.email_body and not template.email_subject:
        raise TemplateInvalid("an e-mail text needs an email_subject")
    if template.in_app_body and not template.in_app_title:
        raise TemplateInvalid("an in-app text needs an in_app_title")
    undeclared = {
        field: sorted(names - template.variables.keys())
        for field, names in used_variables(template).items()
        if names - template.variables.keys()
    }
    if undeclared:
        missing = sorted({name for names in undeclared.values() for name in names})
        raise TemplateInvalid(
            f"variables used but not declared: {', '.join(missing)}",
            detail={"missing_variables": missing, "by_field": undeclared},
        )
    rendered = _render_texts(template, template.variables)
    if "sms_body" not in rendered:
        return None, None
    length = sms_length(rendered["sms_body"])
    if length.segments > max_sms_segments:
        raise TemplateInvalid(
            f"the SMS takes {length.segments} {length.encoding} segments with the example values,"
            f" more than {max_sms_segments}",
            detail={
                "encoding": length.encoding,
                "units": length.units,
                "segments": length.segments,
                "max_segments": max_sms_segments,
            },
        )
    return length.encoding, length.segments


def _render_texts(template: TemplateBase | Template, params: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, text in _texts(template).items():
        try:
            out[name] = _compiled(text).render(dict(params)).strip()
        except UndefinedError as exc:
            raise MissingVariables(f"{name}: {exc.message}", detail=str(exc.message)) from exc
        except SecurityError as exc:
            raise TemplateInvalid(f"{name}: not allowed in a template: {exc}") from exc
    return out


def render(template: Template, params: Mapping[str, str]) -> RenderedMessage:
    """Render every text of `template`; MissingVariables (422) naming what is missing."""
    missing = sorted(set().union(*used_variables(template).values(), set()) - params.keys())
    if missing:
        raise MissingVariables(
            f"missing variables: {', '.join(missing)}", detail={"missing_variables": missing}
        )
    texts = _render_texts(template, params)
    message = RenderedMessage(
        code=template.code, version=template.version, category=template.category, **texts
    )
    if message.sms_body is not None:
        length = sms_length(message.sms_body)
        message.sms_encoding, message.sms_segments = length.encoding, length.segments
    return message
