"""The hosted page's strings, one catalogue per shipped locale (the SMS templates' locales)."""

from __future__ import annotations

from typing import Final

DEFAULT_LOCALE: Final = "en"

# Placeholders in braces ({mask}, {seconds}, {count}) are filled in by the page script.
CATALOGUES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "title": "Verify your phone",
        "loading": "Loading…",
        "phone_heading": "Add your phone number",
        "country_label": "Country code",
        "phone_label": "Mobile number, with country code",
        "phone_hint": "For example +14155552671",
        "send_code": "Send code",
        "code_heading": "Enter the code we sent you",
        "code_label": "Verification code",
        "code_sent": "We sent a code to the number ending in {mask}.",
        "verify": "Verify",
        "resend": "Send a new code",
        "resend_in": "You can ask for a new code in {seconds} s.",
        "attempts_left": "Attempts left: {count}.",
        "sending": "Sending a code…",
        "checking": "Checking the code…",
        "sent": "Code sent.",
        "wrong": "That code is not right. Check it and try again.",
        "expired": "That code has expired. Ask for a new code.",
        "exhausted": "Too many wrong codes. Ask for a new code.",
        "locked": "Too many failed attempts: this number is locked for a while. Try again later.",
        "rate_limited": "Too many codes were sent. Wait a moment before asking for another.",
        "invalid_phone": "Enter a full number in international format, starting with + and the country code.",
        "unsupported_phone": "Codes cannot be sent to this number. Use another mobile number.",
        "session_expired": "This sign-in link has expired. Go back and start again.",
        "failed": "Something went wrong. Try again in a moment.",
        "success": "Verified. You can continue.",
    },
    "es": {
        "title": "Verifica tu teléfono",
        "loading": "Cargando…",
        "phone_heading": "Añade tu número de teléfono",
        "country_label": "Prefijo del país",
        "phone_label": "Número de móvil, con prefijo de país",
        "phone_hint": "Por ejemplo +34612345678",
        "send_code": "Enviar código",
        "code_heading": "Introduce el código que te enviamos",
        "code_label": "Código de verificación",
        "code_sent": "Enviamos un código al número que termina en {mask}.",
        "verify": "Verificar",
        "resend": "Enviar un código nuevo",
        "resend_in": "Podrás pedir un código nuevo en {seconds} s.",
        "attempts_left": "Intentos restantes: {count}.",
        "sending": "Enviando un código…",
        "checking": "Comprobando el código…",
        "sent": "Código enviado.",
        "wrong": "El código no es correcto. Revísalo e inténtalo de nuevo.",
        "expired": "El código ha caducado. Pide un código nuevo.",
        "exhausted": "Demasiados códigos incorrectos. Pide un código nuevo.",
        "locked": "Demasiados intentos fallidos: este número está bloqueado un tiempo. Inténtalo más tarde.",
        "rate_limited": "Se enviaron demasiados códigos. Espera un momento antes de pedir otro.",
        "invalid_phone": "Introduce el número completo en formato internacional, con + y el prefijo de país.",
        "unsupported_phone": "No se pueden enviar códigos a este número. Usa otro móvil.",
        "session_expired": "Este enlace ha caducado. Vuelve atrás y empieza de nuevo.",
        "failed": "Algo ha fallado. Inténtalo de nuevo en un momento.",
        "success": "Verificado. Puedes continuar.",
    },
    "fr": {
        "title": "Vérifiez votre téléphone",
        "loading": "Chargement…",
        "phone_heading": "Ajoutez votre numéro de téléphone",
        "country_label": "Indicatif du pays",
        "phone_label": "Numéro de mobile, avec l'indicatif du pays",
        "phone_hint": "Par exemple +33612345678",
        "send_code": "Envoyer le code",
        "code_heading": "Saisissez le code que nous vous avons envoyé",
        "code_label": "Code de vérification",
        "code_sent": "Nous avons envoyé un code au numéro se terminant par {mask}.",
        "verify": "Vérifier",
        "resend": "Envoyer un nouveau code",
        "resend_in": "Vous pourrez demander un nouveau code dans {seconds} s.",
        "attempts_left": "Essais restants : {count}.",
        "sending": "Envoi du code…",
        "checking": "Vérification du code…",
        "sent": "Code envoyé.",
        "wrong": "Ce code n'est pas le bon. Vérifiez-le et réessayez.",
        "expired": "Ce code a expiré. Demandez un nouveau code.",
        "exhausted": "Trop de codes erronés. Demandez un nouveau code.",
        "locked": "Trop d'échecs : ce numéro est bloqué pour un moment. Réessayez plus tard.",
        "rate_limited": "Trop de codes ont été envoyés. Patientez avant d'en demander un autre.",
        "invalid_phone": "Saisissez le numéro complet au format international, avec + et l'indicatif du pays.",
        "unsupported_phone": "Impossible d'envoyer un code à ce numéro. Utilisez un autre mobile.",
        "session_expired": "Ce lien a expiré. Revenez en arrière et recommencez.",
        "failed": "Une erreur s'est produite. Réessayez dans un instant.",
        "success": "Vérifié. Vous pouvez continuer.",
    },
    "de": {
        "title": "Telefon bestätigen",
        "loading": "Wird geladen…",
        "phone_heading": "Telefonnummer hinzufügen",
        "country_label": "Ländervorwahl",
        "phone_label": "Handynummer mit Ländervorwahl",
        "phone_hint": "Zum Beispiel +4915123456789",
        "send_code": "Code senden",
        "code_heading": "Geben Sie den gesendeten Code ein",
        "code_label": "Bestätigungscode",
        "code_sent": "Wir haben einen Code an die Nummer mit der Endung {mask} gesendet.",
        "verify": "Bestätigen",
        "resend": "Neuen Code senden",
        "resend_in": "Einen neuen Code können Sie in {seconds} s anfordern.",
        "attempts_left": "Verbleibende Versuche: {count}.",
        "sending": "Code wird gesendet…",
        "checking": "Code wird geprüft…",
        "sent": "Code gesendet.",
        "wrong": "Der Code ist nicht richtig. Prüfen Sie ihn und versuchen Sie es erneut.",
        "expired": "Der Code ist abgelaufen. Fordern Sie einen neuen Code an.",
        "exhausted": "Zu viele falsche Codes. Fordern Sie einen neuen Code an.",
        "locked": "Zu viele Fehlversuche: Diese Nummer ist vorübergehend gesperrt. Versuchen Sie es später.",
        "rate_limited": "Es wurden zu viele Codes gesendet. Warten Sie kurz, bevor Sie einen weiteren anfordern.",
        "invalid_phone": "Geben Sie die vollständige Nummer im internationalen Format ein, mit + und Ländervorwahl.",
        "unsupported_phone": "An diese Nummer können keine Codes gesendet werden. Nutzen Sie eine andere Handynummer.",
        "session_expired": "Dieser Link ist abgelaufen. Gehen Sie zurück und beginnen Sie neu.",
        "failed": "Etwas ist schiefgelaufen. Versuchen Sie es gleich noch einmal.",
        "success": "Bestätigt. Sie können fortfahren.",
    },
    "pt": {
        "title": "Verifique o seu telefone",
        "loading": "A carregar…",
        "phone_heading": "Adicione o seu número de telefone",
        "country_label": "Indicativo do país",
        "phone_label": "Número de telemóvel, com o indicativo do país",
        "phone_hint": "Por exemplo +351912345678",
        "send_code": "Enviar código",
        "code_heading": "Introduza o código que enviámos",
        "code_label": "Código de verificação",
        "code_sent": "Enviámos um código para o número terminado em {mask}.",
        "verify": "Verificar",
        "resend": "Enviar um novo código",
        "resend_in": "Pode pedir um novo código dentro de {seconds} s.",
        "attempts_left": "Tentativas restantes: {count}.",
        "sending": "A enviar um código…",
        "checking": "A verificar o código…",
        "sent": "Código enviado.",
        "wrong": "O código não está correto. Verifique-o e tente de novo.",
        "expired": "O código expirou. Peça um novo código.",
        "exhausted": "Demasiados códigos errados. Peça um novo código.",
        "locked": "Demasiadas tentativas falhadas: este número está bloqueado por algum tempo. Tente mais tarde.",
        "rate_limited": "Foram enviados demasiados códigos. Aguarde um momento antes de pedir outro.",
        "invalid_phone": "Introduza o número completo em formato internacional, com + e o indicativo do país.",
        "unsupported_phone": "Não é possível enviar códigos para este número. Use outro telemóvel.",
        "session_expired": "Esta ligação expirou. Volte atrás e comece de novo.",
        "failed": "Algo correu mal. Tente de novo dentro de momentos.",
        "success": "Verificado. Pode continuar.",
    },
}


def choose_locale(accept_language: str | None) -> str:
    """The shipped locale the ``Accept-Language`` header prefers most (RFC 9110 quality values), else ``en``.

    Only the primary subtag counts (``pt-BR`` picks ``pt``); ``*`` and unknown languages fall back to ``en``.
    """
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not 0.0 < quality <= 1.0:
            continue
        primary = tag.strip().split("-")[0].lower()
        if primary in CATALOGUES:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE
