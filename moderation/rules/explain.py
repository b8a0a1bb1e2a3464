"""The sentences that explain hits: an admin's ``explain:`` template, checked when loaded."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

__all__ = ["TEMPLATE_FIELDS", "check_template", "render"]

TEMPLATE_FIELDS = ("rule", "target", "match", "count", "detail", "score", "outcome", "description")

_LONG_NUMBER_RE = re.compile(r"[0-9]{3,}")

_SAMPLE = {
    "rule": "RULE",
    "target": "content",
    "match": "text",
    "count": 1,
    "detail": "detail",
    "score": 1.0,
    "outcome": "pending",
    "description": "",
}


def check_template(template: str) -> str | None:
    """What is wrong with an ``explain:`` template, or None when it is usable."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"not a valid template: {exc}"
    for _, name, spec, _ in parsed:
        # Plain names only: "{rule.__class__}" style access has no business in a sentence.
        if name is not None and name not in TEMPLATE_FIELDS:
            allowed = ", ".join("{" + field + "}" for field in TEMPLATE_FIELDS)
            return f"unknown placeholder {{{name}}} (use {allowed})"
        # A width or precision like {score:.999999999f} renders a gigabyte for every hit
        # (and here, for the sample): two digits are plenty for a sentence.
        if spec and ("{" in spec or _LONG_NUMBER_RE.search(spec)):
            return (
                f"the format {{{name}:{spec}}} is too wide: at most two digits of width "
                "or precision, and no placeholders inside it"
            )
    try:
        template.format_map(_SAMPLE)
    except (ValueError, TypeError) as exc:
        return f"not a valid template: {exc}"
    return None


def render(template: str, values: Mapping[str, object]) -> str:
    """``template`` with the hit's values filled in (the template was checked on load)."""
    return template.format_map(values)
