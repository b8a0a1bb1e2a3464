"""The rules file's shape, as marshmallow schemas: unknown keys and wrong types are refused."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .model import LIVE, OUTCOMES, SHADOW, TARGETS

__all__ = ["FileSchema", "SiteSchema", "RULE_SCHEMAS", "SECTION_SCHEMAS", "OVERRIDABLE_NEVER"]

RULE_ID = r"^[A-Z0-9_]{1,64}$"
SITE_SLUG = r"^[a-z0-9-]{1,64}$"
# Flask-limiter limit strings: "5/minute", "5 per minute", "10/2 hours", joined by ; or ,.
# No zero: "0/minute" refused every comment (null is how a limit is switched off).
_COUNT = r"0*[1-9]\d*"
_LIMIT_ITEM = (
    rf"\s*{_COUNT}\s*(?:/|per)\s*(?:{_COUNT}\s*)?(?:second|minute|hour|day|month|year)s?\s*"
)
LIMIT_STRING = rf"^{_LIMIT_ITEM}(?:[;,]{_LIMIT_ITEM})*$"
# What the patterns above mean, said to an admin whose file breaks one of them.
_ID = "Must be 1-64 capital letters, digits or underscores, such as MANY_LINKS."
_SLUG = "Must be a site's slug: 1-64 lower-case letters, digits or hyphens, such as news."
_LIMIT = ('Must be a limit such as "5/minute" or "5/minute;30/hour" (no zero), '
          "or null for none.")
OVERRIDABLE_NEVER = ("id", "type")


class _Strict(Schema):
    class Meta:
        unknown = "raise"


class Float(fields.Float):
    """A YAML number: a quoted "2" is text to YAML, so it is a wrong type here too."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            if _reads_as_number(value):
                # YAML 1.1 reads an exponent without a dot (1e5) as text, which surprises.
                raise ValidationError(
                    f"Not a valid number: {value[:40]!r} is text to YAML (quoted, or an "
                    "exponent without a dot, such as 1e5); write a plain number, such as 2.")
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class Boolean(fields.Boolean):
    """A YAML true or false only, not "no", 0 or "off" in quotes."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


# Scores are summed over every rule that hits and stored with the comment: a rule scored
# 1e308 would make the sum infinite, which JSON cannot carry. Real rule sets score in
# single or double digits, so this bound costs nobody anything.
SCORE_LIMIT = 1000.0


def _score(low: float = -SCORE_LIMIT, high: float = SCORE_LIMIT) -> validate.Range:
    return validate.Range(min=low, max=high)


def _probability() -> validate.Range:
    return validate.Range(min=0.0, max=1.0)


class ListOrSource(fields.Field):
    """A list of strings, or one string naming where the list lives (``file:...``, or
    ``list:disposable`` for domains)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            if value.startswith(("file:", "list:")):
                return [value]  # a list kept elsewhere, read (or refused) when built
            # Taken as a list of one, a mistyped `flie:lists/abuse.txt` was a rule whose
            # one term was that text, and the list never applied (found by an audit).
            raise ValidationError(f"{value!r} is neither a list nor 'file:<path>': write a "
                                  f"list in brackets, [{value}], or name a file.")
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        if isinstance(value, list) and all(isinstance(item, str | int) for item in value):
            # YAML reads an unquoted yes/no/on/off as a boolean and 0x1F or 010 as a
            # number: str() of it is not what was written, so ask for quotes.
            odd = next(item for item in value if not isinstance(item, str))
            raise ValidationError(f"{odd!r} is not text to YAML: put it in quotes.")
        raise ValidationError("Must be a list of strings, or 'file:<path>'.")


class ThresholdsSchema(_Strict):
    pending = Float(allow_nan=False, validate=_score())
    spam = Float(allow_nan=False, validate=_score())


class TrustSchema(_Strict):
    hold_new_commenters = Boolean()
    trusted_after = fields.Integer(strict=True, validate=validate.Range(min=1))
    trusted_max_rejection_rate = Float(validate=_probability())
    trusted_score = Float(allow_nan=False, validate=_score(high=0.0))
    hold_after_bad_run = fields.Integer(strict=True, validate=validate.Range(min=0))


class LimitsSchema(_Strict):
    per_ip = fields.String(allow_none=True, validate=validate.Regexp(LIMIT_STRING, error=_LIMIT))
    per_email = fields.String(allow_none=True,
                              validate=validate.Regexp(LIMIT_STRING, error=_LIMIT))
    flag_per_reporter = fields.String(allow_none=True,
                                      validate=validate.Regexp(LIMIT_STRING, error=_LIMIT))


# A thousand years, "forever" however it is written; a window past the dates Python can
# count back to (about two thousand years) made every comment a 500.
MAX_DUPLICATE_WINDOW = 1000 * 365 * 86400


class DuplicatesSchema(_Strict):
    window_seconds = fields.Integer(
        strict=True, validate=validate.Range(min=0, max=MAX_DUPLICATE_WINDOW))


class FlagsSchema(_Strict):
    threshold = fields.Integer(strict=True, validate=validate.Range(min=1))


# The fields intake reads, by their own names and a WordPress form's: a honeypot named
# after one was taken out of every submission (`content`: every comment a 422; `site`:
# every comment spam). tests/test_spec.py holds this to the submission schema.
SUBMISSION_FIELDS = frozenset((
    "site", "thread", "thread_title", "thread_url", "parent_id", "author_name",
    "author_email", "author_url", "content", "ip", "user_agent", "referrer", "form_token",
    "author", "email", "url", "comment", "comment_post_ID", "comment_parent",
))


class HoneypotSchema(_Strict):
    field = fields.String(allow_none=True, validate=[
        validate.Regexp(r"^[A-Za-z0-9_\-]{0,64}$"),
        validate.NoneOf(SUBMISSION_FIELDS,
                        error="Must not be a field of the comment form: {input} is read as one."),
    ])


class FormTokenSchema(_Strict):
    enabled = Boolean()
    min_seconds = Float(validate=validate.Range(min=0.0))
    max_age_seconds = fields.Integer(strict=True, validate=validate.Range(min=1))


class PublicSchema(_Strict):
    reveal_spam = Boolean()


class ModerationSchema(_Strict):
    pre_moderate = Boolean()


SECTION_SCHEMAS: dict[str, type[Schema]] = {
    "thresholds": ThresholdsSchema,
    "trust": TrustSchema,
    "limits": LimitsSchema,
    "duplicates": DuplicatesSchema,
    "flags": FlagsSchema,
    "honeypot": HoneypotSchema,
    "form_token": FormTokenSchema,
    "public": PublicSchema,
    "moderation": ModerationSchema,
}


class SiteSchema(_Strict):
    """``sites.<slug>``: any settings section, and per-rule overrides."""

    rules = fields.Dict(keys=fields.String(), values=fields.Dict())
    thresholds = fields.Nested(ThresholdsSchema)
    trust = fields.Nested(TrustSchema)
    limits = fields.Nested(LimitsSchema)
    duplicates = fields.Nested(DuplicatesSchema)
    flags = fields.Nested(FlagsSchema)
    honeypot = fields.Nested(HoneypotSchema)
    form_token = fields.Nested(FormTokenSchema)
    public = fields.Nested(PublicSchema)
    moderation = fields.Nested(ModerationSchema)


class FileSchema(SiteSchema):
    """The whole file; rules and sites are checked one by one afterwards, to name them."""

    version = fields.Integer(strict=True, required=True, validate=validate.Equal(1))
    rules = fields.List(fields.Raw())
    sites = fields.Dict(
        keys=fields.String(validate=validate.Regexp(SITE_SLUG, error=_SLUG)),
        values=fields.Raw()
    )


class RuleSchema(_Strict):
    """What every rule has. Each type adds its own keys in a subclass."""

    default_targets: ClassVar[tuple[str, ...]] = ("content",)
    allowed_targets: ClassVar[tuple[str, ...]] = ("content",)
    scored: ClassVar[bool] = True

    id = fields.String(required=True, validate=validate.Regexp(RULE_ID, error=_ID),
                       error_messages={"invalid": "Not text: YAML reads OFF, NO or 123 "
                                       "as a boolean or a number, so put such an id in "
                                       "quotes."})
    type = fields.String(required=True)
    targets = fields.List(fields.String(validate=validate.OneOf(TARGETS)))
    score = Float(allow_nan=False, validate=_score())
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    enabled = Boolean()
    mode = fields.String(validate=validate.OneOf((LIVE, SHADOW)))
    explain = fields.String()
    description = fields.String()

    @validates_schema
    def _score_or_outcome(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not self.scored:
            for key in ("score", "outcome"):
                if key in data:
                    raise ValidationError("This rule type computes its own score.", key)
        elif ("score" in data) == ("outcome" in data):
            raise ValidationError("Give exactly one of 'score' and 'outcome'.", "score")
        for target in data.get("targets", ()):
            if target not in self.allowed_targets:
                allowed = ", ".join(self.allowed_targets)
                raise ValidationError(
                    f"'{target}' is not a target of this type ({allowed}).", "targets"
                )
        if "targets" in data and not data["targets"]:
            raise ValidationError("Give at least one target.", "targets")
        if len(set(data.get("targets", ()))) != len(data.get("targets", ())):
            # A rule scores once per target it hits: [content, content] scored twice.
            raise ValidationError("Name each target once.", "targets")


class TermsRule(RuleSchema):
    default_targets = ("content", "author_name", "author_url")
    allowed_targets = TARGETS
    terms = ListOrSource(required=True)
    match = fields.String(validate=validate.OneOf(("word", "substring")))
    plurals = Boolean()


class RegexRule(RuleSchema):
    allowed_targets = TARGETS
    pattern = fields.String(required=True)
    raw = Boolean()


class LinksRule(RuleSchema):
    default_targets = ("content", "author_url")
    allowed_targets = ("content", "author_url")
    at_least = fields.Integer(strict=True, required=True, validate=validate.Range(min=1))


class DomainsRule(RuleSchema):
    default_targets = ("content", "author_url")
    allowed_targets = ("content", "author_url", "author_name")
    domains = ListOrSource(required=True)


class IpRule(RuleSchema):
    default_targets = allowed_targets = ("ip",)
    cidrs = ListOrSource(required=True)


class EmailRule(RuleSchema):
    default_targets = allowed_targets = ("author_email",)
    addresses = ListOrSource()
    domains = ListOrSource()

    @validates_schema
    def _something_listed(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "addresses" not in data and "domains" not in data:
            raise ValidationError("Give 'addresses', 'domains' or both.", "domains")


class LengthRule(RuleSchema):
    allowed_targets = TARGETS
    min = fields.Integer(strict=True, validate=validate.Range(min=0))
    max = fields.Integer(strict=True, validate=validate.Range(min=0))

    @validates_schema
    def _bounds(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "min" not in data and "max" not in data:
            raise ValidationError("Give 'min', 'max' or both.", "min")
        if "min" in data and "max" in data and data["min"] > data["max"]:
            raise ValidationError("'min' is above 'max'.", "min")


class CapsRule(RuleSchema):
    allowed_targets = ("content", "author_name")
    min_share = Float(required=True, validate=_probability())
    min_letters = fields.Integer(strict=True, validate=validate.Range(min=1))


class RepeatsRule(RuleSchema):
    allowed_targets = ("content", "author_name")
    # Bounded: the count becomes a regex repeat, which Python caps near 2**32 (a comment
    # is at most 10,000 characters anyway).
    at_least = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=2, max=10_000)
    )


class EmptyUserAgentRule(RuleSchema):
    default_targets = allowed_targets = ("user_agent",)


class UrlInNameRule(RuleSchema):
    default_targets = allowed_targets = ("author_name",)


class ClassifierRule(RuleSchema):
    allowed_targets = ("content", "author_name", "author_url")
    scored = False
    weight = Float(allow_nan=False, validate=_score(low=0.0))
    spam_above = Float(validate=_probability())
    ham_below = Float(validate=_probability())

    @validates_schema
    def _band(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("ham_below", 0.1) >= data.get("spam_above", 0.9):
            raise ValidationError("'ham_below' must be below 'spam_above'.", "ham_below")


RULE_SCHEMAS: dict[str, type[RuleSchema]] = {
    "terms": TermsRule,
    "regex": RegexRule,
    "links": LinksRule,
    "domains": DomainsRule,
    "ip": IpRule,
    "email": EmailRule,
    "length": LengthRule,
    "caps": CapsRule,
    "repeats": RepeatsRule,
    "empty_user_agent": EmptyUserAgentRule,
    "url_in_name": UrlInNameRule,
    "classifier": ClassifierRule,
}
