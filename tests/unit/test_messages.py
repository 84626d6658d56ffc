"""SMS bodies: GSM 03.38 septets, parts as carriers bill them, custom-template rules and the default templates."""

from __future__ import annotations

import pytest

from otp_core.errors import InvalidMessageTemplateError
from otp_core.messages import (
    DEFAULT_TEMPLATES,
    GSM7_BASIC,
    GSM7_BASIC_TABLE,
    GSM7_EXTENSION,
    check_app_name,
    check_template,
    default_template,
    fits_one_part,
    gsm7_septets,
    render,
    sms_parts,
)

# 3GPP TS 23.038 default alphabet by Unicode code point, septet 0x00 to 0x7F (unicode.org GSM0338.TXT).
# Written as code points, not glyphs, so a Latin lookalike of a Greek capital cannot slip in. 0x1B is the
# escape to the extension table, not a character.
ESCAPE = 0x1B
SPEC_BASIC_TABLE: list[int | None] = [
    *(0x40, 0xA3, 0x24, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0x0A, 0xD8, 0xF8, 0x0D, 0xC5, 0xE5),
    *(0x394, 0x5F, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E, None, 0xC6, 0xE6, 0xDF, 0xC9),
    *(0x20, 0x21, 0x22, 0x23, 0xA4),
    *range(0x25, 0x40),
    0xA1,
    *range(0x41, 0x5B),
    *(0xC4, 0xD6, 0xD1, 0xDC, 0xA7, 0xBF),
    *range(0x61, 0x7B),
    *(0xE4, 0xF6, 0xF1, 0xFC, 0xE0),
]
SPEC_BASIC = [chr(point) for point in SPEC_BASIC_TABLE if point is not None]
# Extension table: form feed ^ { } \ [ ~ ] | and the euro sign.
SPEC_EXTENSION = [chr(point) for point in (0x0C, 0x5E, 0x7B, 0x7D, 0x5C, 0x5B, 0x7E, 0x5D, 0x7C, 0x20AC)]
# Characters users type that are in neither table, so one of them switches a whole text to UCS-2.
NOT_GSM = {
    "a acute": "\u00e1",
    "i acute": "\u00ed",
    "o acute": "\u00f3",
    "u acute": "\u00fa",
    "a tilde": "\u00e3",
    "o tilde": "\u00f5",
    "c cedilla (only the capital is GSM)": "\u00e7",
    "e circumflex": "\u00ea",
    "a grave capital (only the small is GSM)": "\u00c0",
    "backtick": "`",
    "tab": "\t",
    "escape itself": "\x1b",
    "no-break space": "\u00a0",
    "right single quote": "\u2019",
    "left double quote": "\u201c",
    "greek capital alpha (looks like A)": "\u0391",
    "greek small delta": "\u03b4",
    "cyrillic small a": "\u0430",
    "combining acute accent": "\u0301",
    "cjk": "\u4e2d",
    "emoji": "\U0001f600",
}

SERVER = {"app": "SMS OTP", "code_length": 6, "minutes": 10}
END_USER = {**SERVER, "end_user": True}
PART_RULE = "message must fit one SMS part"


def refusal(template: str, **settings: object) -> str | None:
    """The detail check_template refuses a template with, or None when it accepts it."""
    try:
        check_template(template, **{**SERVER, **settings})  # type: ignore[arg-type]
    except InvalidMessageTemplateError as exc:
        return exc.detail
    return None


def refused(template: str, **settings: object) -> str:
    """The detail check_template refuses a template with; fails the test when it accepts it."""
    detail = refusal(template, **settings)
    assert detail is not None, "the template was accepted"
    return detail


# --- the alphabet -----------------------------------------------------------------------------------------


def test_basic_table_is_the_spec_table_in_septet_order():
    # Given the 128 positions of the 3GPP default alphabet
    # When the module's table is read by code point
    table = [None if ord(char) == ESCAPE else ord(char) for char in GSM7_BASIC_TABLE]
    # Then it is exactly the spec's, and the encodable set is its 127 characters
    assert table == SPEC_BASIC_TABLE
    assert len(GSM7_BASIC_TABLE) == 128
    assert frozenset(SPEC_BASIC) == GSM7_BASIC
    assert len(GSM7_BASIC) == 127
    assert frozenset(SPEC_EXTENSION) == GSM7_EXTENSION


@pytest.mark.parametrize("char", SPEC_BASIC, ids=[f"U+{ord(c):04X}" for c in SPEC_BASIC])
def test_every_basic_character_is_one_septet(char):
    # Given a character of the default alphabet
    # When it is counted
    septets = gsm7_septets(char)
    # Then it takes one septet, and padding it with another basic character takes two
    assert septets == 1
    assert gsm7_septets(char + "a") == 2


@pytest.mark.parametrize("char", SPEC_EXTENSION, ids=[f"U+{ord(c):04X}" for c in SPEC_EXTENSION])
def test_every_extension_character_is_two_septets(char):
    # Given a character of the extension table
    # When it is counted alone and in a text
    # Then it is an escape plus a septet
    assert gsm7_septets(char) == 2
    assert gsm7_septets(f"a{char}b") == 4


@pytest.mark.parametrize("char", NOT_GSM.values(), ids=NOT_GSM.keys())
def test_characters_outside_both_tables_need_ucs2(char):
    # Given a character in neither GSM table, inside an otherwise GSM text
    text = f"Your code {char} 123456"
    # When it is counted
    # Then there is no GSM-7 count and the text is billed by UTF-16 units (21 or 22 fit one part)
    assert gsm7_septets(char) is None
    assert gsm7_septets(text) is None
    assert sms_parts(text) == 1
    assert sms_parts(text * 4) == 2


def test_every_printable_ascii_character_is_gsm_except_the_backtick():
    # Given printable ASCII
    printable = [chr(point) for point in range(0x20, 0x7F)]
    # When each is counted
    counts = {char: gsm7_septets(char) for char in printable}
    # Then only the backtick is missing, and exactly the extension nine count twice
    assert [char for char, count in counts.items() if count is None] == ["`"]
    assert sorted(char for char, count in counts.items() if count == 2) == sorted("[\\]^{|}~")


# --- parts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 158 + "€", 1),  # 160 septets
        ("a" * 159 + "€", 2),  # 161 septets
        ("€" * 80, 1),
        ("€" * 80 + "a", 2),
        ("a" * 306, 2),  # 2 x 153
        ("a" * 307, 3),
        # 306 septets, but the euro cannot start at septet 153 of part one, so it opens part two.
        ("a" * 152 + "€" + "a" * 152, 3),
        ("a" * 153 + "€" + "a" * 151, 2),
        ("\u00e1" * 70, 1),
        ("\u00e1" * 71, 2),
        ("a" * 69 + "\u00e1", 1),  # one non-GSM character makes 70 ASCII letters UCS-2
        ("a" * 70 + "\u00e1", 2),
        ("\U0001f600" * 35, 1),  # 70 units: a surrogate pair counts two
        ("\U0001f600" * 35 + "a", 2),
        ("\U0001f600" * 36, 2),
        ("\u00e1" * 134, 2),  # 2 x 67
        ("\u00e1" * 135, 3),
        # 134 units, but the surrogate pair cannot be split over parts one and two.
        ("\u00e1" * 66 + "\U0001f600" + "\u00e1" * 66, 3),
        ("\u00e1" * 65 + "\U0001f600" + "\u00e1" * 67, 2),
    ],
    ids=lambda value: f"{len(value)}-chars" if isinstance(value, str) else str(value),
)
def test_parts_are_counted_as_carriers_bill_them(text, parts):
    # Given a text at a part boundary
    # When its parts are counted
    counted = sms_parts(text)
    # Then the count follows the GSM-7 (160/153) or UCS-2 (70/67) rule, never splitting a pair
    assert counted == parts
    assert fits_one_part(text) is (parts == 1)


def test_septets_count_the_escape_of_each_extension_character():
    # Given a text of 159 basic characters and one euro sign
    text = "a" * 159 + "€"
    # When it is counted
    # Then 161 septets, though only 160 characters
    assert len(text) == 160
    assert gsm7_septets(text) == 161
    assert not fits_one_part(text)


# --- custom templates: rules for every caller -------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "detail"),
    [
        ("no placeholder", "message must contain {otp}"),
        ("{code} {app}", "message may use only the placeholders {app}, {otp} and {minutes}"),
        ("{otp} {secretname}", "message may use only the placeholders {app}, {otp} and {minutes}"),
        ("{otp} {", "message has an unmatched brace"),
        ("{otp} }", "message has an unmatched brace"),
        ("{app}: {otp}", None),
        ("Code {otp}, valid {minutes} min", None),
    ],
)
def test_structure_of_a_template(template, detail):
    # Given a server's custom template
    # When it is checked
    # Then it is refused with the rule it breaks, naming none of its own words
    assert refusal(template) == detail
    assert "secretname" not in (detail or "")


def test_the_filled_text_must_fit_one_gsm7_part():
    # Given templates that fill to exactly 160 and 161 septets with a 10-digit code and a 7-character app name
    fits = "{app} {otp} " + "a" * 141  # 7 + 1 + 10 + 1 + 141 = 160
    over = fits + "a"
    euro = "{app} {otp} " + "a" * 140 + "€"  # the euro sign takes two septets: 161
    # When each is checked
    # Then only the 160-septet one passes, and the refusal states the part rule
    assert refusal(fits, code_length=10) is None
    assert refused(over, code_length=10).startswith(PART_RULE)
    assert refused(euro, code_length=10).startswith(PART_RULE)
    assert "160" in refused(over, code_length=10)
    assert "70" in refused(over, code_length=10)


def test_the_code_length_and_the_app_name_count_in_the_length():
    # Given a template one character under the limit with a 6-digit code
    template = "{otp} " + "a" * 153  # 6 + 1 + 153 = 160
    # When it is checked with a longer code, or with a long app name in place of an {app}
    # Then both push it over one part
    assert refusal(template, code_length=6) is None
    assert refusal(template, code_length=7) is not None
    assert refusal("{app}{otp}" + "a" * 147, app="SMS OTP") is None  # 7 + 6 + 147 = 160
    assert refusal("{app}{otp}" + "a" * 147, app="SMS OTP!") is not None


def test_one_accent_outside_gsm_drops_the_limit_to_70():
    # Given a Spanish text with one o-acute (not GSM) that fills to exactly 70 characters, and one more "!"
    accented = "{otp} es tu c\u00f3digo de {app}. Caduca en {minutes} minutos. No lo compartas."
    longer = accented + "!"
    # When they are checked, and the same 71 characters with a plain o
    # Then 70 UCS-2 units pass, 71 are refused, and 71 GSM-7 characters are far from their limit
    assert len(render(accented, app="SMS OTP", otp="000000", minutes=10)) == 70
    assert refusal(accented) is None
    assert refused(longer).startswith(PART_RULE)
    assert refusal(longer.replace("\u00f3", "o")) is None


def test_a_ucs2_template_within_70_units_is_accepted():
    # Given a UCS-2 template of exactly 70 units once filled in (an emoji counts two)
    template = "{otp} \U0001f600" + "\u00e1" * 61  # 6 + 1 + 2 + 61 = 70
    # When it is checked, and with one more character
    # Then 70 passes and 71 does not
    assert refusal(template) is None
    assert refused(template + "\u00e1").startswith(PART_RULE)


def test_a_server_template_may_carry_links_and_numbers():
    # Given a server's text with a link, an e-mail, a phone number and no {app}
    template = "Code {otp}. Help: https://example.com, help@example.com or +1 415 555 2671"
    # When it is checked as the operator's server
    # Then those rules do not apply; as an end user's text it is refused
    assert refusal(template) is None
    assert refusal(template, end_user=True) is not None


# --- custom templates: end users' texts -------------------------------------------------------------------


def test_an_end_user_text_must_name_the_app():
    # Given a text without {app}
    template = "{otp} is your code"
    # When it is checked for a server and for an end user
    # Then only the end user is refused, with the rule
    assert refusal(template) is None
    assert refusal(template, end_user=True) == "message must contain {app}"
    assert refusal("{app}: " + template, end_user=True) is None


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com",
        "HTTP://x",
        "ftp://files",
        "tg://resolve",
        "www.example",
        "WWW.Example",
        "evil.com",
        "EVIL.COM",
        "Evil.Com",  # Capitalised, but .com is a link on any phone
        "bit.ly/x",
        "Bit.Ly/abc",
        "Login.Page/x",  # a path makes any label a domain
        "login.example.co.uk",
        "go to secure-login.example.org now",
        "evil.com.",
        "x-y.io",
        "pay.paypal",
        "10.0.0.1",
        "\uff45\uff56\uff49\uff4c\uff0e\uff43\uff4f\uff4d",  # full-width evil.com
        "{app}.com",  # the app name is no excuse for a domain built on it
        "{app}-login.net",
        "{otp}.ok",
    ],
)
def test_an_end_user_text_may_not_carry_a_link(text):
    # Given an end user's text with the app, the code and a link
    template = f"{{app}}: {{otp}} {text}"
    # When it is checked
    detail = refusal(template, end_user=True)
    # Then it is refused as a link, without repeating it
    assert detail == "message must not contain a link"
    assert refusal(template) is None


@pytest.mark.parametrize(
    "template",
    [
        "Your {app} code: {otp}. Valid {minutes} min.",
        "Hi. Your {app} code is {otp}",
        "{app}: {otp}. Never share it.",
        "{app}:{otp}",
        "{otp} - {app}, valid 24h",
    ],
)
def test_ordinary_sentences_are_not_links(template):
    # Given an end user's text whose full stops are followed by a space
    # When it is checked
    # Then it is accepted
    assert refusal(template, end_user=True) is None


@pytest.mark.parametrize(
    "template",
    [
        "Hi.Your {app} code is {otp}",
        "{app}: {otp}.It expires in {minutes} min.",
        "e.g. {otp} for {app}",
        "{app} v2.0 code {otp}",
        "{app}.{otp}",
        "Your {app} code is {otp}. Account locked, verify at Paypal-Secure.Support",
        "{app} {otp} Evil.De",
        "{app} {otp} Login.Microsoftonline.Support",
        "{app} {otp} evil.xn--p1ai",
        "{app} {otp} evil\u3002com",
        "{app} {otp} evil\uff61com",
    ],
)
def test_a_dot_followed_by_a_letter_is_a_link_even_in_a_sentence(template):
    # Given an end user's text where a dot runs straight into a letter or digit (what phones link)
    # When it is checked, then it is refused: the end user is asked for the space a sentence has anyway
    assert refusal(template, end_user=True) == "message must not contain a link"


@pytest.mark.parametrize(
    ("template", "detail"),
    [
        ("{app} {otp} bit\u200b.ly/abc", "message must not contain invisible formatting characters"),
        ("{app} {otp} http\u200b://x", "message must not contain invisible formatting characters"),
        ("{app} {otp} call 4\u200b1\u200b5\u200b5\u200b5", "message must not contain invisible formatting characters"),
        ("{app} {otp} right-to-left \u202e", "message must not contain invisible formatting characters"),
        ("{app} {otp} call 1-800-FLOWERS", "message must not contain a phone number"),
        ("{app} {otp} ref 1 2 3 4 5", "message must not contain a phone number"),
        ("{app} {otp} 12/34/56", "message must not contain a phone number"),
    ],
)
def test_hidden_links_and_numbers_are_refused(template, detail):
    assert refusal(template, end_user=True) == detail
    assert refusal(template) is None  # the customer's server keeps its freedom


@pytest.mark.parametrize("text", ["me@example.com", "first.last+otp@mail.example.co.uk", "x@y.co", "Mail ME@EVIL.COM"])
def test_an_end_user_text_may_not_carry_an_email_address(text):
    # Given an end user's text with an e-mail address
    template = f"{{app}} {{otp}} {text}"
    # When it is checked
    # Then it is refused as an e-mail address (not as the link its host also is)
    assert refusal(template, end_user=True) == "message must not contain an e-mail address"


@pytest.mark.parametrize(
    "text",
    [
        "+44",
        "+ 1 415",
        "+(44)",
        "call 5551234",
        "12345",
        "(415) 555-2671",
        "415.555.2671",
        "0800 123 45",
        "1-2-3-4-5",
        "\uff11\uff12\uff13\uff14\uff15",  # full-width digits
    ],
)
def test_an_end_user_text_may_not_carry_a_phone_number(text):
    # Given an end user's text with something dialable
    template = f"{{app}} {{otp}} {text}"
    # When it is checked
    # Then it is refused as a phone number
    assert refusal(template, end_user=True) == "message must not contain a phone number"


@pytest.mark.parametrize("text", ["1234", "12 34", "in 2 or 3 min", "at 10:30", "2024"])
def test_short_numbers_are_not_phone_numbers(text):
    # Given an end user's text with fewer than five digits in a run
    template = f"{{app}} {{otp}} {text}"
    # When it is checked
    # Then it is accepted
    assert refusal(template, end_user=True) is None


def test_placeholders_never_trip_the_end_user_rules():
    # Given a 10-digit code, several codes in a row, 60 minutes and an app name with digits and a domain
    template = "{otp}{otp} {otp}-{minutes} {app} ({otp}) +{otp}"
    settings = {"app": "Shop.io 12345", "code_length": 10, "minutes": 60, "end_user": True}
    # When it is checked (it fills to 76 septets)
    # Then none of the placeholders' values counts as a phone number or a link
    assert refusal(template, **settings) is None


def test_end_user_rules_come_after_the_length_rule():
    # Given an end user's text that is too long and carries a link
    template = "{app} {otp} evil.com " + "a" * 160
    # When it is checked
    # Then the length is reported: it bounds what the content searches scan
    assert refused(template, end_user=True).startswith(PART_RULE)


# --- app names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SMS OTP", "A", "A" * 20, "€" * 20, "\u00c7\u00e0_\u00df\u0394 [x]", "My-App 2"])
def test_app_names_of_the_gsm_alphabet_are_accepted(name):
    # Given a 1-20 character name of the GSM alphabet
    # When it is checked
    # Then it passes, and fills every default template in one GSM-7 part
    check_app_name(name)
    assert all(fits_one_part(render(t, app=name, otp="0" * 10, minutes=60)) for t in DEFAULT_TEMPLATES.values())


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "1 to 20"),
        ("A" * 21, "1 to 20"),
        ("Caf\u00e9 Ol\u00e1", "GSM 03.38"),
        ("App`", "GSM 03.38"),
        ("App\U0001f600", "GSM 03.38"),
        ("Two\nLines", "one line"),
        ("   ", "blank"),
    ],
)
def test_other_app_names_are_refused(name, reason):
    # Given a name that is empty, too long, outside the alphabet, on two lines or blank
    # When it is checked
    # Then a ValueError says which rule
    with pytest.raises(ValueError, match=reason):
        check_app_name(name)


# --- default templates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", sorted(DEFAULT_TEMPLATES))
@pytest.mark.parametrize("app", ["ABCDEFGHIJKLMNOPQRST", "€" * 20])
def test_every_default_template_fits_one_gsm7_part_at_its_longest(locale, app):
    # Given a locale's default, a 20-character app name, a 10-digit code and the longest lifetime
    body = render(DEFAULT_TEMPLATES[locale], app=app, otp="9" * 10, minutes=60)
    # When the body is counted
    septets = gsm7_septets(body)
    # Then it is GSM-7 and one part, and it passes the same check as a custom template
    assert septets is not None
    assert septets <= 160
    assert sms_parts(body) == 1
    assert refusal(DEFAULT_TEMPLATES[locale], app=app, code_length=10, minutes=60) is None


def test_the_shipped_locales():
    # Given the contract's locales
    # When the defaults are listed
    # Then exactly those ship, each with every placeholder
    assert set(DEFAULT_TEMPLATES) == {"en", "es", "fr", "de", "pt"}
    assert all(all(f"{{{name}}}" in t for name in ("app", "otp", "minutes")) for t in DEFAULT_TEMPLATES.values())


@pytest.mark.parametrize(
    ("locale", "language"),
    [(None, "en"), ("es-MX", "es"), ("pt_BR", "pt"), ("FR", "fr"), ("de-AT", "de"), ("zz", "en"), ("", "en")],
)
def test_a_locale_picks_its_language_or_english(locale, language):
    # Given a BCP 47 tag
    # When the default template is picked
    # Then it is its primary language's, or English
    assert default_template(locale) == DEFAULT_TEMPLATES[language]


def test_render_fills_every_placeholder():
    # Given the Spanish default
    # When it is filled
    body = render(DEFAULT_TEMPLATES["es"], app="SMS OTP", otp="123456", minutes=10)
    # Then no brace is left and the values are in place
    assert body == "123456 es tu clave de SMS OTP. Caduca en 10 minutos. No la compartas."
