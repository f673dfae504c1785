"""Deterministic generator of realistic, messy CRM, ERP and engagement exports.

The files imitate what customers really hand over: two CRMs that overlap on ~30% of the
people, a Spanish Business Central ledger saved by Excel (Windows-1252, semicolons, decimal
commas), phone numbers in every way people type them, mixed country spellings, conflicting
consent, and a small fixed share of broken rows for the quarantine to catch.

Everything is vectorised with numpy and Arrow compute so one million contacts stay cheap; the
only Python loops run over columns, phone plans or digit positions, never over rows.
Same arguments, same bytes: all randomness comes from one ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import os
import re
import unicodedata
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from config.settings import DEFAULT_SOURCES

Fmt = Literal["csv", "parquet", "xlsx"]

# "Today" for the generated book: due dates, renewals and events are placed around it.
REFERENCE_DATE = date(2026, 11, 20)

MAPPING_NAMES = tuple(DEFAULT_SOURCES)

# Export headers, in the order of config/mappings/<name>.yaml (tests keep the two in step).
HEADERS: dict[str, tuple[str, ...]] = {
    "salesforce_contacts": (
        "Id",
        "AccountId",
        "Account_Number__c",
        "FirstName",
        "LastName",
        "Title",
        "Contact_Role__c",
        "Email",
        "Phone",
        "MobilePhone",
        "MailingCountry",
        "Preferred_Language__c",
        "HasOptedOutOfEmail",
        "DoNotCall",
        "Email_OptIn__c",
        "WhatsApp_OptIn__c",
        "SMS_OptIn__c",
        "Marketing_OptIn__c",
        "LastModifiedDate",
    ),
    "hubspot_contacts": (
        "Record ID",
        "Associated Company ID",
        "ERP Account Number",
        "Company Name",
        "First Name",
        "Last Name",
        "Job Title",
        "Buying Role",
        "Email",
        "Phone Number",
        "Mobile Phone Number",
        "Country/Region",
        "Preferred language",
        "Unsubscribed from all email",
        "WhatsApp Opt-In",
        "SMS Opt-In",
        "Marketing Opt-In",
        "Last Modified Date",
    ),
    "erp_open_items": (
        "Document Type",
        "Document No.",
        "Customer No.",
        "Customer Type",
        "Posting Date",
        "Due Date",
        "Amount",
        "Remaining Amount",
        "Applies-to Doc. No.",
        "Currency Code",
        "Status",
    ),
    "events": (
        "event_id",
        "occurred_at",
        "event_type",
        "channel",
        "account_id",
        "contact_source_id",
        "contact_email",
        "contact_phone",
        "message_id",
        "amount",
        "currency",
        "promised_date",
        "invoice_number",
        "outcome",
    ),
    "salesforce_opportunities": (
        "Id",
        "AccountId",
        "Account_Number__c",
        "Name",
        "StageName",
        "Contract_End_Date__c",
        "Amount",
        "CurrencyIsoCode",
        "OwnerId",
        "LastModifiedDate",
    ),
    "hubspot_deals": (
        "Record ID",
        "ERP Account Number",
        "Deal Name",
        "Deal Stage",
        "Contract End Date",
        "Amount",
        "Currency",
        "Deal owner",
        "Last Modified Date",
    ),
}

# ---------------------------------------------------------------------------------------------
# Reference lists (small; indexed by vectorised draws)
# ---------------------------------------------------------------------------------------------

COUNTRIES = ("ES", "MX", "CO", "AR", "CL", "PE", "PT", "US")
_COUNTRY_P = (0.34, 0.18, 0.12, 0.08, 0.08, 0.08, 0.06, 0.06)
_CURRENCY = ("EUR", "MXN", "COP", "ARS", "CLP", "PEN", "EUR", "USD")
_FX_PER_EUR = np.array([1.0, 20.0, 4500.0, 1200.0, 1000.0, 4.0, 1.0, 1.1])
_WHOLE_UNITS = np.array([c in ("COP", "CLP") for c in _CURRENCY])  # no cents in practice
_LANG_OF_COUNTRY = np.array([0, 0, 0, 0, 0, 0, 1, 2])  # 0 Spanish, 1 Portuguese, 2 English
# How exports spell each country (CRM picklists off, free text, ISO codes).
_COUNTRY_SPELLINGS = (
    ("España", "Spain", "ES"),
    ("Mexico", "México", "MX"),
    ("Colombia", "CO"),
    ("Argentina", "AR"),
    ("Chile", "CL"),
    ("Perú", "Peru", "PE"),
    ("Portugal", "PT"),
    ("United States", "USA", "US"),
)
_TLDS = (
    (".es", ".com"),
    (".com.mx", ".mx"),
    (".com.co", ".co"),
    (".com.ar",),
    (".cl",),
    (".com.pe", ".pe"),
    (".pt",),
    (".com",),
)
_LEGAL = (
    (" S.L.", ", S.L.", " S.A.", " SL", " S.L.U."),
    (" S.A. de C.V.", " S. de R.L. de C.V."),
    (" S.A.S.", " Ltda."),
    (" S.A.", " S.R.L."),
    (" SpA", " Ltda.", " S.A."),
    (" S.A.C.", " E.I.R.L.", " S.A."),
    (" Lda.", " S.A."),
    (" Inc.", " LLC", ", Inc.", " Corp."),
)
_CITIES = (
    ("Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao", "Málaga", "Zaragoza", "A Coruña"),
    ("México", "Monterrey", "Guadalajara", "Puebla", "Querétaro", "Mérida"),
    ("Bogotá", "Medellín", "Cali", "Barranquilla"),
    ("Buenos Aires", "Córdoba", "Rosario", "Mendoza"),
    ("Santiago", "Valparaíso", "Concepción"),
    ("Lima", "Arequipa", "Trujillo", "Cusco"),
    ("Lisboa", "Porto", "Braga", "Coimbra"),
    ("Texas", "Florida", "California", "New York"),
)
_COMPANY_PREFIX = (
    (
        "Distribuciones", "Comercial", "Grupo", "Industrias", "Suministros", "Talleres",
        "Transportes", "Construcciones", "Logística", "Alimentos", "Servicios", "Tecnologías",
        "Laboratorios", "Papelera", "Aceros", "Textiles", "Ferretería", "Electrónica",
        "Agroindustrias", "Importadora",
    ),
    (
        "Distribuidora", "Comercial", "Grupo", "Indústrias", "Transportes", "Construções",
        "Serviços", "Tecnologias", "Metalúrgica", "Alimentar",
    ),
    (
        "Summit", "Pioneer", "Atlas", "Keystone", "Liberty", "Evergreen", "Harbor", "Redwood",
        "Granite", "Blue Ridge", "Lakeside", "Northwind",
    ),
)  # fmt: skip
_COMPANY_ROOT = (
    (
        "Norte", "Ibérica", "Atlántico", "Andina", "Pacífico", "del Sur", "Levante", "Castilla",
        "Cantábrico", "Sierra", "Río Grande", "Maya", "Azteca", "Patagonia", "Pampa", "Inca",
        "Caribe", "Mediterráneo", "Galaica", "Aurora", "Cóndor", "Ébano", "Olivo", "Roble",
        "Horizonte", "Núñez", "Peña", "Solís", "Santa Cruz", "Valle", "Altamira", "Montes",
        "Orión", "Vértice", "Quetzal", "Cordillera", "Llanos", "Bahía", "Ibáñez", "Muñoz",
    ),
    (
        "Atlântico", "Lusitana", "Douro", "Tejo", "Minho", "Algarve", "Estrela", "Oceano",
        "Conceição", "Magalhães", "Gonçalves", "Brandão",
    ),
    (
        "Supply", "Logistics", "Industries", "Foods", "Distribution", "Health", "Systems",
        "Manufacturing", "Partners", "Labs",
    ),
)  # fmt: skip
CUSTOMER_TYPES = ("Distributor", "Retail", "Enterprise", "SMB", "Administración Pública")
_CUSTOMER_TYPE_P = (0.25, 0.22, 0.15, 0.30, 0.08)
_CUSTOMER_TYPE_SIZE = np.array([3.0, 0.8, 6.0, 0.5, 2.5])  # invoice size multiplier

# First names: (name, gender 0=male 1=female) per language group; accents on purpose.
_FIRST = (
    (
        ("José", 0), ("Juan", 0), ("Luis", 0), ("Carlos", 0), ("Javier", 0), ("Miguel", 0),
        ("Andrés", 0), ("Jesús", 0), ("Raúl", 0), ("Álvaro", 0), ("Iñaki", 0), ("Rubén", 0),
        ("Óscar", 0), ("Fernando", 0), ("Diego", 0), ("Alejandro", 0), ("Pablo", 0),
        ("Ramón", 0), ("Joaquín", 0), ("Tomás", 0), ("Héctor", 0), ("Martín", 0),
        ("Nicolás", 0), ("Sebastián", 0), ("Matías", 0), ("Ana", 1), ("María", 1),
        ("Lucía", 1), ("Carmen", 1), ("Laura", 1), ("Marta", 1), ("Sofía", 1), ("Paula", 1),
        ("Elena", 1), ("Inés", 1), ("Beatriz", 1), ("Ángela", 1), ("Mónica", 1),
        ("Verónica", 1), ("Rocío", 1), ("Begoña", 1), ("Nuria", 1), ("Patricia", 1),
        ("Valentina", 1), ("Camila", 1), ("Florencia", 1), ("Daniela", 1), ("Ximena", 1),
        ("Guadalupe", 1), ("Belén", 1),
    ),
    (
        ("João", 0), ("José", 0), ("António", 0), ("Gonçalo", 0), ("Luís", 0), ("Tiago", 0),
        ("Rui", 0), ("Nuno", 0), ("Simão", 0), ("Inês", 1), ("Maria", 1), ("Ana", 1),
        ("Beatriz", 1), ("Leonor", 1), ("Conceição", 1), ("Joana", 1), ("Mariana", 1),
    ),
    (
        ("John", 0), ("Michael", 0), ("David", 0), ("Robert", 0), ("James", 0), ("Daniel", 0),
        ("Kevin", 0), ("Brian", 0), ("Sarah", 1), ("Jennifer", 1), ("Emily", 1),
        ("Jessica", 1), ("Ashley", 1), ("Megan", 1), ("Karen", 1), ("Renée", 1),
    ),
)  # fmt: skip
_LAST = (
    (
        "García", "Rodríguez", "Martínez", "López", "González", "Hernández", "Pérez", "Sánchez",
        "Ramírez", "Torres", "Flores", "Gómez", "Díaz", "Núñez", "Peña", "Muñoz", "Jiménez",
        "Álvarez", "Romero", "Ruiz", "Castillo", "Ortiz", "Ibáñez", "Fernández", "Vázquez",
        "Domínguez", "Gutiérrez", "Suárez", "Chávez", "Rojas", "Morales", "Quispe", "Mamani",
        "Cáceres", "Echeverría", "Zúñiga", "Garzón", "Villalobos", "Aguirre", "Herrera",
    ),
    (
        "Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins",
        "Gonçalves", "Simões", "Sousa", "Conceição", "Magalhães", "Araújo", "Lourenço",
    ),
    (
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
        "Anderson", "Taylor", "O'Brien", "Nguyen", "Thompson", "Clark",
    ),
)  # fmt: skip

# Job functions: accounts payable, controller, CFO, general manager, purchasing/relationship.
_FUNC_BY_POSITION = np.array(
    [
        [0.70, 0.13, 0.10, 0.07, 0.00],
        [0.10, 0.45, 0.30, 0.10, 0.05],
        [0.10, 0.20, 0.40, 0.20, 0.10],
        [0.25, 0.15, 0.10, 0.15, 0.35],
    ]
)
# Titles per (language, function); a "/" holds the feminine form.
_TITLES = (
    (
        (
            "Responsable de Cuentas por Pagar", "Auxiliar de Cuentas por Pagar",
            "Analista de Cuentas por Pagar",
            "Administrativo de Contabilidad/Administrativa de Contabilidad",
            "Accounts Payable Clerk", "Tesorería",
        ),
        (
            "Controller", "Contralor/Contralora", "Jefe de Contabilidad/Jefa de Contabilidad",
            "Controller Financiero",
        ),
        (
            "Director Financiero/Directora Financiera", "CFO", "Gerente de Finanzas",
            "Gerente Administrativo y Financiero/Gerente Administrativa y Financiera",
        ),
        (
            "Gerente General", "Director General/Directora General", "CEO",
            "Socio Director/Socia Directora",
        ),
        (
            "Jefe de Compras/Jefa de Compras", "Responsable de Compras",
            "Gerente de Operaciones", "Coordinador de Logística/Coordinadora de Logística",
        ),
    ),
    (
        (
            "Responsável de Contas a Pagar", "Técnico de Contabilidade/Técnica de Contabilidade",
            "Accounts Payable Clerk",
        ),
        ("Controller", "Diretor de Contabilidade/Diretora de Contabilidade"),
        ("Diretor Financeiro/Diretora Financeira", "CFO"),
        ("Diretor Geral/Diretora Geral", "CEO", "Administrador/Administradora"),
        ("Gestor de Compras/Gestora de Compras", "Responsável de Operações"),
    ),
    (
        (
            "Accounts Payable Clerk", "AP Specialist", "Accounts Payable Manager",
            "Billing Coordinator",
        ),
        ("Controller", "Financial Controller", "Assistant Controller"),
        ("CFO", "Chief Financial Officer", "VP Finance"),
        ("General Manager", "CEO", "President"),
        ("Purchasing Manager", "Procurement Lead", "Operations Manager"),
    ),
)  # fmt: skip
ROLES = ("Billing", "Accounts Payable", "Decision Maker", "Influencer", "")
_ROLE_BY_FUNC = np.array(
    [
        [0.35, 0.50, 0.00, 0.00, 0.15],
        [0.40, 0.10, 0.10, 0.25, 0.15],
        [0.05, 0.00, 0.80, 0.05, 0.10],
        [0.00, 0.00, 0.75, 0.05, 0.20],
        [0.00, 0.00, 0.05, 0.60, 0.35],
    ]
)
# Salesforce picklist codes vs HubSpot labels, per language group (+ Mexican Spanish).
_SF_LANG = ("es", "pt", "en", "es_MX")
_HS_LANG = ("Spanish", "Portuguese", "English", "Spanish - Mexico")
_ROLE_MAILBOX = (
    ("facturacion", "cuentasporpagar", "pagos", "administracion", "contabilidad", "info"),
    ("faturacao", "contasapagar", "financeiro", "info"),
    ("ap", "billing", "accounts.payable", "invoices", "info"),
)
_FREEMAIL = ("gmail.com", "hotmail.com", "outlook.com", "yahoo.es", "hotmail.es", "yahoo.com.mx")
_FREEMAIL_TYPO = ("gmial.com", "hotmal.com", "gmail.con", "outlok.com", "hotmail.co", "yahooo.es")
_PHONE_JUNK = ("123", "N/A", "tbd", "0", "-", "pendiente", "n/a", "TBD", "000000", "sin teléfono")
_EXT_FORMS = (" ext. ", " ext ", " x", " Ext. ", " ext.")

EVENT_TYPES = (
    "delivered", "opened", "clicked", "bounced", "read", "replied", "failed", "unsubscribed",
    "call_outcome", "promise_to_pay", "payment", "dispute", "in_app_seen",
)  # fmt: skip
_EVENT_P = np.array([28, 16, 5, 2, 10, 4, 2, 0.5, 12, 4, 10, 1.5, 5], dtype=float)
CHANNELS = ("email", "whatsapp", "sms", "rcs", "voice", "in_app", "")
# Channel weights per event type, columns in CHANNELS order ("" = no channel).
_CHANNEL_BY_TYPE = np.array(
    [
        [50, 30, 12, 8, 0, 0, 0],  # delivered
        [100, 0, 0, 0, 0, 0, 0],  # opened
        [60, 20, 12, 8, 0, 0, 0],  # clicked
        [85, 0, 15, 0, 0, 0, 0],  # bounced
        [0, 80, 0, 20, 0, 0, 0],  # read
        [45, 45, 10, 0, 0, 0, 0],  # replied
        [0, 45, 35, 10, 10, 0, 0],  # failed
        [70, 15, 15, 0, 0, 0, 0],  # unsubscribed
        [0, 0, 0, 0, 100, 0, 0],  # call_outcome
        [10, 20, 0, 0, 30, 0, 40],  # promise_to_pay
        [0, 0, 0, 0, 0, 0, 100],  # payment
        [15, 0, 0, 0, 0, 0, 85],  # dispute
        [0, 0, 0, 0, 0, 100, 0],  # in_app_seen
    ],
    dtype=float,
)
CALL_OUTCOMES = ("connected", "no_answer", "voicemail", "wrong_number")

SF_STAGES = ("Prospecting", "Negotiation/Review", "Closed Won", "Closed Lost")
HS_STAGES = ("Appointment scheduled", "Contract sent", "Closed won", "Closed lost")

# ---------------------------------------------------------------------------------------------
# Phone numbering plans (real ranges; the first random digit is 2-8 so numbers validate)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """One way a country's numbers look: international and national writing."""

    country: int  # index in COUNTRIES
    mobile: bool
    cc: str
    prefixes: tuple[str, ...]
    rest: int  # random digits after the prefix
    intl: tuple[int, ...]  # grouping of lead+prefix+rest after "+cc "
    national: tuple[int, ...]  # grouping of trunk+prefix+insert+rest
    trunk: str = ""
    lead: str = ""  # written internationally only (Argentine mobile "9")
    insert: str = ""  # written nationally only (Argentine mobile "15")
    weight: float = 1.0


_PLANS = (
    _Plan(0, True, "34", ("60", "61", "62", "63", "64", "65", "66", "67", "68", "69", "71", "72"), 7, (3, 3, 3), (3, 3, 3)),  # noqa: E501
    _Plan(0, False, "34", ("91", "93", "94", "95", "96", "98"), 7, (3, 3, 3), (2, 3, 2, 2)),
    _Plan(1, True, "52", ("55", "33", "81"), 8, (2, 4, 4), (2, 4, 4), weight=3),
    _Plan(1, True, "52", ("222", "664", "999", "442"), 7, (3, 3, 4), (3, 3, 4)),
    _Plan(1, False, "52", ("55", "33", "81"), 8, (2, 4, 4), (2, 4, 4)),
    _Plan(2, True, "57", ("300", "301", "304", "310", "311", "312", "313", "315", "316", "317", "318", "320", "321", "350"), 7, (3, 3, 4), (3, 3, 4)),  # noqa: E501
    _Plan(2, False, "57", ("601", "602", "604", "605", "607"), 7, (3, 3, 4), (3, 3, 4)),
    _Plan(3, True, "54", ("11",), 8, (1, 2, 4, 4), (3, 2, 4, 4), "0", "9", "15", weight=3),
    _Plan(3, True, "54", ("351", "341"), 7, (1, 3, 3, 4), (4, 2, 3, 4), "0", "9", "15"),
    _Plan(3, False, "54", ("11",), 8, (2, 4, 4), (3, 4, 4), "0", weight=3),
    _Plan(3, False, "54", ("351", "341"), 7, (3, 3, 4), (4, 3, 4), "0"),
    _Plan(4, True, "56", ("9",), 8, (1, 4, 4), (1, 4, 4)),
    _Plan(4, False, "56", ("22",), 7, (1, 4, 4), (1, 4, 4)),
    _Plan(5, True, "51", ("9",), 8, (3, 3, 3), (3, 3, 3)),
    _Plan(5, False, "51", ("1",), 7, (1, 3, 4), (2, 3, 4), "0"),
    _Plan(6, True, "351", ("91", "92", "93", "96"), 7, (3, 3, 3), (3, 3, 3)),
    _Plan(6, False, "351", ("21", "22"), 7, (2, 3, 4), (2, 3, 4)),
    _Plan(7, True, "1", ("212", "305", "312", "415", "512", "617", "646", "713", "786", "202"), 7, (3, 3, 4), (3, 3, 4)),  # noqa: E501
    _Plan(7, False, "1", ("212", "305", "312", "404", "214", "617"), 7, (3, 3, 4), (3, 3, 4)),
)  # fmt: skip
# How often each writing style appears: E.164, "+34 612 345 678", "0034...", "34...",
# national spaced, national compact, dotted, dashed, parenthesised.
_PHONE_STYLE_P = np.array([0.12, 0.22, 0.06, 0.06, 0.22, 0.14, 0.05, 0.07, 0.06])

# ---------------------------------------------------------------------------------------------
# Small vectorised helpers
# ---------------------------------------------------------------------------------------------

_DIGIT_CHARS = np.frombuffer(b"0123456789", dtype=np.uint8)
_HEX_CHARS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_B62_CHARS = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)
_SF_SUFFIX_CHARS = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)
_EMPTY = pa.scalar("", pa.string())


def _fixed_strings(chars: np.ndarray) -> pa.StringArray:
    """An (n, width) matrix of ASCII bytes as Arrow strings, without touching Python objects."""
    n, width = chars.shape
    data = np.ascontiguousarray(chars, dtype=np.uint8).reshape(-1)
    offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _char_matrix(values: np.ndarray, width: int, alphabet: np.ndarray) -> np.ndarray:
    """Fixed-width base-len(alphabet) digits of non-negative integers (most significant first)."""
    v = np.asarray(values, dtype=np.uint64).copy()
    base = np.uint64(len(alphabet))
    out = np.empty((len(v), width), dtype=np.uint8)
    for pos in range(width - 1, -1, -1):  # loop over digit positions, not rows
        out[:, pos] = alphabet[(v % base).astype(np.intp)]
        v //= base
    return out


def _digits(values: np.ndarray, width: int) -> pa.StringArray:
    """Zero-padded decimal strings."""
    return _fixed_strings(_char_matrix(values, width, _DIGIT_CHARS))


def _hex_ids(seq: np.ndarray, width: int, salt: int) -> pa.StringArray:
    """Unique, random-looking hex ids: multiply-xorshift rounds are bijections on 4*width bits."""
    bits = 4 * width
    mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(2**64 - 1)
    shift = np.uint64(bits // 2)
    x = (np.asarray(seq, dtype=np.uint64) + np.uint64(salt)) & mask
    for mult in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9):  # odd, so invertible
        x = (x * np.uint64(mult)) & mask
        x ^= x >> shift
    return _fixed_strings(_char_matrix(x, width, _HEX_CHARS))


def _sf_ids(key_prefix: str, seq: np.ndarray) -> pa.StringArray:
    """18-character Salesforce ids: 15 case-sensitive chars plus the real checksum suffix."""
    n = len(seq)
    head = np.frombuffer((key_prefix + "5J" + "0000").encode(), dtype=np.uint8)
    body = _char_matrix(seq, 6, _B62_CHARS)
    chars15 = np.concatenate([np.broadcast_to(head, (n, len(head))), body], axis=1)
    upper = ((chars15 >= ord("A")) & (chars15 <= ord("Z"))).astype(np.uint8)
    bits = upper.reshape(n, 3, 5) << np.arange(5, dtype=np.uint8)
    suffix = _SF_SUFFIX_CHARS[bits.sum(axis=2)]
    return _fixed_strings(np.concatenate([chars15, suffix], axis=1))


def _take(options: tuple[str, ...] | list[str], idx: np.ndarray) -> pa.Array:
    return pa.array(list(options), pa.string()).take(pa.array(np.asarray(idx, dtype=np.int64)))


def _cat(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _where(mask: np.ndarray, a: pa.Array | str, b: pa.Array | str) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), a, b)


def _categorical(rng: np.random.Generator, probs: np.ndarray, n: int | None = None) -> np.ndarray:
    """Draw category indices; `probs` is one row of weights, or one row per draw."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim == 1:
        return rng.choice(len(probs), size=n, p=probs / probs.sum())
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(probs))
    return np.minimum((u[:, None] > cum).sum(axis=1), probs.shape[1] - 1)


def _pick_in_groups(
    rng: np.random.Generator, group: np.ndarray, sizes: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Uniform index into a flat list where each group owns the slice [start, start+size)."""
    return starts[group] + (rng.random(len(group)) * sizes[group]).astype(np.int64)


def _ascii(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", _ascii(s).lower())


def _rank(when: np.ndarray) -> np.ndarray:
    """1-based chronological sequence numbers, as an ERP's number series hands them out."""
    out = np.empty(len(when), dtype=np.int64)
    out[np.argsort(when, kind="stable")] = np.arange(1, len(when) + 1)
    return out


def _occurrence(keys: np.ndarray) -> np.ndarray:
    """0 for the first row with a key, 1 for the second... (numbers colliding domains)."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    new_group = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(keys)), 0))
    out = np.empty(len(keys), dtype=np.int64)
    out[order] = np.arange(len(keys)) - group_start
    return out


# ---------------------------------------------------------------------------------------------
# Tables: typed columns, rendered to CSV text or written typed to Parquet/XLSX
# ---------------------------------------------------------------------------------------------

Kind = Literal["str", "int", "money", "date", "datetime", "bool"]


@dataclass
class _Col:
    """A column kept typed until written: strings (Arrow), ints, cents, dates, tri-state bools."""

    kind: Kind
    values: pa.Array | np.ndarray
    valid: np.ndarray | None = None  # int/money: False = empty cell
    broken_rows: np.ndarray | None = None  # rows whose text is deliberately unparseable
    broken_text: pa.Array | None = None


@dataclass(frozen=True)
class _Dialect:
    """How one export writes its cells (delimiter, encoding, dates, decimals, booleans)."""

    sep: str = ","
    encoding: str = "utf-8"
    bom: bool = False
    newline: str = "\n"
    date: Literal["iso", "dmy"] = "iso"
    datetime: Literal["sf", "hs", "iso_z"] = "iso_z"
    decimal: Literal["dot", "es"] = "dot"
    boolean: Literal["sf", "hs"] = "sf"


_DIALECTS = {
    "salesforce_contacts": _Dialect(datetime="sf", boolean="sf"),
    "hubspot_contacts": _Dialect(bom=True, datetime="hs", boolean="hs"),
    "erp_open_items": _Dialect(
        sep=";", encoding="cp1252", newline="\r\n", date="dmy", decimal="es"
    ),
    "events": _Dialect(datetime="iso_z"),
    "salesforce_opportunities": _Dialect(datetime="sf"),
    "hubspot_deals": _Dialect(bom=True, datetime="hs"),
}


@dataclass
class _Table:
    name: str
    cols: dict[str, _Col] = field(default_factory=dict)

    @property
    def nrows(self) -> int:
        return len(next(iter(self.cols.values())).values) if self.cols else 0


def _stamp(values: np.ndarray, layout: str) -> pa.Array:
    """Dates/times as fixed-width text built from digit matrices ("" for NaT).

    Much faster than strftime or np.datetime_as_string plus Unicode conversion at 1M rows.
    """
    missing = np.isnat(values)
    secs = np.where(missing, np.datetime64(0, "s"), values.astype("datetime64[s]"))
    days = secs.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    years = months.astype("datetime64[Y]")
    tod = (secs - days).astype(np.int64)
    parts = {
        "Y": (years.astype(np.int64) + 1970, 4),
        "m": ((months - years).astype(np.int64) + 1, 2),
        "d": ((days - months).astype(np.int64) + 1, 2),
        "H": (tod // 3600, 2),
        "M": (tod // 60 % 60, 2),
        "S": (tod % 60, 2),
    }
    pieces = re.split(r"(%[YmdHMS])", layout)
    width = sum(parts[p[1]][1] if p.startswith("%") else len(p) for p in pieces)
    chars = np.empty((len(values), width), dtype=np.uint8)
    pos = 0
    for piece in pieces:
        if piece.startswith("%"):
            number, w = parts[piece[1]]
            chars[:, pos : pos + w] = _char_matrix(number, w, _DIGIT_CHARS)
        else:
            w = len(piece)
            chars[:, pos : pos + w] = np.frombuffer(piece.encode(), dtype=np.uint8)
        pos += w
    out = _fixed_strings(chars)
    return pc.if_else(pa.array(missing), _EMPTY, out) if missing.any() else out


def _render(col: _Col, d: _Dialect) -> pa.Array:
    """One column as the text the export holds (no nulls)."""
    if col.kind == "str":
        out = pc.fill_null(col.values, _EMPTY)
    elif col.kind == "int":
        out = pa.array(col.values, pa.int64()).cast(pa.string())
    elif col.kind == "money":
        cents = np.asarray(col.values, dtype=np.int64)
        mag = np.abs(cents)
        whole, frac = mag // 100, mag % 100
        sign = _take(("", "-"), (cents < 0).astype(np.int8))
        if d.decimal == "dot":
            out = _cat(sign, pa.array(whole).cast(pa.string()), ".", _digits(frac, 2))
        else:  # Spanish Excel: 1.234.567,89
            padded = _digits(whole, 15)
            groups = [pc.utf8_slice_codeunits(padded, i, i + 3) for i in range(0, 15, 3)]
            thousands = pc.utf8_ltrim(pc.binary_join_element_wise(*groups, "."), characters="0.")
            thousands = pc.if_else(pc.equal(thousands, ""), "0", thousands)
            out = _cat(sign, thousands, ",", _digits(frac, 2))
    elif col.kind == "date":
        out = _stamp(col.values, "%d/%m/%Y" if d.date == "dmy" else "%Y-%m-%d")
    elif col.kind == "datetime":
        layout = {
            "sf": "%Y-%m-%dT%H:%M:%S.000Z",
            "hs": "%Y-%m-%d %H:%M",
            "iso_z": "%Y-%m-%dT%H:%M:%SZ",
        }
        out = _stamp(col.values, layout[d.datetime])
    elif col.kind == "bool":
        words = ("", "false", "true") if d.boolean == "sf" else ("", "No", "Yes")
        out = _take(words, np.asarray(col.values, dtype=np.int8) + 1)
    else:  # pragma: no cover - kinds are a closed set
        raise ValueError(col.kind)
    if col.valid is not None:
        out = pc.if_else(pa.array(col.valid), out, _EMPTY)
    if col.broken_rows is not None and len(col.broken_rows):
        mask = np.zeros(len(out), dtype=bool)
        mask[col.broken_rows] = True
        order = np.argsort(col.broken_rows)
        out = pc.replace_with_mask(out, pa.array(mask), col.broken_text.take(pa.array(order)))
    return out


def _quote(values: pa.Array, sep: str) -> pa.Array:
    """Minimal CSV quoting: only cells holding the delimiter, a quote or a line break."""
    needs = pc.match_substring_regex(values, f'[{re.escape(sep)}"\\r\\n]')
    rows = np.flatnonzero(needs.to_numpy(zero_copy_only=False))
    if not len(rows):
        return values
    quoted = _cat('"', pc.replace_substring(values.take(pa.array(rows)), '"', '""'), '"')
    return pc.replace_with_mask(values, needs, quoted)


def _string_bytes(values: pa.Array | pa.ChunkedArray) -> list[bytes]:
    """The UTF-8 payload of string arrays, concatenated per chunk (no per-row objects)."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    out = []
    for chunk in chunks:
        if not len(chunk):
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)
        offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
        out.append(bytes(memoryview(chunk.buffers()[2])[offsets[0] : offsets[-1]]))
    return out


_BLOCK_ROWS = 200_000  # rows rendered per task: bounds memory and lets blocks run in parallel


def _slice(col: _Col, start: int, stop: int) -> _Col:
    if isinstance(col.values, pa.Array | pa.ChunkedArray):
        values = col.values.slice(start, stop - start)
    else:
        values = col.values[start:stop]
    valid = None if col.valid is None else col.valid[start:stop]
    if col.broken_rows is None:
        return _Col(col.kind, values, valid)
    inside = (col.broken_rows >= start) & (col.broken_rows < stop)
    return _Col(
        col.kind,
        values,
        valid,
        col.broken_rows[inside] - start,
        col.broken_text.filter(pa.array(inside)),
    )


def _csv_block(table: _Table, start: int, stop: int) -> bytes:
    """Rows [start, stop) as encoded CSV lines."""
    d = _DIALECTS[table.name]
    cells = []
    for h in HEADERS[table.name]:
        col = _slice(table.cols[h], start, stop)
        text = _render(col, d)
        # Only free text can hold the delimiter or quotes; numbers and dates never do.
        cells.append(_quote(text, d.sep) if col.kind == "str" else text)
    lines = pc.binary_join_element_wise(*cells, d.sep)
    lines = pc.binary_join_element_wise(lines, _EMPTY, d.newline)  # each line + newline
    payload = b"".join(_string_bytes(lines))
    # Strict: a character the code page lacks is a generator bug, not data.
    return payload if d.encoding == "utf-8" else payload.decode().encode(d.encoding)


def _write_csv(table: _Table, path: Path) -> None:
    d = _DIALECTS[table.name]
    headers = HEADERS[table.name]
    special = re.compile(f'[{re.escape(d.sep)}"]')
    header = d.sep.join(f'"{h}"' if special.search(h) else h for h in headers) + d.newline
    n = table.nrows
    blocks = [(a, min(a + _BLOCK_ROWS, n)) for a in range(0, n, _BLOCK_ROWS)]
    workers = min(4, os.cpu_count() or 1)
    with path.open("wb") as fh, ThreadPoolExecutor(max_workers=workers) as pool:
        fh.write((b"\xef\xbb\xbf" if d.bom else b"") + header.encode(d.encoding))
        # Arrow kernels release the GIL, so blocks render in parallel; map keeps their order.
        for block in pool.map(lambda span: _csv_block(table, *span), blocks):
            fh.write(block)


def _typed(table: _Table, tz_aware: bool) -> pa.Table:
    """Typed Arrow columns for Parquet/XLSX: dates as dates, amounts as numbers, bools as bools."""
    d = _DIALECTS[table.name]
    arrays = []
    for h in HEADERS[table.name]:
        col = table.cols[h]
        broken = np.zeros(table.nrows, dtype=bool)
        if col.broken_rows is not None:
            broken[col.broken_rows] = True
        if col.kind == "str":
            arr = pc.if_else(pc.equal(col.values, ""), pa.scalar(None, pa.string()), col.values)
        elif col.kind == "int":
            arr = pa.array(
                col.values, pa.int64(), mask=~col.valid if col.valid is not None else None
            )
        elif col.kind == "money":
            mask = ~col.valid if col.valid is not None else None
            arr = pa.array(np.asarray(col.values) / 100.0, pa.float64(), mask=mask)
        elif col.kind == "date":
            arr = pa.array(
                col.values.astype("datetime64[D]"), pa.date32(), mask=np.isnat(col.values) | broken
            )
        elif col.kind == "datetime":
            arr = pa.array(
                col.values.astype("datetime64[s]"),
                pa.timestamp("s"),
                mask=np.isnat(col.values) | broken,
            )
            if tz_aware and d.datetime != "hs":  # Salesforce and event times are UTC
                arr = arr.cast(pa.timestamp("s", tz="UTC"))
        else:
            v = np.asarray(col.values, dtype=np.int8)
            arr = pa.array(v == 1, pa.bool_(), mask=v < 0)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=list(HEADERS[table.name]))


_FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


def _write_xlsx(table: _Table, path: Path) -> None:
    """XLSX through pandas/openpyxl, then made byte-stable (fixed zip times and doc dates)."""
    df = _typed(table, tz_aware=False).to_pandas(date_as_object=True)
    df.to_excel(path, index=False, sheet_name=table.name[:31], engine="openpyxl")
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info.filename)) for info in src.infolist()]
    stamp = b"2026-01-01T00:00:00Z"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + stamp, data
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, data)


def _write(table: _Table, out_dir: Path, fmt: Fmt) -> Path:
    path = out_dir / f"{table.name}.{fmt}"
    if fmt == "csv":
        _write_csv(table, path)
    elif fmt == "parquet":
        pq.write_table(_typed(table, tz_aware=True), path, compression="zstd")
    else:
        _write_xlsx(table, path)
    return path


# ---------------------------------------------------------------------------------------------
# Domain generation
# ---------------------------------------------------------------------------------------------


def _numbers(rng: np.random.Generator, country: np.ndarray, mobile: bool) -> dict[str, object]:
    """Phone numbers for the given countries: plan id, significant number and national form."""
    n = len(country)
    plan = np.zeros(n, dtype=np.int16)
    for c in range(len(COUNTRIES)):
        ids = [i for i, p in enumerate(_PLANS) if p.country == c and p.mobile == mobile]
        weights = np.array([_PLANS[i].weight for i in ids])
        rows = np.flatnonzero(country == c)
        plan[rows] = np.array(ids)[_categorical(rng, weights, len(rows))]
    nsn = pa.nulls(n, pa.string()).fill_null("")
    national = nsn
    for k, p in enumerate(_PLANS):
        rows = np.flatnonzero(plan == k)
        if not len(rows):
            continue
        pre = _take(p.prefixes, rng.integers(0, len(p.prefixes), len(rows)))
        digits = rng.integers(0, 10, (len(rows), p.rest), dtype=np.uint8)
        digits[:, 0] = rng.integers(2, 9, len(rows))  # 0/1/9 openings are unassigned in places
        rest = _fixed_strings(_DIGIT_CHARS[digits])
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        nsn = pc.replace_with_mask(nsn, pa.array(mask), _cat(p.lead, pre, rest))
        national = pc.replace_with_mask(
            national, pa.array(mask), _cat(p.trunk, pre, p.insert, rest)
        )
    return {"plan": plan, "nsn": nsn, "national": national}


def _grouped(s: pa.Array, groups: tuple[int, ...], sep: str) -> pa.Array:
    starts = np.cumsum((0,) + groups[:-1])
    parts = [
        pc.utf8_slice_codeunits(s, int(a), int(a + g)) for a, g in zip(starts, groups, strict=True)
    ]
    return pc.binary_join_element_wise(*parts, sep)


def _format_phones(
    plan: np.ndarray, nsn: pa.Array, national: pa.Array, style: np.ndarray
) -> pa.Array:
    """Write each number in its drawn style; one pass per plan, so groupings are fixed-width."""
    order = np.argsort(plan, kind="stable")
    pieces = []
    for k, p in enumerate(_PLANS):
        rows = order[plan[order] == k]
        if not len(rows):
            continue
        idx = pa.array(rows)
        s, nat = nsn.take(idx), national.take(idx)
        intl_spaced = _grouped(s, p.intl, " ")
        if p.cc == "1":
            paren = _cat(
                "(",
                pc.utf8_slice_codeunits(s, 0, 3),
                ") ",
                pc.utf8_slice_codeunits(s, 3, 6),
                "-",
                pc.utf8_slice_codeunits(s, 6, 10),
            )
        else:
            paren = _cat(f"(+{p.cc}) ", intl_spaced)
        variants = (
            _cat(f"+{p.cc}", s),
            _cat(f"+{p.cc} ", intl_spaced),
            # "00" is the international prefix in Europe and most of Latin America, but
            # not from the US (011) or Colombia (005/007/009): write "+cc ..." there instead.
            _cat(f"+{p.cc} ", intl_spaced) if p.cc in ("1", "57") else _cat(f"00{p.cc}", s),
            _cat(p.cc, s),
            _grouped(nat, p.national, " "),
            nat,
            _grouped(nat, p.national, "."),
            _grouped(nat, p.national, "-"),
            paren,
        )
        pieces.append(pc.choose(pa.array(style[rows].astype(np.int8)), *variants))
    done = np.concatenate([order[plan[order] == k] for k in range(len(_PLANS))])
    flat = pa.concat_arrays(pieces) if pieces else pa.array([], pa.string())
    inverse = np.empty(len(done), dtype=np.int64)
    inverse[done] = np.arange(len(done))
    return flat.take(pa.array(inverse))


def _e164(plan: np.ndarray, nsn: pa.Array) -> pa.Array:
    cc = _take(tuple("+" + p.cc for p in _PLANS), plan)
    return _cat(cc, nsn)


@dataclass
class _Accounts:
    n: int
    country: np.ndarray
    lang: np.ndarray
    number: pa.Array  # "C000123"
    name: pa.Array
    domain: pa.Array
    domain_cap: pa.Array
    mailbox: pa.Array
    mailbox_cap: pa.Array
    customer_type: np.ndarray
    sf_id: pa.Array
    hs_id: np.ndarray
    home_sf: np.ndarray
    uses_mailbox: np.ndarray
    switchboard: dict[str, object]
    size: np.ndarray


def _accounts(rng: np.random.Generator, contacts: int) -> _Accounts:
    """Companies of 1-6 contacts with a country, a name, a web domain and a switchboard."""
    size_p = np.array([0.20, 0.25, 0.22, 0.15, 0.11, 0.07])
    sizes = _categorical(rng, size_p, contacts // 2 + 2) + 1
    cum = np.cumsum(sizes)
    n = int(np.searchsorted(cum, contacts) + 1)
    sizes = sizes[:n].copy()
    sizes[-1] -= int(cum[n - 1] - contacts)
    country = _categorical(rng, np.array(_COUNTRY_P), n)
    lang = _LANG_OF_COUNTRY[country]
    width = max(6, len(str(n)))
    number = _cat("C", _digits(np.arange(1, n + 1), width))

    name = pa.nulls(n, pa.string()).fill_null("")
    stem = name
    key = np.zeros(n, dtype=np.int64)
    for g in range(3):
        rows = np.flatnonzero(lang == g)
        m = len(rows)
        pi = rng.integers(0, len(_COMPANY_PREFIX[g]), m)
        ri = rng.integers(0, len(_COMPANY_ROOT[g]), m)
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        nm = _cat(_take(_COMPANY_PREFIX[g], pi), " ", _take(_COMPANY_ROOT[g], ri))
        st = _cat(
            _take([_slug(x) for x in _COMPANY_PREFIX[g]], pi),
            _take(("", "-"), (rng.random(m) < 0.2).astype(int)),
            _take([_slug(x) for x in _COMPANY_ROOT[g]], ri),
        )
        name = pc.replace_with_mask(name, pa.array(mask), nm)
        stem = pc.replace_with_mask(stem, pa.array(mask), st)
        key[rows] = (g * 100 + pi) * 100 + ri
    # A city for half of the companies; legal form per country.
    city_flat = [c for cs in _CITIES for c in cs]
    city_start = np.cumsum([0] + [len(c) for c in _CITIES])[:-1]
    city_n = np.array([len(c) for c in _CITIES])
    city = _pick_in_groups(rng, country, city_n, city_start)
    with_city = rng.random(n) < 0.5
    name = _where(with_city, _cat(name, " ", _take(city_flat, city)), name)
    stem = _where(with_city, _cat(stem, _take([_slug(c) for c in city_flat], city)), stem)
    key = np.where(with_city, key * 1000 + city + 1, key * 1000)
    legal_flat = [x for ls in _LEGAL for x in ls]
    legal_start = np.cumsum([0] + [len(x) for x in _LEGAL])[:-1]
    legal = _pick_in_groups(rng, country, np.array([len(x) for x in _LEGAL]), legal_start)
    name = _cat(name, _take(legal_flat, legal))
    tld_flat = [x for ts in _TLDS for x in ts]
    tld_start = np.cumsum([0] + [len(x) for x in _TLDS])[:-1]
    tld = _pick_in_groups(rng, country, np.array([len(x) for x in _TLDS]), tld_start)
    dup = _occurrence(key * 100 + tld)
    stem = _where(dup > 0, _cat(stem, pa.array(dup + 1).cast(pa.string())), stem)
    domain = _cat(stem, _take(tld_flat, tld))
    domain_cap = _cat(
        pc.utf8_upper(pc.utf8_slice_codeunits(domain, 0, 1)), pc.utf8_slice_codeunits(domain, 1)
    )

    box_flat = [x for bs in _ROLE_MAILBOX for x in bs]
    box_start = np.cumsum([0] + [len(x) for x in _ROLE_MAILBOX])[:-1]
    box = _pick_in_groups(rng, lang, np.array([len(x) for x in _ROLE_MAILBOX]), box_start)
    mailbox = _take(box_flat, box)
    mailbox_cap = _take([b.capitalize() for b in box_flat], box)

    sf_seq = rng.integers(62**5, 62**5 * 20) + np.arange(n)
    return _Accounts(
        n=n,
        country=country,
        lang=lang,
        number=number,
        name=name,
        domain=domain,
        domain_cap=domain_cap,
        mailbox=mailbox,
        mailbox_cap=mailbox_cap,
        customer_type=_categorical(rng, np.array(_CUSTOMER_TYPE_P), n),
        sf_id=_sf_ids("001", sf_seq),
        hs_id=rng.integers(8_000_000_000, 9_000_000_000) + np.cumsum(rng.integers(1, 40, n)),
        home_sf=rng.random(n) < 0.55,
        uses_mailbox=rng.random(n) < 0.15,
        switchboard=_numbers(rng, country, mobile=False),
        size=sizes,
    )


@dataclass
class _People:
    n: int
    acc: np.ndarray
    country: np.ndarray
    lang: np.ndarray
    first: pa.Array
    last: pa.Array
    first_ascii: pa.Array
    last_ascii: pa.Array
    title: pa.Array
    role: np.ndarray
    sf_lang: np.ndarray  # index in _SF_LANG / _HS_LANG, -1 = unset
    email: pa.Array  # canonical lower-case (may be empty or invalid on purpose)
    email_cap: pa.Array  # same address, "Ana.Garcia@Acme.es" style
    email_alt: pa.Array  # a personal address some HubSpot copies hold instead
    email_ok: np.ndarray
    mobile: dict[str, object]
    direct: dict[str, object]
    phone_src: np.ndarray  # 0 none, 1 switchboard, 2 direct line, 3 mobile
    has_mobile: np.ndarray
    extension: pa.Array  # "" or " ext. 12"
    consent: dict[str, np.ndarray]  # tri-state int8 per flag
    in_sf: np.ndarray
    in_hs: np.ndarray


def _flat(groups: tuple[tuple, ...]) -> tuple[list, np.ndarray, np.ndarray]:
    flat = [x for g in groups for x in g]
    sizes = np.array([len(g) for g in groups])
    return flat, sizes, np.cumsum(np.r_[0, sizes])[:-1]


def _people(rng: np.random.Generator, acc: _Accounts) -> _People:
    """Contacts of each account with names, titles, roles, emails, phones and consent."""
    account = np.repeat(np.arange(acc.n), acc.size)
    n = len(account)
    first_in_acc = np.r_[0, np.cumsum(acc.size)[:-1]]
    position = np.arange(n) - np.repeat(first_in_acc, acc.size)
    country = acc.country[account]
    lang = acc.lang[account]
    name_lang = np.where(rng.random(n) < 0.08, rng.integers(0, 3, n), lang)

    first_flat, first_sizes, first_start = _flat(_FIRST)
    fi = _pick_in_groups(rng, name_lang, first_sizes, first_start)
    gender = np.array([g for _, g in first_flat])[fi]
    first_names = [f for f, _ in first_flat]
    last_flat, last_sizes, last_start = _flat(_LAST)
    li = _pick_in_groups(rng, name_lang, last_sizes, last_start)
    li2 = _pick_in_groups(rng, name_lang, last_sizes, last_start)
    two_surnames = (name_lang == 0) & (rng.random(n) < 0.35)
    first = _take(first_names, fi)
    last = _where(
        two_surnames, _cat(_take(last_flat, li), " ", _take(last_flat, li2)), _take(last_flat, li)
    )
    first_ascii = _take([_ascii(f) for f in first_names], fi)
    last_ascii_1 = _take([_ascii(x) for x in last_flat], li)
    last_ascii = _where(
        two_surnames,
        _cat(last_ascii_1, " ", _take([_ascii(x) for x in last_flat], li2)),
        last_ascii_1,
    )

    func = _categorical(rng, _FUNC_BY_POSITION[np.minimum(position, 3)])
    title_groups = tuple(t for lg in _TITLES for t in lg)
    title_flat, title_sizes, title_start = _flat(title_groups)
    ti = _pick_in_groups(rng, lang * 5 + func, title_sizes, title_start)
    male = [t.split("/")[0] for t in title_flat]
    female = [t.split("/")[-1] for t in title_flat]
    title = _where(gender == 1, _take(female, ti), _take(male, ti))
    title = _where(rng.random(n) < 0.05, _EMPTY, title)
    role = _categorical(rng, _ROLE_BY_FUNC[func])

    sf_lang = lang.copy()
    sf_lang[(country == 1) & (rng.random(n) < 0.5)] = 3  # es_MX
    sf_lang[(country == 7) & (rng.random(n) < 0.2)] = 0  # Spanish speakers in the US
    sf_lang[rng.random(n) < 0.10] = -1

    # Emails, built twice from the same draws: lower-case and "Ana.Garcia@Acme.es" case.
    fs = [_slug(f) for f in first_names]
    ls = [_slug(x) for x in last_flat]
    pattern = _categorical(rng, np.array([0.68, 0.14, 0.05, 0.05, 0.08]), n)
    kind = _categorical(rng, np.array([0.86, 0.06, 0.015, 0.04]), n)  # company, free, bad, none
    in_mailbox = acc.uses_mailbox[account] & (
        (func == 0) | (position == 0) | ((func == 1) & (rng.random(n) < 0.5))
    )
    suffix = pa.array(rng.integers(1, 99, n)).cast(pa.string())
    free = rng.integers(0, len(_FREEMAIL), n)
    typo = rng.random(n) < 0.12
    bad_form = rng.integers(0, 5, n)

    def build(
        first_tok: list[str],
        last_tok: list[str],
        domain: pa.Array,
        box: pa.Array,
        freemail: tuple[str, ...],
        typos: tuple[str, ...],
    ) -> tuple[pa.Array, pa.Array]:
        f, lt = _take(first_tok, fi), _take(last_tok, li)
        initial = pc.utf8_slice_codeunits(f, 0, 1)
        local = pc.choose(
            pa.array(pattern.astype(np.int8)),
            _cat(f, ".", lt),
            _cat(initial, lt),
            _cat(f, "_", lt),
            f,
            _cat(lt, ".", f),
        )
        dom = domain.take(pa.array(account))
        company = _cat(local, "@", dom)
        personal = _cat(local, suffix, "@", _where(typo, _take(typos, free), _take(freemail, free)))
        invalid = pc.choose(
            pa.array(bad_form.astype(np.int8)),
            _cat(local, "@"),
            pa.repeat(pa.scalar("sin correo"), n),
            _cat(local, "@", pc.replace_substring_regex(dom, r"\.[A-Za-z.]+$", "")),
            _cat(local, ".", dom),
            pa.repeat(pa.scalar("no tiene"), n),
        )
        out = pc.choose(
            pa.array(kind.astype(np.int8)), company, personal, invalid, pa.repeat(_EMPTY, n)
        )
        out = _where(in_mailbox & (kind == 0), _cat(box.take(pa.array(account)), "@", dom), out)
        return out, _cat(local, suffix, "@", _take(freemail, free))

    email, email_alt = build(fs, ls, acc.domain, acc.mailbox, _FREEMAIL, _FREEMAIL_TYPO)
    email_cap, _ = build(
        [s.capitalize() for s in fs],
        [s.capitalize() for s in ls],
        acc.domain_cap,
        acc.mailbox_cap,
        tuple(x.capitalize() for x in _FREEMAIL),
        tuple(x.capitalize() for x in _FREEMAIL_TYPO),
    )
    email_ok = kind <= 1

    phone_src = _categorical(rng, np.array([0.15, 0.52, 0.26, 0.07]), n)
    has_mobile = (rng.random(n) < 0.8) | (phone_src == 3)
    ext_digits = rng.integers(1, 9999, n)
    extension = _where(
        (phone_src == 1) & (rng.random(n) < 0.12),
        _cat(
            _take(_EXT_FORMS, rng.integers(0, len(_EXT_FORMS), n)),
            pa.array(ext_digits).cast(pa.string()),
        ),
        _EMPTY,
    )

    opt_out = rng.random(n) < 0.07
    consent = {
        "email_opt_out": opt_out.astype(np.int8),
        "do_not_call": (rng.random(n) < 0.05).astype(np.int8),
        "email_opt_in": ((rng.random(n) < 0.72) & ~opt_out).astype(np.int8),
        "whatsapp_opt_in": (rng.random(n) < 0.42).astype(np.int8),
        "sms_opt_in": (rng.random(n) < 0.30).astype(np.int8),
        "marketing_opt_in": ((rng.random(n) < 0.35) & ~opt_out).astype(np.int8),
    }

    both = rng.random(n) < 0.30
    home = np.where(rng.random(n) < 0.85, acc.home_sf[account], ~acc.home_sf[account])
    return _People(
        n=n,
        acc=account,
        country=country,
        lang=lang,
        first=first,
        last=last,
        first_ascii=first_ascii,
        last_ascii=last_ascii,
        title=title,
        role=role,
        sf_lang=sf_lang,
        email=email,
        email_cap=email_cap,
        email_alt=email_alt,
        email_ok=email_ok,
        mobile=_numbers(rng, country, mobile=True),
        direct=_numbers(rng, country, mobile=False),
        phone_src=phone_src,
        has_mobile=has_mobile,
        extension=extension,
        consent=consent,
        in_sf=both | home,
        in_hs=both | ~home,
    )


def _phone_cells(
    rng: np.random.Generator,
    acc: _Accounts,
    ppl: _People,
    person: np.ndarray,
    keep: np.ndarray,
    mobile_field: bool,
) -> pa.Array:
    """Phone or MobilePhone cells for CRM rows of `person`, each in its own writing style."""
    m = len(person)
    if mobile_field:
        src = np.where(
            ppl.has_mobile[person] & ((ppl.phone_src[person] != 3) | (rng.random(m) < 0.3)), 3, 0
        )
    else:
        src = ppl.phone_src[person]
    src = np.where(keep, src, 0)
    # Gather plan / number / national form from the three number pools.
    pools = (ppl.mobile, acc.switchboard, ppl.direct)
    owner = (person, ppl.acc[person], person)
    plan = np.zeros(m, dtype=np.int16)
    nsn = pa.nulls(m, pa.string()).fill_null("")
    national = nsn
    for code, pool, who in zip((3, 1, 2), pools, owner, strict=True):
        rows = np.flatnonzero(src == code)
        if not len(rows):
            continue
        mask = pa.array(src == code)
        plan[rows] = pool["plan"][who[rows]]
        nsn = pc.replace_with_mask(nsn, mask, pool["nsn"].take(pa.array(who[rows])))
        national = pc.replace_with_mask(national, mask, pool["national"].take(pa.array(who[rows])))
    style = _categorical(rng, _PHONE_STYLE_P, m)
    text = _format_phones(plan, nsn, national, style)
    if not mobile_field:
        text = _cat(
            text, pc.if_else(pa.array(src == 1), ppl.extension.take(pa.array(person)), _EMPTY)
        )
    text = pc.if_else(pa.array(src == 0), _EMPTY, text)
    junk = rng.random(m) < 0.025
    return _where(junk, _take(_PHONE_JUNK, rng.integers(0, len(_PHONE_JUNK), m)), text)


def _country_cells(rng: np.random.Generator, country: np.ndarray) -> pa.Array:
    flat, sizes, starts = _flat(_COUNTRY_SPELLINGS)
    out = _take(flat, _pick_in_groups(rng, country, sizes, starts))
    return _where(rng.random(len(country)) < 0.04, _EMPTY, out)


def _timestamps(rng: np.random.Generator, ref: date, n: int, max_days: float) -> np.ndarray:
    end = np.datetime64(ref, "s")
    return end - rng.integers(60, int(max_days * 86400), n).astype("timedelta64[s]")


def _crm_contacts(
    rng: np.random.Generator, acc: _Accounts, ppl: _People, ref: date
) -> tuple[_Table, _Table, pa.Array]:
    """Salesforce and HubSpot contact exports; returns the id each person is known by."""
    sf_person = np.flatnonzero(ppl.in_sf)
    sf_person = sf_person[rng.permutation(len(sf_person))]
    hs_person = np.flatnonzero(ppl.in_hs)
    hs_person = hs_person[rng.permutation(len(hs_person))]
    ns, nh = len(sf_person), len(hs_person)
    both_hs = ppl.in_sf[hs_person]

    sf_ids = _sf_ids("003", rng.integers(62**5, 62**5 * 20) + np.arange(ns))
    hs_ids = rng.integers(10_000_000_000, 60_000_000_000) + np.cumsum(rng.integers(1, 60, nh))
    take_s, take_h = pa.array(sf_person), pa.array(hs_person)

    # --- Salesforce ---------------------------------------------------------------------
    sf_email = _where(rng.random(ns) < 0.10, ppl.email_cap.take(take_s), ppl.email.take(take_s))
    sf = _Table("salesforce_contacts")
    c = ppl.consent

    def sf_missing() -> np.ndarray:  # custom fields added after the first import
        return rng.random(ns) < 0.03

    sf.cols = {
        "Id": _Col("str", sf_ids),
        "AccountId": _Col("str", acc.sf_id.take(pa.array(ppl.acc[sf_person]))),
        "Account_Number__c": _Col("str", acc.number.take(pa.array(ppl.acc[sf_person]))),
        "FirstName": _Col("str", ppl.first.take(take_s)),
        "LastName": _Col("str", ppl.last.take(take_s)),
        "Title": _Col("str", ppl.title.take(take_s)),
        "Contact_Role__c": _Col("str", _take(ROLES, ppl.role[sf_person])),
        "Email": _Col("str", _pad_spaces(rng, sf_email)),
        "Phone": _Col("str", _phone_cells(rng, acc, ppl, sf_person, np.ones(ns, bool), False)),
        "MobilePhone": _Col("str", _phone_cells(rng, acc, ppl, sf_person, np.ones(ns, bool), True)),
        "MailingCountry": _Col("str", _country_cells(rng, ppl.country[sf_person])),
        "Preferred_Language__c": _Col(
            "str",
            _take(
                _SF_LANG + ("",),
                np.where(ppl.sf_lang[sf_person] < 0, len(_SF_LANG), ppl.sf_lang[sf_person]),
            ),
        ),
        "HasOptedOutOfEmail": _Col("bool", c["email_opt_out"][sf_person]),
        "DoNotCall": _Col("bool", c["do_not_call"][sf_person]),
        "Email_OptIn__c": _Col("bool", np.where(sf_missing(), -1, c["email_opt_in"][sf_person])),
        "WhatsApp_OptIn__c": _Col(
            "bool", np.where(sf_missing(), -1, c["whatsapp_opt_in"][sf_person])
        ),
        "SMS_OptIn__c": _Col("bool", np.where(sf_missing(), -1, c["sms_opt_in"][sf_person])),
        "Marketing_OptIn__c": _Col(
            "bool", np.where(sf_missing(), -1, c["marketing_opt_in"][sf_person])
        ),
        "LastModifiedDate": _Col("datetime", _timestamps(rng, ref, ns, 730)),
    }
    # --- HubSpot --------------------------------------------------------------------------
    case = _categorical(rng, np.array([0.55, 0.40, 0.05]), nh)  # lower, Capitalised, UPPER
    hs_email = pc.choose(
        pa.array(case.astype(np.int8)),
        ppl.email.take(take_h),
        ppl.email_cap.take(take_h),
        pc.utf8_upper(ppl.email.take(take_h)),
    )
    hs_email = _where(both_hs & (rng.random(nh) < 0.05), ppl.email_alt.take(take_h), hs_email)
    plain = both_hs & (rng.random(nh) < 0.10)  # typed without accents in the other CRM
    first = _where(plain, ppl.first_ascii.take(take_h), ppl.first.take(take_h))
    last = _where(plain, ppl.last_ascii.take(take_h), ppl.last.take(take_h))
    last = _where(rng.random(nh) < 0.03, pc.utf8_upper(last), last)
    acc_h = pa.array(ppl.acc[hs_person])
    company = acc.name.take(acc_h)
    company = _where(rng.random(nh) < 0.05, pc.utf8_upper(company), company)
    erp_no = acc.number.take(acc_h)
    erp_no = _where(rng.random(nh) < 0.01, pc.utf8_lower(erp_no), erp_no)
    erp_no = _where(rng.random(nh) < 0.02, _EMPTY, erp_no)

    def hs_flag(flag: str, unknown: float) -> np.ndarray:
        v = c[flag][hs_person].copy()
        conflict = both_hs & (rng.random(nh) < 0.06)  # the two CRMs disagree
        v = np.where(conflict, 1 - v, v)
        return np.where(rng.random(nh) < unknown, -1, v).astype(np.int8)

    hs = _Table("hubspot_contacts")
    hs_lang = np.where(ppl.sf_lang[hs_person] < 0, len(_HS_LANG), ppl.sf_lang[hs_person])
    hs_lang = np.where(rng.random(nh) < 0.05, len(_HS_LANG), hs_lang)
    hs.cols = {
        "Record ID": _Col("int", hs_ids, valid=np.ones(nh, bool)),
        "Associated Company ID": _Col(
            "int", acc.hs_id[ppl.acc[hs_person]], valid=rng.random(nh) >= 0.02
        ),
        "ERP Account Number": _Col("str", erp_no),
        "Company Name": _Col("str", company),
        "First Name": _Col("str", first),
        "Last Name": _Col("str", last),
        "Job Title": _Col("str", ppl.title.take(take_h)),
        "Buying Role": _Col("str", _take(ROLES, ppl.role[hs_person])),
        "Email": _Col("str", _pad_spaces(rng, hs_email)),
        "Phone Number": _Col(
            "str",
            _phone_cells(rng, acc, ppl, hs_person, ~(both_hs & (rng.random(nh) < 0.12)), False),
        ),
        "Mobile Phone Number": _Col(
            "str",
            _phone_cells(rng, acc, ppl, hs_person, ~(both_hs & (rng.random(nh) < 0.08)), True),
        ),
        "Country/Region": _Col("str", _country_cells(rng, ppl.country[hs_person])),
        "Preferred language": _Col("str", _take(_HS_LANG + ("",), hs_lang)),
        "Unsubscribed from all email": _Col("bool", hs_flag("email_opt_out", 0.10)),
        "WhatsApp Opt-In": _Col("bool", hs_flag("whatsapp_opt_in", 0.25)),
        "SMS Opt-In": _Col("bool", hs_flag("sms_opt_in", 0.25)),
        "Marketing Opt-In": _Col("bool", hs_flag("marketing_opt_in", 0.20)),
        "Last Modified Date": _Col(
            "datetime",
            _timestamps(rng, ref, nh, 730).astype("datetime64[m]").astype("datetime64[s]"),
        ),
    }

    # The id events use for a person: the Salesforce Id if there is one, else HubSpot's.
    known_as = pa.nulls(ppl.n, pa.string()).fill_null("")
    hs_mask = np.zeros(ppl.n, bool)
    hs_mask[hs_person] = True
    order_h = np.argsort(hs_person)
    known_as = pc.replace_with_mask(
        known_as, pa.array(hs_mask), pa.array(hs_ids[order_h]).cast(pa.string())
    )
    sf_mask = np.zeros(ppl.n, bool)
    sf_mask[sf_person] = True
    known_as = pc.replace_with_mask(
        known_as, pa.array(sf_mask), sf_ids.take(pa.array(np.argsort(sf_person)))
    )
    return sf, hs, known_as


def _pad_spaces(rng: np.random.Generator, values: pa.Array) -> pa.Array:
    """Stray spaces around a few cells, as copy-pasted values have."""
    n = len(values)
    how = np.where(rng.random(n) < 0.02, rng.integers(1, 4, n), 0)
    return pc.choose(
        pa.array(how.astype(np.int8)),
        values,
        _cat(" ", values),
        _cat(values, " "),
        _cat("  ", values, " "),
    )


@dataclass
class _Invoices:
    """Open invoices (one per ERP invoice line) so events can point at real documents."""

    number: pa.Array
    remaining: np.ndarray  # cents
    first_of_account: np.ndarray
    count_of_account: np.ndarray


def _erp(
    rng: np.random.Generator, acc: _Accounts, invoices_per_account: float, ref: date
) -> tuple[_Table, _Invoices]:
    """Business Central style customer ledger: invoices, payments, credit memos."""
    weight = rng.gamma(2.0, 0.5, acc.n)
    count = rng.poisson(invoices_per_account * weight)
    m = int(count.sum())
    account = np.repeat(np.arange(acc.n), count)
    country = acc.country[account]
    ref_day = np.datetime64(ref, "D")
    due_offset = np.where(rng.random(m) < 0.6, rng.integers(-45, 61, m), rng.integers(-180, -44, m))
    terms = np.array([0, 15, 30, 30, 45, 60, 60, 90])[rng.integers(0, 8, m)]
    due = ref_day + due_offset.astype("timedelta64[D]")
    posting = np.minimum(
        due - terms.astype("timedelta64[D]"),
        ref_day - rng.integers(0, 10, m).astype("timedelta64[D]"),
    )
    size = _CUSTOMER_TYPE_SIZE[acc.customer_type[account]]
    eur = rng.lognormal(np.log(900), 1.0, m) * size
    amount = np.round(eur * _FX_PER_EUR[country] * 100).astype(np.int64)
    whole = _WHOLE_UNITS[country]
    amount = np.where(whole, np.round(amount / 100) * 100, amount).astype(np.int64)
    amount = np.maximum(amount, 100)

    past_due = due_offset < 0
    state = np.where(
        past_due,
        _categorical(rng, np.array([0.66, 0.20, 0.14]), m),
        _categorical(rng, np.array([0.90, 0.06, 0.04]), m),
    )  # 0 unpaid, 1 partially paid, 2 paid
    has_credit = rng.random(m) < 0.06
    credit = np.where(has_credit, np.round(amount * rng.uniform(0.05, 0.3, m)), 0).astype(np.int64)
    credit = np.where(whole, np.round(credit / 100) * 100, credit).astype(np.int64)
    paid = np.select(
        [state == 1, state == 2],
        [np.round((amount - credit) * rng.uniform(0.1, 0.9, m)), amount - credit],
        0,
    ).astype(np.int64)
    paid = np.where(whole, np.round(paid / 100) * 100, paid).astype(np.int64)
    remaining = amount - credit - paid
    days_since = np.maximum((ref_day - posting).astype(np.int64), 0)
    pay_day = posting + (rng.random(m) * (days_since + 1)).astype("timedelta64[D]")
    cm_day = posting + (rng.random(m) * (days_since + 1)).astype("timedelta64[D]")

    def doc_numbers(prefix: str, seq: np.ndarray, when: np.ndarray) -> pa.Array:
        yy = (when.astype("datetime64[Y]").astype(np.int64) + 1970) % 100
        return _cat(prefix, _digits(yy, 2), "-", _digits(seq, max(6, len(str(len(seq))))))

    inv_no = doc_numbers("FV", _rank(posting), posting)
    pay_rows = np.flatnonzero(paid > 0)
    cm_rows = np.flatnonzero(credit > 0)
    # Unapplied cash and credit on account: open, negative, pointing at nothing.
    un_pay_acc = np.flatnonzero(rng.random(acc.n) < 0.02)
    un_cm_acc = np.flatnonzero(rng.random(acc.n) < 0.015)
    un_pay_amt = np.round(
        rng.lognormal(np.log(400), 0.8, len(un_pay_acc))
        * _FX_PER_EUR[acc.country[un_pay_acc]]
        * 100
    ).astype(np.int64)
    un_cm_amt = np.round(
        rng.lognormal(np.log(200), 0.8, len(un_cm_acc)) * _FX_PER_EUR[acc.country[un_cm_acc]] * 100
    ).astype(np.int64)
    un_pay_day = ref_day - rng.integers(0, 60, len(un_pay_acc)).astype("timedelta64[D]")
    un_cm_day = ref_day - rng.integers(0, 90, len(un_cm_acc)).astype("timedelta64[D]")

    n_pay = len(pay_rows) + len(un_pay_acc)
    n_cm = len(cm_rows) + len(un_cm_acc)
    pay_when = np.concatenate([pay_day[pay_rows], un_pay_day])
    cm_when = np.concatenate([cm_day[cm_rows], un_cm_day])
    pay_no = doc_numbers("CB", _rank(pay_when), pay_when)
    cm_no = doc_numbers("AB", _rank(cm_when), cm_when)

    # Stack invoices, payments, credit memos (typed), then order like the ledger screen.
    doc_type = np.concatenate(
        [np.zeros(m, np.int8), np.ones(n_pay, np.int8), np.full(n_cm, 2, np.int8)]
    )
    line_acc = np.concatenate([account, account[pay_rows], un_pay_acc, account[cm_rows], un_cm_acc])
    line_post = np.concatenate([posting, pay_when, cm_when])
    line_due = np.concatenate([due, pay_when, cm_when])
    line_amount = np.concatenate(
        [amount, -paid[pay_rows], -un_pay_amt, -credit[cm_rows], -un_cm_amt]
    )
    line_remaining = np.concatenate(
        [
            remaining,
            np.zeros(len(pay_rows), np.int64),
            -un_pay_amt,
            np.zeros(len(cm_rows), np.int64),
            -un_cm_amt,
        ]
    )
    numbers = pa.concat_arrays([inv_no, pay_no, cm_no])
    applies = pa.concat_arrays([
        pa.repeat(_EMPTY, m),
        inv_no.take(pa.array(pay_rows)),
        pa.repeat(_EMPTY, len(un_pay_acc)),
        inv_no.take(pa.array(cm_rows)),
        pa.repeat(_EMPTY, len(un_cm_acc)),
    ])  # fmt: skip
    order = np.lexsort((doc_type, line_post, line_acc))
    t = pa.array(order)
    doc_type, line_acc, line_post, line_due = (
        doc_type[order],
        line_acc[order],
        line_post[order],
        line_due[order],
    )
    line_amount, line_remaining = line_amount[order], line_remaining[order]
    n_lines = len(order)
    spanish = rng.random(n_lines) < 0.04  # rows keyed in by the Spanish subsidiary
    type_label = np.where(spanish, doc_type + 3, doc_type)
    erp = _Table("erp_open_items")
    erp.cols = {
        "Document Type": _Col(
            "str",
            _take(("Invoice", "Payment", "Credit Memo", "Factura", "Pago", "Abono"), type_label),
        ),
        "Document No.": _Col("str", numbers.take(t)),
        "Customer No.": _Col("str", acc.number.take(pa.array(line_acc))),
        "Customer Type": _Col("str", _take(CUSTOMER_TYPES, acc.customer_type[line_acc])),
        "Posting Date": _Col("date", line_post),
        "Due Date": _Col("date", line_due),
        "Amount": _Col("money", line_amount),
        "Remaining Amount": _Col("money", line_remaining),
        "Applies-to Doc. No.": _Col("str", applies.take(t)),
        "Currency Code": _Col("str", _take(_CURRENCY, acc.country[line_acc])),
        "Status": _Col("str", _take(("Closed", "Open"), (line_remaining != 0).astype(np.int8))),
    }
    first = np.r_[0, np.cumsum(count)[:-1]]
    return erp, _Invoices(inv_no, remaining, first, count)


def _events(
    rng: np.random.Generator,
    acc: _Accounts,
    ppl: _People,
    known_as: pa.Array,
    inv: _Invoices,
    per_contact: float,
    ref: date,
) -> _Table:
    """Engagement, call, promise, payment and dispute events, in time order."""
    n = int(round(per_contact * ppl.n))
    person = rng.integers(0, ppl.n, n)
    etype = _categorical(rng, _EVENT_P, n)
    channel = _categorical(rng, _CHANNEL_BY_TYPE[etype])
    when = np.sort(_timestamps(rng, ref, n, 90))
    account = ppl.acc[person]
    tp = pa.array(person)

    # Who: email channel by address, phone channels by number, the rest by CRM id.
    has_phone = ppl.has_mobile[person]
    by_email = (channel == 0) & ppl.email_ok[person] & (rng.random(n) < 0.8)
    by_phone = np.isin(channel, (1, 2, 3, 4)) & has_phone & (rng.random(n) < 0.85)
    phone = _e164(ppl.mobile["plan"][person], ppl.mobile["nsn"].take(tp))
    phone = _where(
        rng.random(n) < 0.15, pc.utf8_slice_codeunits(phone, 1), phone
    )  # WhatsApp: no "+"
    email = ppl.email.take(tp)

    # Money events point at one of the account's invoices, when it has any.
    money = np.isin(etype, (9, 10))
    has_inv = inv.count_of_account[account] > 0
    pick = inv.first_of_account[account] + (rng.random(n) * inv.count_of_account[account]).astype(
        np.int64
    )
    pick = np.where(has_inv, pick, 0)
    with_invoice = np.isin(etype, (9, 10, 11)) & has_inv
    open_cents = inv.remaining[pick] if len(inv.remaining) else np.zeros(n, np.int64)
    open_cents = np.where(has_inv, open_cents, 0)
    fallback = np.round(
        rng.lognormal(np.log(800), 0.9, n) * _FX_PER_EUR[acc.country[account]] * 100
    )
    base = np.where(open_cents > 0, open_cents, fallback)
    share = np.where(rng.random(n) < 0.6, 1.0, rng.uniform(0.2, 0.9, n))
    amount = np.round(base * share).astype(np.int64)
    amount = np.where(
        _WHOLE_UNITS[acc.country[account]], np.round(amount / 100) * 100, amount
    ).astype(np.int64)
    promised = (
        when.astype("datetime64[D]") + rng.integers(2, 31, n).astype("timedelta64[D]")
    ).astype("datetime64[D]")
    promised = np.where(etype == 9, promised, np.datetime64("NaT"))
    messaging = np.isin(etype, (0, 1, 2, 3, 4, 5, 6, 7, 8, 12))
    msg_key = (
        person.astype(np.uint64) * np.uint64(64)
        + channel.astype(np.uint64) * np.uint64(8)
        + rng.integers(0, 4, n).astype(np.uint64)
    )
    msg = _hex_ids(msg_key, 16, 0x5EED)
    msg = _cat(_take(("msg_", "wamid.", "sms_", "rcs_", "call_", "app_", "msg_"), channel), msg)
    outcome = np.where(etype == 8, _categorical(rng, np.array([0.4, 0.35, 0.2, 0.05]), n), 4)

    invoice_no = inv.number.take(pa.array(pick)) if len(inv.remaining) else pa.repeat(_EMPTY, n)
    ev = _Table("events")
    ev.cols = {
        "event_id": _Col(
            "str", _cat("evt_", _hex_ids(np.arange(n), 12, int(rng.integers(1, 2**40))))
        ),
        "occurred_at": _Col("datetime", when),
        "event_type": _Col("str", _take(EVENT_TYPES, etype)),
        "channel": _Col("str", _take(CHANNELS, channel)),
        "account_id": _Col("str", acc.number.take(pa.array(account))),
        "contact_source_id": _Col("str", _where(by_email | by_phone, _EMPTY, known_as.take(tp))),
        "contact_email": _Col("str", _where(by_email, email, _EMPTY)),
        "contact_phone": _Col("str", _where(by_phone, phone, _EMPTY)),
        "message_id": _Col("str", _where(messaging, msg, _EMPTY)),
        "amount": _Col("money", amount, valid=money),
        "currency": _Col("str", _where(money, _take(_CURRENCY, acc.country[account]), _EMPTY)),
        "promised_date": _Col("date", promised),
        "invoice_number": _Col("str", _where(with_invoice, invoice_no, _EMPTY)),
        "outcome": _Col("str", _take(CALL_OUTCOMES + ("",), outcome)),
    }
    return ev


def _renewals(
    rng: np.random.Generator, acc: _Accounts, ppl: _People, ref: date
) -> tuple[_Table, _Table]:
    """Renewal opportunities (Salesforce) and deals (HubSpot) for a subset of accounts."""
    sf_acc = np.zeros(acc.n, bool)
    sf_acc[ppl.acc[ppl.in_sf]] = True
    hs_acc = np.zeros(acc.n, bool)
    hs_acc[ppl.acc[ppl.in_hs]] = True
    renews = rng.random(acc.n) < 0.35
    in_both = rng.random(acc.n) < 0.2
    to_sf = renews & sf_acc & (acc.home_sf | ~hs_acc | in_both)
    to_hs = renews & hs_acc & (~acc.home_sf | ~sf_acc | in_both)
    end_offset = rng.integers(-30, 121, acc.n)
    end = np.datetime64(ref, "D") + end_offset.astype("timedelta64[D]")
    acv = np.round(rng.lognormal(np.log(12000), 0.9, acc.n) * _FX_PER_EUR[acc.country]) * 100
    past = end_offset < 0
    stage = np.where(
        past,
        _categorical(rng, np.array([0.05, 0.25, 0.55, 0.15]), acc.n),
        _categorical(rng, np.array([0.40, 0.45, 0.12, 0.03]), acc.n),
    )
    year = pa.array(end.astype("datetime64[Y]").astype(np.int64) + 1970).cast(pa.string())
    word = _take(("Renovación", "Renovação", "Renewal"), acc.lang)

    rows = np.flatnonzero(to_sf)
    k = len(rows)
    t = pa.array(rows)
    owners = _sf_ids("005", rng.integers(62**5, 62**5 * 20) + np.arange(max(3, acc.n // 300)))
    sf = _Table("salesforce_opportunities")
    sf.cols = {
        "Id": _Col("str", _sf_ids("006", rng.integers(62**5, 62**5 * 20) + np.arange(k))),
        "AccountId": _Col("str", acc.sf_id.take(t)),
        "Account_Number__c": _Col("str", acc.number.take(t)),
        "Name": _Col("str", _cat(acc.name.take(t), " - ", word.take(t), " ", year.take(t))),
        "StageName": _Col("str", _take(SF_STAGES, stage[rows])),
        "Contract_End_Date__c": _Col("date", end[rows]),
        "Amount": _Col("money", acv[rows].astype(np.int64)),
        "CurrencyIsoCode": _Col("str", _take(_CURRENCY, acc.country[rows])),
        "OwnerId": _Col("str", owners.take(pa.array(rng.integers(0, len(owners), k)))),
        "LastModifiedDate": _Col("datetime", _timestamps(rng, ref, k, 120)),
    }

    rows = np.flatnonzero(to_hs)
    k = len(rows)
    t = pa.array(rows)
    # Account managers: one name per owner, first and last name from the same language.
    n_owners = max(3, acc.n // 300)
    owner_lang = _categorical(rng, np.array([0.75, 0.1, 0.15]), n_owners)
    first_flat, first_sizes, first_start = _flat(_FIRST)
    last_flat, last_sizes, last_start = _flat(_LAST)
    owner_names = _cat(
        _take(
            [f for f, _ in first_flat], _pick_in_groups(rng, owner_lang, first_sizes, first_start)
        ),
        " ",
        _take(last_flat, _pick_in_groups(rng, owner_lang, last_sizes, last_start)),
    )
    hs_stage = np.where(
        rng.random(k) < 0.03, np.where(stage[rows] >= 2, stage[rows] + 2, stage[rows]), stage[rows]
    )
    hs = _Table("hubspot_deals")
    hs.cols = {
        "Record ID": _Col(
            "int",
            rng.integers(20_000_000_000, 30_000_000_000) + np.cumsum(rng.integers(1, 500, k)),
            valid=np.ones(k, bool),
        ),
        "ERP Account Number": _Col("str", acc.number.take(t)),
        "Deal Name": _Col("str", _cat(word.take(t), " ", year.take(t), " - ", acc.name.take(t))),
        "Deal Stage": _Col("str", _take(HS_STAGES + ("closedwon", "closedlost"), hs_stage)),
        "Contract End Date": _Col("date", end[rows]),
        "Amount": _Col(
            "money", (acv[rows] * rng.choice([1.0, 1.0, 1.0, 1.05], k)).round(-2).astype(np.int64)
        ),
        "Currency": _Col("str", _take(_CURRENCY, acc.country[rows])),
        "Deal owner": _Col("str", owner_names.take(pa.array(rng.integers(0, n_owners, k)))),
        "Last Modified Date": _Col(
            "datetime",
            _timestamps(rng, ref, k, 120).astype("datetime64[m]").astype("datetime64[s]"),
        ),
    }
    return sf, hs


# ---------------------------------------------------------------------------------------------
# Deliberately broken rows (a small fixed share, for the quarantine)
# ---------------------------------------------------------------------------------------------

_BAD_DATES = ("31/02/2026", "00/00/0000", "2026-13-45", "pendiente")
_BAD_TIMES = ("2026-02-30T10:00:00.000Z", "not a date", "31/12/9999 99:99", "ayer")
_BAD_CURRENCIES = ("XXX", "EURO")

Defect = Callable[[_Table, np.ndarray, np.random.Generator], None]
Eligible = Callable[[_Table], np.ndarray] | None  # rows a defect makes sense on (None: all)


def _blank(header: str) -> Defect:
    def apply(t: _Table, rows: np.ndarray, rng: np.random.Generator) -> None:
        col = t.cols[header]
        if col.kind == "int":
            col.valid = col.valid.copy()
            col.valid[rows] = False
        else:
            col.values = pc.if_else(pa.array(_mask(t.nrows, rows)), _EMPTY, col.values)

    return apply


def _unparseable(header: str, choices: tuple[str, ...]) -> Defect:
    def apply(t: _Table, rows: np.ndarray, rng: np.random.Generator) -> None:
        col = t.cols[header]
        col.broken_rows = rows
        col.broken_text = _take(choices, rng.integers(0, len(choices), len(rows)))

    return apply


def _negative(*headers: str) -> Defect:
    def apply(t: _Table, rows: np.ndarray, rng: np.random.Generator) -> None:
        for h in headers:
            col = t.cols[h]
            col.values = np.asarray(col.values).copy()
            col.values[rows] = -np.abs(col.values[rows]) - 100

    return apply


def _bad_currency(header: str) -> Defect:
    def apply(t: _Table, rows: np.ndarray, rng: np.random.Generator) -> None:
        bad = _take(_BAD_CURRENCIES, rng.integers(0, len(_BAD_CURRENCIES), len(rows)))
        col = t.cols[header]
        col.values = pc.replace_with_mask(col.values, pa.array(_mask(t.nrows, rows)), bad)

    return apply


def _mask(n: int, rows: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[rows] = True
    return out


def _invoices(t: _Table) -> np.ndarray:
    return pc.is_in(t.cols["Document Type"].values, pa.array(["Invoice", "Factura"])).to_numpy(
        zero_copy_only=False
    )


def _money_events(t: _Table) -> np.ndarray:
    return t.cols["amount"].valid


_DEFECTS: dict[str, tuple[tuple[Defect, Eligible], ...]] = {
    "salesforce_contacts": (
        (_blank("Id"), None),
        (_unparseable("LastModifiedDate", _BAD_TIMES), None),
    ),
    "hubspot_contacts": (
        (_blank("Record ID"), None),
        (_unparseable("Last Modified Date", _BAD_TIMES), None),
    ),
    "erp_open_items": (
        (_unparseable("Posting Date", _BAD_DATES), None),
        (_unparseable("Due Date", _BAD_DATES), None),
        (_negative("Amount", "Remaining Amount"), _invoices),
        (_bad_currency("Currency Code"), None),
        (_blank("Customer No."), None),
    ),
    "events": (
        (_blank("event_id"), None),
        (_unparseable("occurred_at", _BAD_TIMES), None),
        (_bad_currency("currency"), _money_events),
        (_negative("amount"), _money_events),
    ),
    "salesforce_opportunities": (
        (_blank("Id"), None),
        (_unparseable("Contract_End_Date__c", ("2027-02-30", "TBD")), None),
        (_negative("Amount"), None),
        (_bad_currency("CurrencyIsoCode"), None),
    ),
    "hubspot_deals": (
        (_blank("Record ID"), None),
        (_unparseable("Contract End Date", ("2027-02-30", "TBD")), None),
        (_negative("Amount"), None),
        (_bad_currency("Currency"), None),
    ),
}


def _spoil(rng: np.random.Generator, table: _Table, share: float) -> None:
    """Break about `share` of the rows (at least one when share > 0), one defect per row."""
    n = table.nrows
    if share <= 0 or n == 0:
        return
    k = min(n, max(1, int(round(n * share))))
    rows = rng.choice(n, k, replace=False)
    defects = _DEFECTS[table.name]
    kind = rng.integers(0, len(defects), k)
    taken = np.zeros(n, dtype=bool)
    for i, (defect, eligible) in enumerate(defects):
        mine = np.sort(rows[kind == i])
        if eligible is not None:  # move the draw onto rows where the defect means something
            pool = np.flatnonzero(eligible(table) & ~taken & ~_mask(n, rows))
            mine = np.sort(rng.choice(pool, min(len(mine), len(pool)), replace=False))
        if len(mine):
            taken[mine] = True
            defect(table, mine, rng)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

_LINES_PER_INVOICE = 1.27  # invoices + their payments and credit memos, on average


def generate(
    out_dir: Path,
    contacts: int = 300,
    seed: int = 7,
    fmt: Fmt = "csv",
    invoices_per_account: float | None = None,
    events_per_contact: float = 3.0,
    bad_row_share: float = 0.005,
    reference_date: date = REFERENCE_DATE,
) -> dict[str, Path]:
    """Write the six exports; return {mapping_name: path}.

    `invoices_per_account` is the mean number of invoices per company; by default it gives
    about two ERP lines (invoices, payments, credit memos) per contact. `bad_row_share` of
    each file's rows (at least one row when it is above 0) get one deliberate defect.
    Everything is placed relative to `reference_date`, so the data never goes stale.
    """
    if contacts < 1:
        raise ValueError("contacts must be at least 1")
    if fmt not in ("csv", "parquet", "xlsx"):
        raise ValueError(f"unknown format {fmt!r}: use csv, parquet or xlsx")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    acc = _accounts(rng, contacts)
    ppl = _people(rng, acc)
    paths: dict[str, Path] = {}

    def emit(table: _Table) -> None:
        # Spoil and write each export as soon as it exists, so only one is in memory at a time.
        _spoil(rng, table, bad_row_share)
        paths[table.name] = _write(table, out_dir, fmt)

    sf_contacts, hs_contacts, known_as = _crm_contacts(rng, acc, ppl, reference_date)
    emit(sf_contacts)
    emit(hs_contacts)
    del sf_contacts, hs_contacts
    if invoices_per_account is None:
        invoices_per_account = 2.0 * contacts / acc.n / _LINES_PER_INVOICE
    erp, invoices = _erp(rng, acc, invoices_per_account, reference_date)
    emit(erp)
    del erp
    emit(_events(rng, acc, ppl, known_as, invoices, events_per_contact, reference_date))
    opps, deals = _renewals(rng, acc, ppl, reference_date)
    emit(opps)
    emit(deals)
    return {name: paths[name] for name in MAPPING_NAMES}
