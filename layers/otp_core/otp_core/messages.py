"""SMS bodies: default templates per locale, checks of custom templates, and parts counted as carriers bill them.

Templates use ``{app}``, ``{otp}`` and ``{minutes}``. A custom template must contain ``{otp}``, may contain
the other two, nothing else in braces, and must fit one SMS part once filled in.

Carriers bill per part, and the size of a part depends on the encoding the whole text needs (3GPP TS 23.038,
TS 23.040):

- GSM-7, when every character is in the GSM 03.38 default alphabet or its extension table: 160 septets in a
  single part, 153 per part once a text is split (the concatenation header takes the rest). Extension
  characters (``€ [ ] { } ~ ^ \\ |`` and form feed) are an escape plus a septet, so they count twice, and an
  escape pair is never split across parts.
- UCS-2 (UTF-16 on the air) as soon as one character is outside that alphabet: 70 code units in a single part,
  67 per part once split; characters outside the Basic Multilingual Plane (most emoji) take a surrogate pair,
  two units that are never split across parts.

Texts are counted exactly as they will be sent, without Unicode normalisation: a decomposed ``é`` (``e`` plus
a combining accent) is not GSM-7, and neither are the handset's curly quotes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from otp_core.errors import InvalidMessageTemplateError

PLACEHOLDERS = frozenset({"app", "otp", "minutes"})
_BRACED = re.compile(r"\{([^{}]*)\}")

# The GSM 03.38 default alphabet in septet order, 0x00 to 0x7F. Position 0x1B is not a character but the
# escape to the extension table, so it stands here as ESC and is left out of the encodable set below.
GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_BASIC: frozenset[str] = frozenset(GSM7_BASIC_TABLE) - {"\x1b"}
# The extension table's characters (each sent as ESC plus one septet). Its other entries are the page-break
# control (0x0A, form feed here), a reserved second escape and a segmentation control that is no character.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE_PART = 160
GSM7_MULTIPART = 153
UCS2_SINGLE_PART = 70
UCS2_MULTIPART = 67
APP_NAME_MAX = 20

_PART_RULE = (
    f"message must fit one SMS part once filled in: {GSM7_SINGLE_PART} GSM-7 characters (extension characters "
    f"such as € [ ] {{ }} ~ ^ \\ | count twice), or {UCS2_SINGLE_PART} when it uses characters outside the GSM "
    "alphabet"
)

# Every default stays one GSM-7 part with a 20-character app name, a 10-digit code and {minutes} up to 60
# (tests/unit/test_messages.py checks it). Spanish and Portuguese avoid ó, á, í, ú, ã and ç: one of them would
# switch the whole text to UCS-2 and its 70-unit limit.
DEFAULT_TEMPLATES: dict[str, str] = {
    "en": "{otp} is your {app} verification code. It expires in {minutes} minutes. Never share it.",
    "es": "{otp} es tu clave de {app}. Caduca en {minutes} minutos. No la compartas.",
    "fr": "{otp} est votre code de vérification {app}. Il expire dans {minutes} minutes. Ne le partagez pas.",
    "de": "{otp} ist Ihr {app}-Bestätigungscode. Er läuft in {minutes} Minuten ab. Geben Sie ihn nie weiter.",
    "pt": "{otp} é a sua senha {app}. Expira em {minutes} minutos. Nunca a partilhe.",
}

# What an end user's text may not carry (see check_template). Each pattern starts only at a boundary and its
# repeated parts are disjoint from their separators, so no input makes it backtrack; the length rule, checked
# first, bounds the text anyway.
_SCHEME = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://")
_WWW = re.compile(r"(?<![\w-])www\.", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
# Any dot (ASCII, ideographic, full-width, halfwidth, vertical) directly followed by a letter or digit reads as
# a domain to a phone's link detector, whatever the case ("Paypal-Secure.Support", "evil.xn--p1ai"): an end
# user's sentence puts a space after its full stops.
_DOT_LABEL = re.compile(r"[.\u3002\uff0e\uff61\ufe12][^\W_]")
# "1-800-FLOWERS": digits followed by a spelled-out number.
_VANITY = re.compile(r"(?:\d[\W_]*){3,}[A-Za-z]{4,}")
# A code SMS an end user writes needs no digits of its own (the code and the minutes are placeholders); a few
# allow "24h" or "2 steps", more is a number in disguise.
_MAX_DIGITS = 4
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+[\s(]{0,2}\d|\d(?:[\s().-]{0,3}\d){4,}")


def gsm7_septets(text: str) -> int | None:
    """Count the septets a text takes in the GSM 7-bit default alphabet.

    Parameters
    ----------
    text
        The SMS body exactly as it will be sent.

    Returns
    -------
    int or None
        One septet per basic character, two per extension character (escape plus septet); ``None`` when a
        character is in neither table, so the text has to go as UCS-2.
    """
    septets = 0
    for char in text:
        if char in GSM7_BASIC:
            septets += 1
        elif char in GSM7_EXTENSION:
            septets += 2
        else:
            return None
    return septets


def sms_parts(text: str) -> int:
    """Count the parts a carrier bills for a text.

    Parameters
    ----------
    text
        The SMS body exactly as it will be sent.

    Returns
    -------
    int
        GSM-7: one part up to 160 septets, else parts of 153 septets. UCS-2: one part up to 70 UTF-16 code
        units, else parts of 67. A part never ends inside an escape pair or a surrogate pair, so the count can
        exceed ``ceil(length / 153)`` (or ``/ 67``) by the pairs pushed into the next part. An empty text is
        still one (empty) message, so one part.
    """
    septets = gsm7_septets(text)
    if septets is not None:
        if septets <= GSM7_SINGLE_PART:
            return 1
        return _pack((2 if char in GSM7_EXTENSION else 1 for char in text), GSM7_MULTIPART)
    units = _utf16_units(text)
    if units <= UCS2_SINGLE_PART:
        return 1
    return _pack((2 if ord(char) > 0xFFFF else 1 for char in text), UCS2_MULTIPART)


def fits_one_part(text: str) -> bool:
    """Tell whether a text is billed as a single SMS part.

    Parameters
    ----------
    text
        The SMS body exactly as it will be sent.

    Returns
    -------
    bool
        ``True`` for at most 160 GSM-7 septets, or at most 70 UTF-16 code units when the text needs UCS-2.
    """
    return sms_parts(text) == 1


def check_app_name(name: str) -> None:
    """Refuse an app name that the default templates cannot carry in one GSM-7 part.

    Parameters
    ----------
    name
        The app's display name, substituted for ``{app}``.

    Raises
    ------
    ValueError
        Unless it has 1 to 20 characters, all of the GSM 03.38 default alphabet or its extension table, and is
        not only spaces. Line breaks and form feed are in that alphabet but refused: a name is one line.
    """
    if not 1 <= len(name) <= APP_NAME_MAX:
        raise ValueError(f"app name must be 1 to {APP_NAME_MAX} characters")
    if gsm7_septets(name) is None or any(char in "\n\r\f" for char in name):
        raise ValueError("app name must use only characters of the GSM 03.38 alphabet, on one line")
    if not name.strip():
        raise ValueError("app name must not be blank")


def default_template(locale: str | None) -> str:
    """Pick the template for a BCP 47 tag by its primary language, falling back to English.

    Parameters
    ----------
    locale
        A BCP 47 tag such as ``es-MX`` (``_`` is accepted for ``-``), or ``None``.

    Returns
    -------
    str
        The template of the tag's primary language, or the English one when that language is not shipped.
    """
    language = (locale or "en").replace("_", "-").split("-")[0].lower()
    return DEFAULT_TEMPLATES.get(language, DEFAULT_TEMPLATES["en"])


def app_template(templates: Mapping[str, str], locale: str | None) -> str:
    """The template of an app for a BCP 47 tag: the app's own for the tag's language, else the shipped one
    (:func:`default_template`); an app's English template stands in for languages neither has."""
    language = (locale or "en").replace("_", "-").split("-")[0].lower()
    if language in templates:
        return templates[language]
    if language not in DEFAULT_TEMPLATES and "en" in templates:
        return templates["en"]
    return default_template(locale)


def autofill(body: str, code: str, *, android_app_hash: str | None, web_otp_domain: str | None) -> str:
    """The SMS body with the lines that let phones fill the code in: Android's SMS Retriever (``<#> `` first,
    the app's 11-character hash at the end) and WebOTP (``@<domain> #<code>`` as the last line, after the hash
    when both are set). Both count toward the one-part rule (:func:`check_template`)."""
    if android_app_hash:
        body = f"<#> {body}\n{android_app_hash}"
    if web_otp_domain:
        body = f"{body}\n@{web_otp_domain} #{code}"
    return body


def render(template: str, *, app: str, otp: str, minutes: int) -> str:
    """Fill a template's placeholders.

    Parameters
    ----------
    template
        A default template, or a custom one that passed :func:`check_template`.
    app, otp, minutes
        The values of ``{app}``, ``{otp}`` and ``{minutes}``.

    Returns
    -------
    str
        The SMS body.
    """
    values = {"app": app, "otp": otp, "minutes": str(minutes)}
    return _BRACED.sub(lambda m: values[m.group(1)], template)


def check_template(
    template: str,
    *,
    app: str,
    code_length: int,
    minutes: int,
    end_user: bool = False,
    android_app_hash: str | None = None,
    web_otp_domain: str | None = None,
) -> None:
    """Reject a custom template that could not produce a valid one-part SMS, or that an end user may not send.

    Every template must contain ``{otp}``, use no placeholder but ``{app}``, ``{otp}`` and ``{minutes}``, have
    no unmatched brace, and fit one part (see :func:`sms_parts`) once filled in with this app name, a code of
    ``code_length`` digits and ``minutes``.

    A text written by an end user (``end_user=True``, the signed-in phone verification) is a phishing vector
    sent under the operator's name, so it must also name the app (``{app}``) and carry no link, e-mail address
    or phone number. Those are looked for in the template with each placeholder replaced by a letter, so the
    code, the minutes and the operator's app name never trip them, while ``{app}.com`` still reads as a
    domain. The text is NFKC-normalised for this search only, so a domain in full-width letters is one too.

    - Invisible format characters (Unicode category Cf: zero-width spaces, joiners, bidi controls): refused,
      since they hide links and numbers from any pattern.
    - Link: a scheme (``xxx://``), ``www.``, an IPv4 address, or any dot (ASCII, ideographic, full-width,
      halfwidth) directly followed by a letter or digit, whatever the case (``evil.com``,
      ``Paypal-Secure.Support``, ``evil.xn--p1ai``): that is what a phone's link detector reads as a domain,
      while a sentence puts a space after its full stop (``Hi. Your code``).
    - E-mail address: ``local@host.domain``.
    - Phone number: ``+`` followed by a digit, five or more digits allowing up to three spaces, dots, dashes
      or parentheses between them (``(415) 555-2671``), a spelled-out number (``1-800-FLOWERS``), or more
      than four digits in all.

    Parameters
    ----------
    template
        The custom text.
    app
        The app name that will replace ``{app}``.
    code_length
        The digits of the codes this app sends.
    minutes
        The code lifetime that will replace ``{minutes}``.
    end_user
        ``True`` when an end user wrote the text rather than the operator's server.
    android_app_hash, web_otp_domain
        The app's autofill settings: their lines (:func:`autofill`) must fit the same part.

    Raises
    ------
    InvalidMessageTemplateError
        With a detail naming the rule that failed; the detail never repeats the text.
    """
    names = _BRACED.findall(template)
    if any(name not in PLACEHOLDERS for name in names):
        raise InvalidMessageTemplateError("message may use only the placeholders {app}, {otp} and {minutes}")
    if "otp" not in names:
        raise InvalidMessageTemplateError("message must contain {otp}")
    bare = _BRACED.sub("", template)
    if "{" in bare or "}" in bare:
        raise InvalidMessageTemplateError("message has an unmatched brace")
    if end_user and "app" not in names:
        raise InvalidMessageTemplateError("message must contain {app}")
    # Length before the content searches: it bounds the text they scan.
    code = "0" * code_length
    body = render(template, app=app, otp=code, minutes=minutes)
    if not fits_one_part(autofill(body, code, android_app_hash=android_app_hash, web_otp_domain=web_otp_domain)):
        raise InvalidMessageTemplateError(_PART_RULE)
    if end_user:
        _check_end_user_text(unicodedata.normalize("NFKC", _BRACED.sub("X", template)))


def _check_end_user_text(text: str) -> None:
    # Invisible format characters (zero-width space, joiners, bidi controls) have no place in a code SMS and
    # are how "bit\u200b.ly" or "4\u200b1\u200b5..." slip past the patterns below: refuse them outright.
    if any(unicodedata.category(char) == "Cf" for char in text):
        raise InvalidMessageTemplateError("message must not contain invisible formatting characters")
    # E-mail first: its host is a domain too, and the detail should name what the user wrote.
    if _EMAIL.search(text):
        raise InvalidMessageTemplateError("message must not contain an e-mail address")
    if _SCHEME.search(text) or _WWW.search(text) or _IPV4.search(text):
        raise InvalidMessageTemplateError("message must not contain a link")
    # Numbers before bare dots, so "415.555.2671" is named for what it is.
    if _PHONE.search(text) or _VANITY.search(text) or sum(char.isdigit() for char in text) > _MAX_DIGITS:
        raise InvalidMessageTemplateError("message must not contain a phone number")
    if _DOT_LABEL.search(text):
        raise InvalidMessageTemplateError("message must not contain a link")


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _pack(sizes: Iterable[int], capacity: int) -> int:
    """Fill parts of ``capacity`` greedily with indivisible units of the given sizes; count the parts."""
    parts, used = 1, 0
    for size in sizes:
        if used + size > capacity:
            parts, used = parts + 1, 0
        used += size
    return parts
