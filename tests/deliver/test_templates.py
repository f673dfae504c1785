"""Message templates: the shipped catalogue against the shipped policy, locale formats, and the
errors a copy editor gets for a broken file (with the line to fix)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from config.outreach_policy import outreach_policy
from tasks.deliver.templates import (
    CONTEXT_KEYS,
    TEMPLATES_DIR,
    Catalogue,
    TemplateError,
    check_policy,
    locale_for,
    policy_variants,
    sample_context,
    sms_segments,
    sms_text,
)


@pytest.fixture(scope="module")
def shipped() -> Catalogue:
    return Catalogue.load()


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


MINIMAL = """
description: A test template.
email:
  subject: {es: "Hola", en: "Hello"}
  text:
    es: "Hola, equipo de {{ account_name }}"
    en: "Hello {{ account_name }} team"
"""


# --- the shipped catalogue ----------------------------------------------------------------------


def test_shipped_catalogue_covers_the_shipped_policy(shipped: Catalogue) -> None:
    assert shipped.locales == ("es", "en")
    assert check_policy(shipped, outreach_policy()) == []


def test_every_shipped_variant_renders(shipped: Catalogue) -> None:
    # Including those the policy does not use today (voice_auto).
    assert shipped.check_all() == []
    assert {t for t in shipped.templates if "voice_auto" in shipped.channels(t)} == {
        "payment_reminder",
        "overdue_notice",
    }


def test_policy_variants_add_in_app_to_every_message_step_but_not_to_calls() -> None:
    variants = policy_variants(outreach_policy())
    assert ("payment_reminder", "whatsapp", "service") in variants
    assert ("payment_reminder", "in_app", "service") in variants
    assert ("renewal_nudge", "in_app", "marketing") in variants
    assert ("collections_call", "voice", "service") in variants
    assert ("collections_call", "in_app", "service") not in variants
    voice_only = {t for t, c, _ in variants if c == "voice"}
    assert not {t for t, c, _ in variants if c == "in_app"} & voice_only


def test_spanish_and_english_money_and_dates(shipped: Catalogue) -> None:
    for locale, money, day in (
        ("es", "1.234,56\u00a0€", "5 de marzo de 2025"),
        ("en", "€1,234.56", "March 5, 2025"),
    ):
        ctx = sample_context(locale) | {
            "amount": 1234.56,
            "currency": "EUR",
            "due_date": dt.date(2025, 3, 5),
        }
        email = shipped.render("payment_reminder", "email", locale, ctx)
        assert money in email.subject and money in email.text
        wa = shipped.render("payment_reminder", "whatsapp", locale, ctx)
        assert wa.wa_parameters[1:3] == (money, day)
        assert money in wa.text and day in wa.text and "{{" not in wa.text


def test_context_locale_refines_formats_but_not_words(shipped: Catalogue) -> None:
    # A Mexican contact reads Spanish copy with Mexican money formatting.
    ctx = sample_context("es") | {"amount": 1234.5, "currency": "MXN", "locale": "es_MX"}
    rendered = shipped.render("payment_reminder", "in_app", "es", ctx)
    assert rendered.title == "Pago pendiente: $1,234.50"
    # A locale of another language does not change the formats of this variant.
    ctx["locale"] = "en_US"
    assert "1.234,50" in shipped.render("payment_reminder", "in_app", "es", ctx).title


def test_channel_shapes(shipped: Catalogue) -> None:
    ctx = sample_context("es")
    rcs = shipped.render("payment_reminder", "rcs", "es", ctx)
    assert rcs.suggestions[0] == {"reply": {"text": "Ya he pagado", "postbackData": "paid"}}
    assert rcs.suggestions[1]["action"]["openUrlAction"] == {"url": ctx["pay_url"]}
    in_app = shipped.render("payment_reminder", "in_app", "es", ctx)
    assert in_app.title and in_app.text and in_app.url == ctx["pay_url"]
    call = shipped.render("collections_call", "voice", "es", ctx)
    assert call.subject.startswith("Llamada de cobro") and "\n" not in call.subject
    assert all(i["number"] in call.text for i in ctx["invoices"])
    assert "llamada de negociación" in call.text  # steps and channels shown as words
    marketing = shipped.render("renewal_nudge", "email", "en", sample_context("en"))
    assert marketing.url == sample_context("en")["unsubscribe_url"]
    assert marketing.html and sample_context("en")["unsubscribe_url"] in marketing.html


def test_html_escapes_context_values(shipped: Catalogue) -> None:
    ctx = sample_context("en") | {"account_name": "Smith & <b>Sons</b>"}
    explicit = shipped.render("invoice_copy", "email", "en", ctx).html
    derived = shipped.render("payment_reminder", "email", "en", ctx).html
    for html in (explicit, derived):
        assert "Smith &amp; &lt;b&gt;Sons&lt;/b&gt;" in html and "<b>Sons" not in html
    # The text part stays as written.
    assert "Smith & <b>Sons</b>" in shipped.render("invoice_copy", "email", "en", ctx).text


def test_sms_fit_one_segment_with_sample_values(shipped: Catalogue) -> None:
    sms = [t for t in shipped.templates if "sms" in shipped.channels(t)]
    assert len(sms) >= 4
    for template in sms:
        for locale in shipped.locales:
            text = shipped.render(template, "sms", locale, sample_context(locale)).text
            encoding, units, segments = sms_segments(text)
            assert (encoding, segments) == ("gsm7", 1), (template, locale, units, text)
            assert units <= 160


def test_sms_encoding() -> None:
    # Spanish accents outside GSM-7 become look-alikes; ñ, é and ¿ are GSM-7 already.
    assert sms_text("Está pendiente: 1.234,56\u00a0€ ¿Ya pagó? Año") == (
        "Esta pendiente: 1.234,56 € ¿Ya pago? Año"
    )
    assert sms_segments("a" * 160) == ("gsm7", 160, 1)
    assert sms_segments("€" * 80) == ("gsm7", 160, 1)  # the euro sign takes two septets
    assert sms_segments("a" * 161) == ("gsm7", 161, 2)
    assert sms_segments("😀" + "a" * 60) == ("ucs2", 62, 1)
    assert sms_segments("ó" * 71) == ("ucs2", 71, 2)


def test_approved_whatsapp_counts_parameters(shipped: Catalogue) -> None:
    approved = shipped.approved_whatsapp()
    assert approved["payment_reminder"] == {"es": 4, "en": 4}
    assert approved["renewal_nudge"] == {"es": 3, "en": 3}
    assert set(approved) == {
        "payment_reminder",
        "payment_reactivation",
        "overdue_notice",
        "renewal_nudge",
    }
    for name, languages in approved.items():
        rendered = shipped.render(name, "whatsapp", "en", sample_context("en"))
        assert len(rendered.wa_parameters) == languages[rendered.wa_language]


# --- rendering errors ---------------------------------------------------------------------------


def test_a_needed_none_names_the_variable(shipped: Catalogue) -> None:
    ctx = sample_context("es") | {"due_date": None}
    with pytest.raises(TemplateError) as err:
        shipped.render("payment_reminder", "sms", "es", ctx)
    message = str(err.value)
    assert "payment_reminder" in message and "sms" in message and "(es)" in message
    assert "'due_date' is None" in message


def test_optional_values_may_be_none(shipped: Catalogue) -> None:
    ctx = sample_context("es") | {"first_name": None, "full_name": None, "owner": None}
    email = shipped.render("payment_reminder", "email", "es", ctx)
    assert email.text.startswith("Hola:\n")
    wa = shipped.render("payment_reminder", "whatsapp", "es", ctx)
    assert wa.wa_parameters[0] == "Distribuciones Alba S.L"  # no doubled full stop
    nan = sample_context("en") | {"promise_amount": float("nan")}
    with pytest.raises(TemplateError, match="'promise_amount' is None"):
        shipped.render("promise_confirmation", "email", "en", nan)


def test_the_context_must_hold_exactly_the_documented_keys(shipped: Catalogue) -> None:
    ctx = sample_context("en")
    del ctx["pay_url"]
    with pytest.raises(TemplateError, match=r"lacks \['pay_url'\]"):
        shipped.render("payment_reminder", "sms", "en", ctx)
    with pytest.raises(TemplateError, match=r"unknown key\(s\) \['balance'\]"):
        shipped.render("payment_reminder", "sms", "en", sample_context("en") | {"balance": 1})
    assert set(sample_context("es")) == CONTEXT_KEYS


def test_missing_template_channel_or_locale(shipped: Catalogue) -> None:
    problems = shipped.check(
        [
            ("no_such_template", "email", "es"),
            ("collections_call", "email", "es"),
            ("payment_reminder", "sms", "pt"),
        ]  # fmt: skip
    )
    assert len(problems) == 3
    assert any("no_such_template" in p and "no file" in p for p in problems)
    assert any("collections_call" in p and "no 'email' variant" in p for p in problems)
    assert any("no 'pt' locale" in p for p in problems)
    assert not shipped.has("collections_call", "email", "es")
    assert shipped.has("collections_call", "voice", "en")
    with pytest.raises(TemplateError, match="no 'whatsapp' variant"):
        shipped.render("invoice_copy", "whatsapp", "es", sample_context("es"))


# --- broken files -------------------------------------------------------------------------------


def test_unknown_variable_is_reported_with_its_line(tmp_path: Path) -> None:
    write(
        tmp_path, "demo.yaml", MINIMAL.replace("Hello {{ account_name }}", "Hi {{ acount_name }}")
    )
    catalogue = Catalogue.load(tmp_path)
    problems = catalogue.check([("demo", "email", "en"), ("demo", "email", "es")])
    assert len(problems) == 1
    assert "demo.yaml: line 6: email.text (en): unknown variable(s) acount_name" in problems[0]
    with pytest.raises(TemplateError, match="'acount_name' is undefined"):
        catalogue.render("demo", "email", "en", sample_context("en"))


def test_a_nullable_value_used_unguarded_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "demo.yaml", MINIMAL.replace("{{ account_name }} team", "{{ first_name }}"))
    problems = Catalogue.load(tmp_path).check([("demo", "email", "en")])
    assert len(problems) == 1
    assert (
        "'first_name' is None" in problems[0]
        and "with the sample context with Nones" in problems[0]
    )
    # Listing it under `requires` says the sender always supplies it.
    write(tmp_path, "demo.yaml", MINIMAL.replace("{{ account_name }} team", "{{ first_name }}")
          + "requires: [first_name]\n")  # fmt: skip
    assert Catalogue.load(tmp_path).check([("demo", "email", "en")]) == []


def test_missing_locale_stops_the_load_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "demo.yaml", MINIMAL.replace('    en: "Hello {{ account_name }} team"\n', ""))
    with pytest.raises(TemplateError) as err:
        Catalogue.load(tmp_path)
    assert "demo.yaml: line 4: email.text: missing locale(s) en" in str(err.value)


def test_unknown_yaml_key_stops_the_load_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", MINIMAL)
    write(
        tmp_path, "demo.yaml", MINIMAL + "  subjet: {es: a, en: b}\nsmss:\n  text: {es: a, en: b}\n"
    )
    with pytest.raises(TemplateError) as err:
        Catalogue.load(tmp_path)
    message = str(err.value)
    assert "demo.yaml: line 7: email.subjet: unknown key" in message
    assert "demo.yaml: line 8: smss: unknown key" in message
    assert "good.yaml" not in message


def test_invalid_yaml_and_duplicate_keys_give_lines(tmp_path: Path) -> None:
    write(tmp_path, "demo.yaml", MINIMAL + 'sms:\n  text: {es: "a", en: "b"\n')
    with pytest.raises(TemplateError, match=r"demo.yaml: line \d+:"):
        Catalogue.load(tmp_path)
    write(tmp_path, "demo.yaml", MINIMAL + '    es: "otra vez"\n')
    with pytest.raises(TemplateError, match="demo.yaml: line 7: 'es' is given twice"):
        Catalogue.load(tmp_path)


def test_jinja_syntax_error_gives_the_file_line(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        '    en: "Hello {{ account_name }} team"',
        "    en: |-\n      Hello {{ account_name }},\n\n      {% if amount %}Pay now.\n",
    )
    write(tmp_path, "demo.yaml", text)
    catalogue = Catalogue.load(tmp_path)  # compiled on first use, not at load
    problems = catalogue.check([("demo", "email", "en")])
    assert len(problems) == 1 and "Jinja syntax error" in problems[0]
    assert "demo.yaml: line 9: email.text (en)" in problems[0]
    assert catalogue.check([("demo", "email", "es")]) == []


def test_whatsapp_placeholders_must_match_parameters(tmp_path: Path) -> None:
    write(tmp_path, "demo.yaml", """
        description: WhatsApp only.
        whatsapp:
          name: demo
          language: {es: es, en: en_US}
          body:
            es: "Hola {{1}}, debe {{2}}."
            en: "Hello {{1}}, you owe {{3}}."
          parameters: ["{{ first_name }}", "{{ amount | money(currency) }}"]
        """)  # fmt: skip
    with pytest.raises(TemplateError, match=r"line 7: whatsapp.body \(en\): placeholders \[1, 3\]"):
        Catalogue.load(tmp_path)


def test_sms_over_one_segment_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "demo.yaml", """
        description: Long SMS.
        sms:
          text:
            es: >-
              {{ account_name }}: {% for i in invoices %}{{ i.number }} {% endfor %}
              {{ pay_url }} {{ pay_url }} {{ pay_url }}
            en: "Short."
        """)  # fmt: skip
    problems = Catalogue.load(tmp_path).check([("demo", "sms", "es"), ("demo", "sms", "en")])
    assert len(problems) == 1 and "2 SMS segments (max_segments: 1)" in problems[0]


def test_check_policy_requires_unsubscribe_link_and_marketing_category(tmp_path: Path) -> None:
    directory = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, directory)
    nudge = directory / "renewal_nudge.yaml"
    text = nudge.read_text(encoding="utf-8")
    text = text.replace("Unsubscribe: {{ unsubscribe_url }}", "Reply STOP to opt out.")
    text = text.replace("category: marketing", "category: utility")
    nudge.write_text(text, encoding="utf-8")
    problems = check_policy(Catalogue.load(directory), outreach_policy())
    assert len(problems) == 2
    assert re.search(
        r"renewal_nudge.yaml: line \d+: email.text \(en\): renewal_nudge email is sent as "
        r"marketing and must link \{\{ unsubscribe_url \}\}$",
        problems[0],
    )
    assert "approved as utility but sent for marketing" in problems[1]


def test_check_policy_reports_a_missing_in_app_variant(tmp_path: Path) -> None:
    directory = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, directory)
    path = directory / "invoice_copy.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("\nin_app:")] + "\n", encoding="utf-8")
    problems = check_policy(Catalogue.load(directory), outreach_policy())
    assert problems == [f"{path}: template 'invoice_copy' has no 'in_app' variant"]


def test_locales_file_declares_the_locales(tmp_path: Path) -> None:
    write(tmp_path, "_locales.yaml", "locales: [es, en, pt]\ndefault: en\n")
    write(tmp_path, "demo.yaml", MINIMAL)
    with pytest.raises(TemplateError, match=r"line 3: email.subject: missing locale\(s\) pt"):
        Catalogue.load(tmp_path)
    write(tmp_path, "_locales.yaml", "locales: [es, en]\ndefault: fr\n")
    with pytest.raises(TemplateError, match="line 2: default: 'fr' is not one of the locales"):
        Catalogue.load(tmp_path)


# --- locale choice ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "country", "expected"),
    [
        ("es", None, "es"),
        ("es_MX", "MX", "es"),
        ("en-US", "ES", "en"),
        ("EN", None, "en"),
        ("Spanish", None, "es"),
        ("Spanish - Mexico", None, "es"),
        ("Español", "US", "es"),
        ("  english ", "MX", "en"),
        ("Inglés", None, "en"),
        (None, "ES", "es"),
        (None, "mx", "es"),
        ("", "Colombia", "es"),
        (None, "España", "es"),
        (None, "Perú", "es"),
        (None, "US", "en"),
        (None, "GB", "en"),
        (None, None, "en"),
        ("pt", "BR", "en"),  # Portuguese is not written yet: Brazil falls to the default
        ("Portuguese", "AR", "es"),  # ... but the country's language is
        ("Klingon", "CL", "es"),
        ("fr", "FR", "en"),
    ],
)
def test_locale_for(language: str | None, country: str | None, expected: str) -> None:
    assert locale_for(language, country) == expected


def test_locale_for_follows_the_supported_locales() -> None:
    assert locale_for("pt-BR", "BR", supported=("es", "en", "pt")) == "pt"
    assert locale_for(None, "PT", supported=("es", "en", "pt")) == "pt"
    assert locale_for("es", "ES", supported=("en",)) == "en"
