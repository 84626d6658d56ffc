"""SMS bodies: default templates per locale and checks of custom templates.

Templates use ``{app}``, ``{otp}`` and ``{minutes}``. A custom template must contain ``{otp}``, may contain
the other two, nothing else in braces, and must fit one 160-character SMS once filled in.
"""

from __future__ import annotations

import re

from otp_core.errors import InvalidMessageTemplateError

MAX_LENGTH = 160
PLACEHOLDERS = frozenset({"app", "otp", "minutes"})
_BRACED = re.compile(r"\{([^{}]*)\}")

DEFAULT_TEMPLATES: dict[str, str] = {
    "en": "{otp} is your {app} verification code. It expires in {minutes} minutes. Never share it.",
    "es": "{otp} es tu código de verificación de {app}. Caduca en {minutes} minutos. No lo compartas.",
    "fr": "{otp} est votre code de vérification {app}. Il expire dans {minutes} minutes. Ne le partagez pas.",
    "de": "{otp} ist Ihr {app}-Bestätigungscode. Er läuft in {minutes} Minuten ab. Geben Sie ihn nie weiter.",
    "pt": "{otp} é o seu código de verificação {app}. Expira em {minutes} minutos. Não o partilhe.",
}


def default_template(locale: str | None) -> str:
    """Pick the template for a BCP 47 tag by its primary language, falling back to English."""
    language = (locale or "en").replace("_", "-").split("-")[0].lower()
    return DEFAULT_TEMPLATES.get(language, DEFAULT_TEMPLATES["en"])


def render(template: str, *, app: str, otp: str, minutes: int) -> str:
    values = {"app": app, "otp": otp, "minutes": str(minutes)}
    return _BRACED.sub(lambda m: values[m.group(1)], template)


def check_template(template: str, *, app: str, code_length: int, minutes: int) -> None:
    """Reject a custom template that could not produce a valid one-SMS message.

    Raises
    ------
    InvalidMessageTemplateError
        Missing ``{otp}``, an unknown placeholder, or longer than 160 characters once filled in.
    """
    names = _BRACED.findall(template)
    unknown = sorted({name for name in names if name not in PLACEHOLDERS})
    if unknown:
        listed = ", ".join("{" + name + "}" for name in unknown)
        raise InvalidMessageTemplateError(f"message uses unknown placeholders: {listed}")
    if "otp" not in names:
        raise InvalidMessageTemplateError("message must contain {otp}")
    if "{" in _BRACED.sub("", template) or "}" in _BRACED.sub("", template):
        raise InvalidMessageTemplateError("message has an unmatched brace")
    filled = render(template, app=app, otp="0" * code_length, minutes=minutes)
    if len(filled) > MAX_LENGTH:
        raise InvalidMessageTemplateError(f"message is {len(filled)} characters once filled in; at most 160")
