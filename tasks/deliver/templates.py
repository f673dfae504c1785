"""Message templates: one YAML file per template name (config/templates), per channel and locale.

Copy lives in files that people who write copy can edit, and is checked before anything is
sent: a bad file stops with the file, the line and the problem; every variant the outreach
policy can produce must exist in every locale and render with a realistic context. Jinja
sources are compiled once per catalogue, so rendering is cheap enough for bulk sends.
See docs/templates.md.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
import yaml
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_decimal_symbol,
    get_group_symbol,
)
from jinja2 import meta
from markupsafe import escape
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic import ValidationInfo as _Info

from config.outreach_policy import OutreachPolicy, _line_of

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "config" / "templates"
# Country spellings ("España", "Perú") → ISO codes, shared with contacts (tasks.contacts.countries,
# not imported here: it pulls pandas and phonenumbers in for one table).
COUNTRIES_FILE = TEMPLATES_DIR.parent / "countries.yaml"
LOCALES_FILE = "_locales.yaml"
DEFAULT_LOCALES: tuple[str, ...] = ("es", "en")
# voice_auto is the optional robocall text next to a voice step's call task.
VARIANTS: tuple[str, ...] = ("email", "whatsapp", "rcs", "sms", "in_app", "voice", "voice_auto")

CONTEXT_KEYS: frozenset[str] = frozenset(
    {
        "first_name", "last_name", "full_name", "account_id", "account_name", "company_name",
        "support_email", "support_phone", "kind", "stage", "amount", "currency",
        "open_invoices", "worst_days_overdue", "due_date", "renewal_date", "promise_date",
        "promise_amount", "owner", "assignee", "pay_url", "portal_url", "unsubscribe_url",
        "invoices", "last_touches", "step", "locale",
    }
)  # fmt: skip
# Keys the sender may leave None. A template that cannot do without one lists it under
# `requires`; every other use must cope with None ({% if x %}, `x | default(...)`).
NULLABLE_KEYS: frozenset[str] = frozenset(
    {
        "first_name", "last_name", "full_name", "worst_days_overdue", "due_date",
        "renewal_date", "promise_date", "promise_amount", "owner", "assignee", "unsubscribe_url",
    }
)  # fmt: skip

# Provider limits worth failing early on.
RCS_LABEL_MAX = 25  # RBM suggestion text
RCS_TEXT_MAX = 3072
WA_BODY_MAX = 1024
SMS_GSM_SINGLE, SMS_GSM_PART = 160, 153
SMS_UCS2_SINGLE, SMS_UCS2_PART = 70, 67


class TemplateError(ValueError):
    """A template is missing, malformed or cannot render; the message names the file or
    template, the channel, the locale and the problem (and the line when it comes from YAML)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """What a provider client needs; fields a channel does not use are None or empty.

    email: subject, text, html, url (the List-Unsubscribe target: the context's
    unsubscribe_url, None for service mail). whatsapp: wa_name, wa_language, wa_parameters,
    and text (the approved body filled in, for logs and previews). rcs: text, suggestions
    (RBM API objects). sms: text (GSM-7 where possible). in_app: title, text, url.
    voice: subject (task subject) and text (the agent's brief). voice_auto: text (spoken).
    """

    subject: str | None = None
    text: str = ""
    html: str | None = None
    wa_name: str | None = None
    wa_language: str | None = None
    wa_parameters: tuple[str, ...] = ()
    suggestions: tuple[dict[str, Any], ...] = ()
    title: str | None = None
    url: str | None = None


# --- the file format --------------------------------------------------------------------------


def _complete(value: dict[str, str], info: _Info) -> dict[str, str]:
    """Every localized field carries exactly the catalogue's locales, none empty."""
    locales: tuple[str, ...] = (info.context or {}).get("locales", DEFAULT_LOCALES)
    missing = [loc for loc in locales if loc not in value]
    extra = sorted(set(value) - set(locales))
    if missing:
        raise ValueError(f"missing locale(s) {', '.join(missing)}")
    if extra:
        raise ValueError(f"unknown locale(s) {', '.join(extra)}; locales are {list(locales)}")
    empty = [loc for loc, text in value.items() if not text.strip()]
    if empty:
        raise ValueError(f"empty text for {', '.join(empty)}")
    return value


Localized = Annotated[dict[str, str], AfterValidator(_complete)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmailSpec(_Strict):
    subject: Localized
    text: Localized
    # Optional: without it the HTML part is derived from the text (paragraphs, links).
    html: Localized | None = None


class WhatsAppSpec(_Strict):
    # Exactly as approved by Meta: name, category, language code per locale, and the body
    # with {{1}}..{{n}} placeholders filled by `parameters` (Jinja, rendered per locale).
    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    category: Literal["utility", "marketing"] = "utility"
    language: Localized
    body: Localized
    parameters: list[str] = Field(default_factory=list)


class Suggestion(_Strict):
    """An RCS chip: a quick reply (postback) or an action opening a link or dialling."""

    reply: Localized | None = None
    open_url: str | None = None
    dial: str | None = None
    text: Localized | None = None
    postback: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")


class RcsSpec(_Strict):
    text: Localized
    suggestions: list[Suggestion] = Field(default_factory=list, max_length=11)


class SmsSpec(_Strict):
    text: Localized
    # More than one segment costs more and reads worse: allow it only on purpose.
    max_segments: int = Field(default=1, ge=1, le=4)


class InAppSpec(_Strict):
    title: Localized
    body: Localized
    url: str | None = None


class VoiceSpec(_Strict):
    subject: Localized
    brief: Localized


class VoiceAutoSpec(_Strict):
    text: Localized


class TemplateFile(_Strict):
    description: str
    requires: list[str] = Field(default_factory=list)
    email: EmailSpec | None = None
    whatsapp: WhatsAppSpec | None = None
    rcs: RcsSpec | None = None
    sms: SmsSpec | None = None
    in_app: InAppSpec | None = None
    voice: VoiceSpec | None = None
    voice_auto: VoiceAutoSpec | None = None


class LocalesFile(_Strict):
    locales: list[str] = Field(min_length=1)
    default: str
    # CRM language spellings (folded: case and accents away) → language code.
    language_names: dict[str, str] = Field(default_factory=dict)
    # Language code → countries (ISO alpha-2) where it is the business language.
    country_languages: dict[str, list[str]] = Field(default_factory=dict)
    # Words shown to people (channels, stages, statuses) per locale, for the `label` filter.
    labels: dict[str, dict[str, str]] = Field(default_factory=dict)


# --- YAML with lines ----------------------------------------------------------------------------


_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """(data, node tree) of a YAML file; the nodes give line numbers for later problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{path}: cannot be read ({exc.strerror})") from None
    # One parse (libyaml when available) gives both the nodes and the data.
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), root
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise TemplateError(f"{path}:{where} {problem}") from None
    finally:
        loader.dispose()


def _where(path: Path, root: yaml.Node | None, loc: tuple[Any, ...]) -> str:
    line = _key_line(root, loc)
    return f"{path}: line {line}" if line else f"{path}"


def _key_line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The line of the key a location ends with (`text:` rather than the block below it, the
    misspelt key itself), else the line of the value (list items)."""
    if loc and not isinstance(loc[-1], int):
        parent = _node_at(root, loc[:-1])
        if isinstance(parent, yaml.MappingNode):
            for key, _ in parent.value:
                if str(key.value) == str(loc[-1]):
                    return key.start_mark.line + 1
    return _line_of(root, loc)


def _validation_problems(exc: ValidationError, path: Path, root: yaml.Node | None) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        field = ".".join(str(p) for p in loc) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{_where(path, root, loc)}: {field}: {message}")
    return problems


# --- formatting -----------------------------------------------------------------------------------


class _Missing(jinja2.StrictUndefined):
    """A context value that is None: falsy (so `{% if x %}` and `x | default(..)` work), but
    printing it or passing it to a filter fails naming the key."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False


def _missing(name: str) -> _Missing:
    return _Missing(
        hint=f"'{name}' is None in the context and the template needs it "
        f"(guard it with {{% if {name} %}} or list it under `requires`)",
        name=name,
    )


_MISSING: dict[str, _Missing] = {k: _missing(k) for k in CONTEXT_KEYS}


def _is_missing(value: Any) -> bool:
    """None, NaN, and pandas' NaT/NA (frames hand those over for empty cells)."""
    return (
        value is None
        or (isinstance(value, float) and value != value)
        or type(value).__name__ in ("NaTType", "NAType")
    )


def _fail_if_undefined(*values: Any) -> None:
    for value in values:
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()


@lru_cache(maxsize=256)
def _babel(locale: str) -> Locale:
    return Locale.parse(locale.replace("-", "_"))


@lru_cache(maxsize=1024)
def _format_locale(variant: str, wanted: str | None) -> str:
    """The context's locale when it refines the variant's language (es_MX for es), else the
    variant's: money and dates look local while the words stay the template's."""
    if wanted and wanted != variant:
        try:
            parsed = _babel(wanted)
        except (ValueError, UnknownLocaleError):
            return variant
        if parsed.language == _babel(variant).language:
            return str(parsed)
    return variant


_MONEY_PROBES = (0.0, 0.5, 7, 12.345, 999.99, 1000.0, 1234.56, 12345.678, 1234567.891, 2.675,
                 1_000_000_000.5, 100, 0.005)  # fmt: skip


@lru_cache(maxsize=512)
def _money_formatter(locale: str, currency: str) -> Callable[[Any], str]:
    """A fast formatter for non-negative amounts, used only if it matches Babel exactly on
    probes (rounding, grouping, symbol placement); Babel's own pattern engine costs ~50 us a
    call, which is most of an email's rendering time."""
    loc = _babel(locale)

    def slow(amount: Any) -> str:
        return format_currency(amount, currency, locale=loc)

    digits = get_currency_precision(currency)
    quantum = Decimal(1).scaleb(-digits)
    seps = str.maketrans({",": get_group_symbol(loc), ".": get_decimal_symbol(loc)})

    def body(amount: Any) -> str:
        value = Decimal(repr(float(amount))) if isinstance(amount, float) else Decimal(amount)
        return format(value.quantize(quantum, ROUND_HALF_EVEN), f",.{digits}f").translate(seps)

    sample, core = slow(1234567), body(1234567)
    if sample.count(core) != 1:
        return slow
    prefix, suffix = sample.split(core)

    def fast(amount: Any) -> str:
        if isinstance(amount, (int, float, Decimal)) and amount >= 0:
            return prefix + body(amount) + suffix
        return slow(amount)

    if all(fast(x) == slow(x) for x in _MONEY_PROBES):
        return fast
    return slow


def _filter_money(ctx: jinja2.runtime.Context, amount: Any, currency: Any) -> str:
    _fail_if_undefined(amount, currency)
    if _is_missing(amount):
        raise jinja2.UndefinedError("money: the amount is missing (None or NaN)")
    if not currency:
        raise jinja2.UndefinedError("money: no currency")
    return _money_formatter(ctx["locale"], str(currency))(amount)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    raise jinja2.UndefinedError(f"expected a date, got {value!r}")


def _filter_day(ctx: jinja2.runtime.Context, value: Any, format: str = "long") -> str:
    _fail_if_undefined(value)
    day = _as_date(value)
    if isinstance(day, dt.datetime):
        day = day.date()
    return _format_day(day, format, ctx["locale"])


@lru_cache(maxsize=8192)
def _format_day(day: dt.date, format: str, locale: str) -> str:
    """Cached: a run's messages share few distinct dates (due dates, renewal dates)."""
    return format_date(day, format, locale=_babel(locale))


def _filter_datetime(ctx: jinja2.runtime.Context, value: Any, format: str = "short") -> str:
    _fail_if_undefined(value)
    moment = _as_date(value)
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time())
    # Shown in the time zone it carries (the recipient's or UTC): never silently shifted.
    return format_datetime(moment, format, tzinfo=moment.tzinfo, locale=_babel(ctx["locale"]))


def _finalize(value: Any) -> Any:
    if value is None:
        raise jinja2.UndefinedError("an expression printed None (a nested value is missing)")
    return value


def _environment(autoescape: bool, labels: Mapping[str, Mapping[str, str]]) -> jinja2.Environment:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=_finalize,
        auto_reload=False,
        cache_size=0,
    )

    @jinja2.pass_context
    def label(ctx: jinja2.runtime.Context, value: Any) -> str:
        _fail_if_undefined(value)
        lang = _babel(ctx["locale"]).language
        key = str(value)
        return labels.get(lang, {}).get(key) or key.replace("_", " ")

    env.filters["money"] = jinja2.pass_context(_filter_money)
    env.filters["day"] = jinja2.pass_context(_filter_day)
    env.filters["datetime"] = jinja2.pass_context(_filter_datetime)
    env.filters["label"] = label
    env.tests["none"] = lambda v: v is None or isinstance(v, _Missing)
    return env


# --- SMS: what the handset receives ---------------------------------------------------------------

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")
# Characters outside GSM-7 with a look-alike inside it. One "ó" would otherwise switch the
# whole SMS to UCS-2 (70 characters a segment instead of 160), doubling the cost of Spanish.
_GSM_LOOKALIKE = str.maketrans(
    {
        "á": "a", "í": "i", "ó": "o", "ú": "u", "Á": "A", "Í": "I", "Ó": "O", "Ú": "U",
        "â": "a", "ê": "e", "î": "i", "ô": "o", "û": "u", "ã": "a", "õ": "o", "ç": "c",
        "È": "E", "Ì": "I", "Ò": "O", "Ù": "U", "À": "A", "Â": "A", "Ê": "E", "Ô": "O",
        "Ã": "A", "Õ": "O", "ë": "e", "ï": "i", "ª": "a", "º": "o",
        "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ",
        "‘": "'", "’": "'", "“": '"', "”": '"', "«": '"', "»": '"', "–": "-", "—": "-",
        "…": "...", "•": "-", "\t": " ",
    }
)  # fmt: skip


def sms_text(text: str) -> str:
    """The SMS as sent: look-alikes for characters GSM-7 lacks (as Twilio's smart encoding
    does), so a Spanish SMS stays one 160-character segment."""
    return text.translate(_GSM_LOOKALIKE)


def sms_segments(text: str) -> tuple[str, int, int]:
    """(encoding, length in that encoding's units, segments) of an SMS body."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        units = len(text) + sum(ch in _GSM_EXTENDED for ch in text)
        single, part, encoding = SMS_GSM_SINGLE, SMS_GSM_PART, "gsm7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = SMS_UCS2_SINGLE, SMS_UCS2_PART, "ucs2"
    return encoding, units, 1 if units <= single else math.ceil(units / part)


# --- HTML derived from the text part --------------------------------------------------------------

_URL = re.compile(r"https?://[^\s<>\"')]+[^\s<>\"').,;:]")


def _html_from_text(text: str, lang: str) -> str:
    """A plain, accessible HTML part from the text part: paragraphs, line breaks, links."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        escaped = str(escape(block))
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    body = "\n".join(paragraphs)
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"></head>\n'
        f'<body style="font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5;'
        f'color:#222">\n{body}\n</body></html>'
    )


# --- compiled variants --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """One Jinja source of a variant, compiled, with where it came from."""

    name: str  # e.g. "email.subject", "whatsapp.parameters.1"
    source: str
    where: str  # "<file>: line <n>", where the source starts
    compiled: jinja2.Template


@dataclass(frozen=True)
class _Variant:
    template: str
    channel: str
    locale: str
    path: Path
    spec: Any  # the channel's section of the file (EmailSpec, WhatsAppSpec...)
    fields: dict[str, _Field]
    build: Callable[[_Variant, dict[str, Any]], Rendered]

    def text(self, name: str, values: dict[str, Any]) -> str:
        field = self.fields[name]
        try:
            return field.compiled.render(values)
        except jinja2.UndefinedError as exc:
            problem = exc.message
        except TemplateError:
            raise
        except Exception as exc:  # a filter given the wrong type, a bad format...
            problem = f"{type(exc).__name__}: {exc}"
        raise TemplateError(f"{field.where}: {self.template} {name} ({self.locale}): {problem}")


_BREAKS = re.compile(r"[ \t\r\n\f\v]+")


def _one_line(text: str) -> str:
    """Subjects, titles and parameters are single lines, however the source wraps (no-break
    spaces, as in "1.234,56\u00a0€", are kept)."""
    return _BREAKS.sub(" ", text).strip()


def _build_email(v: _Variant, values: dict[str, Any]) -> Rendered:
    subject = _one_line(v.text("email.subject", values))
    text = v.text("email.text", values)
    html = (
        v.text("email.html", values)
        if "email.html" in v.fields
        else _html_from_text(text, v.locale)
    )
    unsubscribe = values["unsubscribe_url"]
    return Rendered(
        subject=subject,
        text=text,
        html=html,
        url=unsubscribe if isinstance(unsubscribe, str) else None,
    )


_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")


def _build_whatsapp(v: _Variant, values: dict[str, Any]) -> Rendered:
    spec: WhatsAppSpec = v.spec
    params = []
    for i in range(len(spec.parameters)):
        name = f"whatsapp.parameters.{i}"
        value = _one_line(v.text(name, values))
        if not value:
            # Meta rejects an empty parameter; better to fail here, naming it.
            raise TemplateError(
                f"{v.template} {name} ({v.locale}): renders empty "
                f"({spec.parameters[i]!r}); WhatsApp rejects empty parameters"
            )
        params.append(value)
    body = _PLACEHOLDER.sub(lambda m: params[int(m.group(1)) - 1], spec.body[v.locale])
    return Rendered(
        text=body,
        wa_name=spec.name,
        wa_language=spec.language[v.locale],
        wa_parameters=tuple(params),
    )


def _build_rcs(v: _Variant, values: dict[str, Any]) -> Rendered:
    spec: RcsSpec = v.spec
    chips: list[dict[str, Any]] = []
    for i, s in enumerate(spec.suggestions):
        if s.reply is not None:
            chips.append({"reply": {"text": s.reply[v.locale], "postbackData": s.postback}})
            continue
        label = s.text[v.locale] if s.text else ""
        if s.open_url is not None:
            url = v.text(f"rcs.suggestions.{i}.open_url", values).strip()
            action = {"openUrlAction": {"url": url}}
            default = "open_url"
        else:
            # RBM wants E.164: "+34 910 123 456" as people write it becomes "+34910123456".
            phone = re.sub(r"[\s().-]", "", v.text(f"rcs.suggestions.{i}.dial", values))
            action = {"dialAction": {"phoneNumber": phone}}
            default = "dial"
        chips.append({"action": {"text": label, "postbackData": s.postback or default, **action}})
    return Rendered(text=v.text("rcs.text", values), suggestions=tuple(chips))


def _build_sms(v: _Variant, values: dict[str, Any]) -> Rendered:
    return Rendered(text=sms_text(v.text("sms.text", values)))


def _build_in_app(v: _Variant, values: dict[str, Any]) -> Rendered:
    url = v.text("in_app.url", values).strip() if "in_app.url" in v.fields else None
    return Rendered(
        title=_one_line(v.text("in_app.title", values)),
        text=v.text("in_app.body", values),
        url=url or None,
    )


def _build_voice(v: _Variant, values: dict[str, Any]) -> Rendered:
    return Rendered(subject=_one_line(v.text("voice.subject", values)),
                    text=v.text("voice.brief", values))  # fmt: skip


def _build_voice_auto(v: _Variant, values: dict[str, Any]) -> Rendered:
    return Rendered(text=_one_line(v.text("voice_auto.text", values)))


_BUILDERS: dict[str, Callable[[_Variant, dict[str, Any]], Rendered]] = {
    "email": _build_email,
    "whatsapp": _build_whatsapp,
    "rcs": _build_rcs,
    "sms": _build_sms,
    "in_app": _build_in_app,
    "voice": _build_voice,
    "voice_auto": _build_voice_auto,
}


def _sources(spec: BaseModel, channel: str, locale: str) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(field name, Jinja source, YAML path) of every field of a channel variant to compile."""
    out: list[tuple[str, str, tuple[Any, ...]]] = []
    if isinstance(spec, WhatsAppSpec):
        for i, param in enumerate(spec.parameters):
            out.append((f"{channel}.parameters.{i}", param, (channel, "parameters", i)))
        return out
    if isinstance(spec, RcsSpec):
        out.append(("rcs.text", spec.text[locale], ("rcs", "text", locale)))
        for i, s in enumerate(spec.suggestions):
            for key in ("open_url", "dial"):
                source = getattr(s, key)
                if source is not None:
                    out.append((f"rcs.suggestions.{i}.{key}", source,
                                ("rcs", "suggestions", i, key)))  # fmt: skip
        return out
    for key in type(spec).model_fields:
        value = getattr(spec, key)
        if isinstance(value, dict):
            out.append((f"{channel}.{key}", value[locale], (channel, key, locale)))
        elif isinstance(value, str):
            out.append((f"{channel}.{key}", value, (channel, key)))
    return out


# --- the catalogue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path
    spec: TemplateFile
    root: yaml.Node | None


class Catalogue:
    """Every template of a directory, validated at load and compiled on first use."""

    def __init__(
        self, entries: dict[str, _Entry], locales: tuple[str, ...], settings: LocalesFile,
        directory: Path,
    ) -> None:  # fmt: skip
        self._entries = entries
        self.locales = locales
        self.directory = directory
        self.settings = settings
        self._text_env = _environment(False, settings.labels)
        self._html_env = _environment(True, settings.labels)
        self._variants: dict[tuple[str, str, str], _Variant] = {}

    # -- loading --

    @classmethod
    def load(cls, directory: Path | None = None) -> Catalogue:
        """Read and validate every `<name>.yaml` (and `_locales.yaml`) of the directory."""
        directory = Path(directory) if directory is not None else TEMPLATES_DIR
        if not directory.is_dir():
            raise TemplateError(f"{directory}: no such template directory")
        settings = _load_locales(directory / LOCALES_FILE)
        locales = tuple(settings.locales)
        entries: dict[str, _Entry] = {}
        problems: list[str] = []
        for path in sorted(directory.iterdir()):
            if path.name.startswith(("_", ".")) or path.is_dir():
                continue
            if path.suffix != ".yaml" or not re.fullmatch(r"[a-z][a-z0-9_]*", path.stem):
                problems.append(f"{path}: template files are named <lowercase_name>.yaml")
                continue
            try:
                entries[path.stem] = _load_file(path, locales)
            except TemplateError as exc:
                problems.append(str(exc))
        problems.extend(_whatsapp_clashes(entries))
        if problems:
            raise TemplateError("\n".join(problems))
        return cls(entries, locales, settings, directory)

    # -- lookup --

    @property
    def templates(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries))

    def channels(self, template: str) -> tuple[str, ...]:
        entry = self._entries.get(template)
        if entry is None:
            return ()
        return tuple(c for c in VARIANTS if getattr(entry.spec, c) is not None)

    def has(self, template: str, channel: str, locale: str) -> bool:
        return locale in self.locales and channel in self.channels(template)

    def _variant(self, template: str, channel: str, locale: str) -> _Variant:
        key = (template, channel, locale)
        variant = self._variants.get(key)
        if variant is not None:
            return variant
        entry = self._entries.get(template)
        if entry is None:
            raise TemplateError(
                f"template '{template}': no file {self.directory / (template + '.yaml')}"
            )
        spec = getattr(entry.spec, channel, None) if channel in VARIANTS else None
        if spec is None:
            raise TemplateError(
                f"{entry.path}: template '{template}' has no '{channel}' variant"
                + ("" if channel in VARIANTS else f" (channels are {', '.join(VARIANTS)})")
            )
        if locale not in self.locales:
            raise TemplateError(
                f"{entry.path}: {channel}: no '{locale}' locale "
                f"(the catalogue has {', '.join(self.locales)})"
            )
        fields = {}
        for name, source, loc in _sources(spec, channel, locale):
            env = self._html_env if name == "email.html" else self._text_env
            try:
                compiled = env.from_string(source)
            except jinja2.TemplateSyntaxError as exc:
                line = _source_line(entry.root, loc, exc.lineno)
                where = f"{entry.path}: line {line}" if line else str(entry.path)
                raise TemplateError(
                    f"{where}: {name} ({locale}): Jinja syntax error: {exc.message}"
                ) from None
            fields[name] = _Field(name, source, _where(entry.path, entry.root, loc), compiled)
        variant = _Variant(template, channel, locale, entry.path, spec, fields, _BUILDERS[channel])
        self._variants[key] = variant
        return variant

    # -- rendering --

    def render(
        self, template: str, channel: str, locale: str, context: Mapping[str, Any]
    ) -> Rendered:
        """Render one variant. The context must hold exactly CONTEXT_KEYS; a None the
        template needs, or an unknown variable, raises naming template, channel, locale."""
        variant = self._variant(template, channel, locale)
        if context.keys() != CONTEXT_KEYS:
            missing = sorted(CONTEXT_KEYS - context.keys())
            extra = sorted(context.keys() - CONTEXT_KEYS)
            raise TemplateError(
                f"{template} {channel} ({locale}): context "
                + (f"lacks {missing}" if missing else "")
                + (" and " if missing and extra else "")
                + (f"has unknown key(s) {extra}" if extra else "")
            )
        values = {k: _MISSING[k] if _is_missing(v) else v for k, v in context.items()}
        values["locale"] = _format_locale(locale, context["locale"])
        return variant.build(variant, values)

    # -- checks --

    def check(self, needed: Iterable[tuple[str, str, str]]) -> list[str]:
        """Problems with the (template, channel, locale) variants a run may need: missing
        template, variant or locale; Jinja syntax; unknown variables; a failure to render the
        sample context (full, and with every nullable key the template does not `require` set
        to None); provider limits (SMS segments, RCS and WhatsApp lengths)."""
        problems: list[str] = []
        for template, channel, locale in sorted(set(needed)):
            try:
                variant = self._variant(template, channel, locale)
            except TemplateError as exc:
                problems.append(str(exc))
                continue
            problems.extend(self._check_variant(variant))
        return list(dict.fromkeys(problems))  # a missing variant is reported once

    def check_all(self) -> list[str]:
        """Every variant present in the catalogue, in every locale."""
        return self.check(
            (t, c, loc) for t in self._entries for c in self.channels(t) for loc in self.locales
        )

    def _check_variant(self, variant: _Variant) -> list[str]:
        entry = self._entries[variant.template]
        label = f"{variant.template} {variant.channel} ({variant.locale})"
        problems = []
        known = CONTEXT_KEYS | set(self._text_env.globals)
        for field in variant.fields.values():
            env = self._html_env if field.name == "email.html" else self._text_env
            unknown = sorted(meta.find_undeclared_variables(env.parse(field.source)) - known)
            if unknown:
                problems.append(
                    f"{field.where}: {field.name} ({variant.locale}): unknown variable(s) "
                    f"{', '.join(unknown)}; the context has {', '.join(sorted(CONTEXT_KEYS))}"
                )
        if problems:
            return problems
        full = sample_context(variant.locale)
        sparse = {
            k: None if k in NULLABLE_KEYS and k not in entry.spec.requires else v
            for k, v in full.items()
        }
        for name, context in (("sample context", full), ("sample context with Nones", sparse)):
            try:
                rendered = self.render(variant.template, variant.channel, variant.locale, context)
            except TemplateError as exc:
                problems.append(f"{exc} (with the {name})")
                continue
            limits = _limits(entry.spec, rendered, variant.channel)
            problems.extend(f"{entry.path}: {label}: {p}" for p in limits)
        return sorted(set(problems))

    def approved_whatsapp(self) -> dict[str, dict[str, int]]:
        """{template name at Meta: {language code: body parameter count}}: what must be
        approved at Meta (and what the WhatsApp sandbox accepts)."""
        out: dict[str, dict[str, int]] = {}
        for entry in self._entries.values():
            wa = entry.spec.whatsapp
            if wa is not None:
                for code in wa.language.values():
                    out.setdefault(wa.name, {})[code] = len(wa.parameters)
        return out

    def spec(self, template: str) -> TemplateFile:
        return self._entries[template].spec

    def lacking(self, template: str, channel: str, variable: str) -> list[str]:
        """The fields of a channel variant, in any locale, whose source does not use the
        variable (the HTML part counts only when written out; else it is the text's)."""
        out = []
        for locale in self.locales:
            for field in self._variant(template, channel, locale).fields.values():
                if field.name.endswith((".subject", ".title")) or ".parameters." in field.name:
                    continue
                env = self._html_env if field.name == "email.html" else self._text_env
                if variable not in meta.find_undeclared_variables(env.parse(field.source)):
                    out.append(f"{field.where}: {field.name} ({locale})")
        return out


def _limits(spec: TemplateFile, rendered: Rendered, channel: str) -> list[str]:
    problems = []
    if channel == "sms" and spec.sms is not None:
        encoding, units, segments = sms_segments(rendered.text)
        if segments > spec.sms.max_segments:
            problems.append(
                f"{units} {encoding} characters is {segments} SMS segments "
                f"(max_segments: {spec.sms.max_segments}): {rendered.text!r}"
            )
    elif channel == "rcs" and len(rendered.text) > RCS_TEXT_MAX:
        problems.append(f"text is {len(rendered.text)} characters (RBM allows {RCS_TEXT_MAX})")
    elif channel == "whatsapp" and len(rendered.text) > WA_BODY_MAX:
        problems.append(f"body is {len(rendered.text)} characters (Meta allows {WA_BODY_MAX})")
    elif channel == "email" and not rendered.subject:
        problems.append("the subject renders empty")
    return problems


def _source_line(root: yaml.Node | None, loc: tuple[Any, ...], lineno: int | None) -> int | None:
    """The file line of a line inside a Jinja source held in YAML at `loc`."""
    node = _node_at(root, loc)
    if node is None:
        return _line_of(root, loc)
    first = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        first += 1  # a block scalar's text starts below its indicator
    return first + max((lineno or 1) - 1, 0)


def _node_at(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if str(k.value) == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            return None
    return node


def _load_file(path: Path, locales: tuple[str, ...]) -> _Entry:
    raw, root = _read_yaml(path)
    if not isinstance(raw, dict):
        raise TemplateError(f"{path}: expected a mapping of channels at the top level")
    duplicates = _duplicate_keys(root)
    if duplicates:
        raise TemplateError(
            "\n".join(f"{path}: line {n}: '{k}' is given twice" for n, k in duplicates)
        )
    try:
        spec = TemplateFile.model_validate(raw, context={"locales": locales})
    except ValidationError as exc:
        raise TemplateError("\n".join(_validation_problems(exc, path, root))) from None
    problems = _file_problems(spec, path, root)
    if problems:
        raise TemplateError("\n".join(problems))
    return _Entry(path.stem, path, spec, root)


def _duplicate_keys(node: yaml.Node | None) -> list[tuple[int, str]]:
    """(line, key) of keys repeated in a mapping: YAML keeps the last one silently, so a
    pasted second `es:` would replace the first translation without a word."""
    out: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                out.append((key.start_mark.line + 1, name))
            seen.add(name)
            out.extend(_duplicate_keys(value))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out.extend(_duplicate_keys(item))
    return out


def _file_problems(spec: TemplateFile, path: Path, root: yaml.Node | None) -> list[str]:
    """Rules a schema cannot say: placeholders match parameters, chips are well formed."""
    problems = []
    unknown = sorted(set(spec.requires) - NULLABLE_KEYS)
    if unknown:
        problems.append(
            f"{_where(path, root, ('requires',))}: requires: {unknown} are not nullable "
            f"context keys ({', '.join(sorted(NULLABLE_KEYS))})"
        )
    if not any(getattr(spec, c) is not None for c in VARIANTS):
        problems.append(f"{path}: no channel variant ({', '.join(VARIANTS)})")
    wa = spec.whatsapp
    if wa is not None:
        for locale, body in wa.body.items():
            numbers = [int(n) for n in _PLACEHOLDER.findall(body)]
            expected = list(range(1, len(wa.parameters) + 1))
            where = _where(path, root, ("whatsapp", "body", locale))
            if sorted(set(numbers)) != expected:
                problems.append(
                    f"{where}: whatsapp.body ({locale}): placeholders {sorted(set(numbers))} "
                    f"do not match the {len(wa.parameters)} parameter(s) ({{{{1}}}}..)"
                )
            stripped = body.strip()
            if _PLACEHOLDER.match(stripped) or re.search(r"\{\{\s*\d+\s*\}\}$", stripped):
                problems.append(
                    f"{where}: whatsapp.body ({locale}): Meta rejects a body that starts or "
                    "ends with a placeholder"
                )
        for locale, code in wa.language.items():
            if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", code):
                problems.append(
                    f"{_where(path, root, ('whatsapp', 'language', locale))}: "
                    f"whatsapp.language ({locale}): '{code}' is not a Meta language code "
                    "(es, es_MX, en_US...)"
                )
    if spec.rcs is not None:
        for i, s in enumerate(spec.rcs.suggestions):
            where = _where(path, root, ("rcs", "suggestions", i))
            kinds = [k for k in ("reply", "open_url", "dial") if getattr(s, k) is not None]
            if len(kinds) != 1:
                problems.append(
                    f"{where}: rcs.suggestions.{i}: give exactly one of reply, open_url, dial"
                )
                continue
            if kinds == ["reply"] and s.postback is None:
                problems.append(f"{where}: rcs.suggestions.{i}: a reply needs a postback")
            if kinds != ["reply"] and s.text is None:
                problems.append(f"{where}: rcs.suggestions.{i}: an action needs a text")
            for locale, label in (s.reply or s.text or {}).items():
                if len(label) > RCS_LABEL_MAX:
                    problems.append(
                        f"{where}: rcs.suggestions.{i} ({locale}): '{label}' is longer than "
                        f"{RCS_LABEL_MAX} characters"
                    )
    return problems


def _whatsapp_clashes(entries: dict[str, _Entry]) -> list[str]:
    seen: dict[str, Path] = {}
    problems = []
    for entry in entries.values():
        wa = entry.spec.whatsapp
        if wa is None:
            continue
        if wa.name in seen:
            problems.append(
                f"{_where(entry.path, entry.root, ('whatsapp', 'name'))}: whatsapp.name "
                f"'{wa.name}' is also used by {seen[wa.name]}"
            )
        seen[wa.name] = entry.path
    return problems


def _load_locales(path: Path) -> LocalesFile:
    if not path.exists():
        return LocalesFile(locales=list(DEFAULT_LOCALES), default=DEFAULT_LOCALES[-1])
    raw, root = _read_yaml(path)
    if not isinstance(raw, dict):
        raise TemplateError(f"{path}: expected a mapping at the top level")
    try:
        settings = LocalesFile.model_validate(raw)
    except ValidationError as exc:
        raise TemplateError("\n".join(_validation_problems(exc, path, root))) from None
    bad = [loc for loc in settings.locales if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", loc)]
    if bad:
        raise TemplateError(f"{_where(path, root, ('locales',))}: locales: bad code(s) {bad}")
    for loc in settings.locales:
        try:
            _babel(loc)
        except (ValueError, UnknownLocaleError):
            raise TemplateError(
                f"{_where(path, root, ('locales',))}: locales: Babel does not know '{loc}'"
            ) from None
    if settings.default not in settings.locales:
        raise TemplateError(
            f"{_where(path, root, ('default',))}: default: '{settings.default}' is not one of "
            f"the locales {settings.locales}"
        )
    return settings


# --- sample context -----------------------------------------------------------------------------


def sample_context(locale: str) -> dict[str, Any]:
    """Realistic values for every context key, in the locale's market (Spain for es, the US
    for en otherwise): what `check` renders every variant with."""
    spanish = locale.split("_")[0] == "es"
    currency = "EUR" if spanish else "USD"
    tz = dt.timezone(dt.timedelta(hours=1 if spanish else -5))
    invoices = [
        {"number": "FV-2025-00318", "due_date": dt.date(2025, 1, 31), "open_amount": 2150.0,
         "currency": currency, "days_overdue": 47},
        {"number": "FV-2025-00402", "due_date": dt.date(2025, 2, 28), "open_amount": 1280.5,
         "currency": currency, "days_overdue": 19},
        {"number": "FV-2025-00477", "due_date": dt.date(2025, 3, 15), "open_amount": 750.0,
         "currency": currency, "days_overdue": 4},
    ]  # fmt: skip
    touches = [
        {"at": dt.datetime(2025, 3, 4, 10, 12, tzinfo=tz), "channel": "email",
         "step": "preventive_invoice_copy", "status": "opened"},
        {"at": dt.datetime(2025, 3, 11, 9, 40, tzinfo=tz), "channel": "whatsapp",
         "step": "early_reactivation", "status": "read"},
        {"at": dt.datetime(2025, 3, 14, 16, 5, tzinfo=tz), "channel": "voice",
         "step": "early_negotiation_call", "status": "no_answer"},
    ]  # fmt: skip
    if spanish:
        people = ("Lucía", "Fernández Ruiz", "Distribuciones Alba S.L.", "Lumen Cloud")
        support = ("cobros@lumencloud.es", "+34 910 123 456", "lumencloud.es")
        staff = ("Marta Soler", "Javier Ortega")
    else:
        people = ("Emma", "Clarke", "Northwind Supplies Inc.", "Lumen Cloud")
        support = ("billing@lumencloud.com", "+1 415 555 0142", "lumencloud.com")
        staff = ("Rachel Young", "David Kim")
    first, last, account, company = people
    return {
        "first_name": first,
        "last_name": last,
        "full_name": f"{first} {last}",
        "account_id": "ACC-004217",
        "account_name": account,
        "company_name": company,
        "support_email": support[0],
        "support_phone": support[1],
        "kind": "collections",
        "stage": "advanced",
        "amount": 4180.5,
        "currency": currency,
        "open_invoices": len(invoices),
        "worst_days_overdue": 47,
        "due_date": dt.date(2025, 1, 31),
        "renewal_date": dt.date(2025, 4, 30),
        "promise_date": dt.date(2025, 3, 28),
        "promise_amount": 2150.0,
        "owner": staff[0],
        "assignee": staff[1],
        "pay_url": f"https://pay.{support[2]}/i/7KQ2XZ",
        "portal_url": f"https://app.{support[2]}/billing",
        "unsubscribe_url": f"https://{support[2]}/u/7KQ2XZ",
        "invoices": invoices,
        "last_touches": touches,
        "step": "advanced_notice",
        "locale": locale,
    }


# --- locale choice ------------------------------------------------------------------------------


@cache
def _shipped_locales() -> LocalesFile:
    return _load_locales(TEMPLATES_DIR / LOCALES_FILE)


@cache
def _country_spellings() -> dict[str, str]:
    data = yaml.safe_load(COUNTRIES_FILE.read_text(encoding="utf-8"))
    return {fold(str(k).replace(".", "")): str(v).upper() for k, v in data["spellings"].items()}


def fold(text: str) -> str:
    """Case, accents and spacing folded away, as tasks.contacts.countries compares them."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def _language_code(language: str, names: Mapping[str, str]) -> str | None:
    folded = fold(language.replace(".", ""))
    if folded in names:
        return names[folded]
    first = re.split(r"[\s_\-/,()]+", folded, maxsplit=1)[0]
    if first in names:
        return names[first]
    return first if re.fullmatch(r"[a-z]{2}", first) else None


def _region(country: str) -> str | None:
    text = country.strip()
    if re.fullmatch(r"[A-Za-z]{2}", text):
        return text.upper()
    return _country_spellings().get(fold(text.replace(".", "")))


def locale_for(
    language: str | None, country: str | None, supported: Iterable[str] | None = None
) -> str:
    """The template locale for a contact: the CRM language when we write it ("es", "es_MX",
    "en-US", "Spanish", "Español"), else the country's business language, else the default.
    `supported` defaults to the shipped catalogue's locales."""
    return _locale_for(
        language.strip() if isinstance(language, str) else None,
        country.strip() if isinstance(country, str) else None,
        tuple(supported) if supported is not None else None,
    )


@lru_cache(maxsize=4096)
def _locale_for(
    language: str | None, country: str | None, supported: tuple[str, ...] | None
) -> str:
    settings = _shipped_locales()
    locales = supported or tuple(settings.locales)
    names = {fold(k): v for k, v in settings.language_names.items()}
    default = settings.default if settings.default in locales else locales[0]
    if language:
        code = _language_code(language, names)
        if code in locales:
            return code
    if country:
        region = _region(country)
        for code, regions in settings.country_languages.items():
            if region in regions and code in locales:
                return code
    return default


# --- against the policy ---------------------------------------------------------------------------


def policy_variants(policy: OutreachPolicy) -> set[tuple[str, str, str]]:
    """Every (template, channel, purpose) the policy can produce, with in_app for every step
    that is not a call: a contact active in the product gets any message in-app instead."""
    out: set[tuple[str, str, str]] = set()
    for cadence in policy.cadences.values():
        for step in policy.steps_of(cadence):
            for channel in step.channels:
                out.add((step.template, channel, step.purpose))
            if step.channels != ["voice"]:
                out.add((step.template, "in_app", step.purpose))
    return out


def check_policy(catalogue: Catalogue, policy: OutreachPolicy) -> list[str]:
    """Everything the policy can send exists in every locale and renders; marketing email
    carries the unsubscribe link; WhatsApp categories match the purpose; any optional
    voice_auto text renders too. An empty list means the catalogue is ready."""
    variants = policy_variants(policy)
    needed = {(t, c, loc) for t, c, _ in variants for loc in catalogue.locales}
    needed |= {
        (t, "voice_auto", loc)
        for t in catalogue.templates
        if "voice_auto" in catalogue.channels(t)
        for loc in catalogue.locales
    }
    problems = catalogue.check(needed)
    purposes: dict[str, set[str]] = {}
    for template, channel, purpose in variants:
        if not catalogue.has(template, channel, catalogue.locales[0]):
            continue  # already reported
        if channel == "email" and purpose == "marketing":
            try:
                lacking = catalogue.lacking(template, "email", "unsubscribe_url")
            except TemplateError:
                continue  # a syntax error, already reported
            problems.extend(
                f"{where}: {template} email is sent as marketing and must link "
                "{{ unsubscribe_url }}"
                for where in lacking
            )
        if channel == "whatsapp":
            purposes.setdefault(template, set()).add(purpose)
    for template, used in sorted(purposes.items()):
        category = catalogue.spec(template).whatsapp.category  # type: ignore[union-attr]
        wanted = "marketing" if "marketing" in used else "utility"
        if len(used) > 1 or category != wanted:
            problems.append(
                f"{catalogue.directory / (template + '.yaml')}: {template} whatsapp is approved "
                f"as {category} but sent for {' and '.join(sorted(used))} purposes "
                "(Meta: utility for service messages, marketing otherwise)"
            )
    return problems


__all__ = [
    "CONTEXT_KEYS",
    "NULLABLE_KEYS",
    "Catalogue",
    "Rendered",
    "TemplateError",
    "check_policy",
    "locale_for",
    "policy_variants",
    "sample_context",
    "sms_segments",
    "sms_text",
]
