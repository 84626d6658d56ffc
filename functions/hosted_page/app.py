"""GET /v1/hosted/challenge: the hosted challenge page, and its script, style and the browser client.

The page's address carries no app (the client token is in the fragment, which never reaches a server), so its
``frame-ancestors`` lists the ``allowedOrigins`` of every live app, or ``'none'`` when no app has any: a page
framed by one app's origin still hands its result only to the origins of the token's own app (the ``ori``
claim of the success token), so the union widens where the page may be shown, never where a token may go.
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_core import runtime
from otp_core.http import Response, make_resolver
from otp_core.observability import logger, metrics, tracer
from otp_core.page_strings import CATALOGUES, choose_locale

app = make_resolver()
STATIC = Path(__file__).parent / "static"
HTML = "text/html; charset=utf-8"
# Every answer: the type is the one sent, and no page of the API is read with a referrer.
_COMMON = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
# default-src covers scripts, styles, images and fetch; base-uri, form-action and frame-ancestors do not fall back
# to it (the forms are sent by the script, never natively).
_CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'"
# The assets change only with a deployment; the page itself is never stored (it is rendered per language).
_ASSET_CACHE = "public, max-age=300"
ASSETS = {
    "challenge.js": "text/javascript; charset=utf-8",
    "challenge.css": "text/css; charset=utf-8",
    "sms-otp.js": "text/javascript; charset=utf-8",
}


def frame_ancestors() -> str:
    """The CSP ``frame-ancestors`` sources: every live app's ``allowedOrigins``, else ``'none'``."""
    origins = sorted(runtime.apps().allowed_origins())
    return " ".join(origins) if origins else "'none'"


def render(locale: str) -> str:
    """The page in ``locale``: every string of its catalogue escaped into the HTML, none left to the script."""
    strings = CATALOGUES[locale]

    def text(key: str) -> str:
        return html.escape(strings[key], quote=True)

    catalogue = "".join(
        f'<li data-key="{html.escape(key, quote=True)}">{html.escape(value, quote=True)}</li>'
        for key, value in strings.items()
    )
    return f"""<!doctype html>
<html lang="{html.escape(locale, quote=True)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{text("title")}</title>
<link rel="stylesheet" href="./challenge.css">
<script type="module" src="./challenge.js"></script>
</head>
<body>
<main id="main">
<h1>{text("title")}</h1>
<p id="status" role="status" aria-live="polite" aria-atomic="true">{text("loading")}</p>
<form id="phone-form" hidden novalidate>
<h2>{text("phone_heading")}</h2>
<label for="country">{text("country_label")}</label>
<select id="country" name="country"><option value="">—</option>{country_options()}</select>
<label for="phone">{text("phone_label")}</label>
<input id="phone" name="phone" type="tel" autocomplete="tel" inputmode="tel" required
 placeholder="+14155552671" aria-describedby="phone-hint">
<p id="phone-hint" class="hint">{text("phone_hint")}</p>
<button id="send" type="submit">{text("send_code")}</button>
</form>
<form id="code-form" hidden novalidate>
<h2>{text("code_heading")}</h2>
<p id="sent-to"></p>
<label for="code">{text("code_label")}</label>
<input id="code" name="code" type="text" autocomplete="one-time-code" inputmode="numeric" required
 maxlength="10" pattern="[0-9]{{4,10}}" spellcheck="false" aria-describedby="attempts">
<p id="attempts" class="hint"></p>
<button id="verify" type="submit">{text("verify")}</button>
<button id="resend" type="button" class="secondary" disabled>{text("resend")}</button>
<p id="countdown" class="hint"></p>
</form>
</main>
<ul id="strings" hidden>{catalogue}</ul>
</body>
</html>
"""


@cache
def country_options() -> str:
    """One option per region with its calling code (``US +1``), for numbers typed without the ``+`` prefix."""
    import phonenumbers  # only the page's render needs it, once per instance

    regions = sorted(
        (region, code)
        for code, found in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()
        for region in found
        if re.fullmatch(r"[A-Z]{2}", region)
    )
    return "".join(
        f'<option value="+{code}" data-region="{html.escape(region, quote=True)}">{region} +{code}</option>'
        for region, code in regions
    )


@cache
def asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@app.get("/v1/hosted/challenge")
def page() -> Response:
    locale = choose_locale(app.current_event.headers.get("accept-language"))
    headers = {
        **_COMMON,
        "Content-Security-Policy": f"{_CSP}; frame-ancestors {frame_ancestors()}",
        "Cache-Control": "no-store",
        "Content-Language": locale,
        "Vary": "Accept-Language",
    }
    return Response(status_code=200, body=render(locale), content_type=HTML, headers=headers)


def _asset(name: str) -> Response:
    headers = {**_COMMON, "Cache-Control": _ASSET_CACHE}
    return Response(status_code=200, body=asset(name), content_type=ASSETS[name], headers=headers)


@app.get("/v1/hosted/challenge.js")
def script() -> Response:
    return _asset("challenge.js")


@app.get("/v1/hosted/challenge.css")
def style() -> Response:
    return _asset("challenge.css")


@app.get("/v1/hosted/sms-otp.js")
def client() -> Response:
    return _asset("sms-otp.js")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
