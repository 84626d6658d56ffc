"""Apps without a table: settings validation, key making and hashing, the admin use cases and key lookups.

The app store is the in-memory fake with the DynamoDB store's conditions; the DynamoDB store itself is tested
on DynamoDB Local (tests/integration/test_apps.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import phonenumbers
import pytest

from otp_core.app_admin import ADMIN, AppAdmin, AppDirectory, KeyAuthority
from otp_core.apps import APP_SETTINGS, MAX_KEYS, check_settings, effective_policy, key_digest, new_key, stack_key
from otp_core.errors import ConflictError, DependencyError, InvalidRequestError, NotFoundError, UnauthorizedError
from otp_core.models import CreateChallengeRequest
from otp_core.phone import check_phone_number
from otp_core.settings import Policy, Settings
from otp_core.sms.routing import parse_country_routes
from tests.fakes import FakeClock, InMemoryAppStore

STACK_KEY = "stack-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
BASE = Settings().policy


def _errors(exc: pytest.ExceptionInfo[InvalidRequestError]) -> dict[str, str]:
    return {error.field: error.message for error in exc.value.errors}


def _check(overrides: dict[str, Any], *, allow_test_numbers: bool = True, providers: tuple[str, ...] = ("sns",)):
    return check_settings(
        BASE,
        overrides,
        allow_test_numbers=allow_test_numbers,
        providers=providers,
        phone_check=check_phone_number,
        parse_routes=parse_country_routes,
    )


@pytest.fixture
def store() -> InMemoryAppStore:
    return InMemoryAppStore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def directory(store: InMemoryAppStore) -> AppDirectory:
    return AppDirectory(store, BASE, allow_test_numbers=True)


def _admin(
    store: InMemoryAppStore,
    directory: AppDirectory,
    clock: FakeClock,
    *,
    allow_test_numbers: bool = True,
    providers: tuple[str, ...] = ("sns",),
    regions: Any = (),
) -> AppAdmin:
    return AppAdmin(
        store,
        directory,
        clock,
        allow_test_numbers=allow_test_numbers,
        providers=providers,
        phone_check=check_phone_number,
        parse_routes=parse_country_routes,
        stack_secret=lambda: STACK_KEY,
        regions=regions,
    )


@pytest.fixture
def admin(store: InMemoryAppStore, directory: AppDirectory, clock: FakeClock) -> AppAdmin:
    return _admin(store, directory, clock, providers=("sns", "twilio"), regions=phonenumbers.SUPPORTED_REGIONS)


@pytest.fixture
def keys(store: InMemoryAppStore, clock: FakeClock) -> KeyAuthority:
    return KeyAuthority(store, clock, BASE, stack_secret=lambda: STACK_KEY, admin_secret=lambda: ADMIN_KEY, seconds=0)


# ------------------------------------------------------------------------------------------- settings


def test_the_settings_are_exactly_the_contracts_and_each_is_a_policy_field() -> None:
    contract = [
        "codeLength",
        "codeTtlSeconds",
        "maxAttempts",
        "resendCooldownSeconds",
        "maxSendsPer10Minutes",
        "maxSendsPerDay",
        "maxSendsPerIpPerHour",
        "allowedCountries",
        "blockedCountries",
        "allowedNumberTypes",
        "appName",
        "senderId",
        "templates",
        "smsProviders",
        "smsCountryRoutes",
        "trackRules",
        "tokenAudience",
        "redirectUrls",
        "allowedOrigins",
        "webOtpDomain",
        "androidAppHash",
        "fraudGuardMode",
        "smsBudgetPerHour",
        "smsBudgetPerDay",
        "testNumbers",
        "idpIssuer",
        "idpAudience",
        "idpJwksUrl",
        "endUserSenderIds",
    ]
    assert sorted(APP_SETTINGS) == sorted(contract)
    for alias, field in APP_SETTINGS.items():
        assert Policy.model_fields[field].alias == alias


def test_overrides_lie_over_the_stack_policy() -> None:
    policy = effective_policy(BASE, {"codeLength": 8, "appName": "Merchant", "allowedCountries": ["NZ", "au"]})
    assert (policy.code_length, policy.app_name, policy.allowed_countries) == (8, "Merchant", ("NZ", "AU"))
    assert policy.max_attempts == BASE.max_attempts


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"codeLength": 3}, "settings.codeLength"),
        ({"codeLength": "6"}, "settings.codeLength"),
        ({"codeLength": True}, "settings.codeLength"),
        ({"maxAttempts": 11}, "settings.maxAttempts"),
        ({"codeTtlSeconds": 30}, "settings.codeTtlSeconds"),
        ({"appName": "Ünïcode ✓"}, "settings.appName"),
        ({"fraudGuardMode": "loud"}, "settings.fraudGuardMode"),
        ({"allowedNumberTypes": ["SATELLITE"]}, "settings.allowedNumberTypes"),
        ({"senderId": "1234"}, "settings.senderId"),
        ({"senderId": "MuchTooLongSender"}, "settings.senderId"),
        ({"templates": {"en": "no code here"}}, "settings.templates.en"),
        ({"templates": {"en": "{otp} " + "x" * 200}}, "settings.templates.en"),
        ({"templates": {"english": "{otp}"}}, "settings.templates.english.[key]"),
        ({"redirectUrls": ["http://example.com/done"]}, "settings.redirectUrls"),
        ({"redirectUrls": ["https://example.com/done#frag"]}, "settings.redirectUrls"),
        ({"allowedOrigins": ["https://example.com/path"]}, "settings.allowedOrigins"),
        ({"webOtpDomain": "https://example.com"}, "settings.webOtpDomain"),
        ({"androidAppHash": "tooshort"}, "settings.androidAppHash"),
        ({"testNumbers": [{"phoneNumber": "+14155550123", "code": "12345"}]}, "settings.testNumbers"),
        ({"testNumbers": [{"phoneNumber": "4155550123", "code": "123456"}]}, "settings.testNumbers.0.phoneNumber"),
        ({"testNumbers": [{"phoneNumber": "+14155550123", "code": "123456", "x": 1}]}, "settings.testNumbers.0.x"),
        ({"smsBudgetPerHour": -1}, "settings.smsBudgetPerHour"),
        ({"tokenAudience": ""}, "settings.tokenAudience"),
    ],
)
def test_an_invalid_setting_is_a_400_naming_it(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        _check(overrides)
    assert field in _errors(refused), _errors(refused)


def test_an_unknown_setting_is_named_too() -> None:
    # lockoutThreshold is a stack parameter, not a per-app setting
    with pytest.raises(InvalidRequestError) as refused:
        _check({"codeLength": 6, "lockoutThreshold": 3, "colour": "red"})
    assert _errors(refused) == {"settings.lockoutThreshold": "unknown setting", "settings.colour": "unknown setting"}


def test_a_change_is_checked_as_a_whole() -> None:
    # A test code of 6 digits no longer fits once the code length becomes 8
    numbers = [{"phoneNumber": "+14155550123", "code": "123456"}]
    assert _check({"testNumbers": numbers}).test_code("+14155550123") == "123456"
    with pytest.raises(InvalidRequestError) as refused:
        _check({"testNumbers": numbers, "codeLength": 8})
    assert "settings.testNumbers" in _errors(refused)
    # And a template that fits one part with a short app name may not with a long one
    template = "{app}: " + "x" * 140 + " {otp}"
    _check({"templates": {"en": template}, "appName": "A"})
    with pytest.raises(InvalidRequestError):
        _check({"templates": {"en": template}, "appName": "A much longer name"})


def test_routes_name_only_the_providers_the_stack_holds() -> None:
    _check({"smsProviders": ["twilio", "sns"]}, providers=("sns", "twilio"))
    with pytest.raises(InvalidRequestError) as refused:
        _check({"smsProviders": ["vonage"]})
    assert "vonage" in _errors(refused)["settings.smsProviders"]
    with pytest.raises(InvalidRequestError) as refused:
        _check({"smsCountryRoutes": "NZ:tnz"})
    assert "settings.smsCountryRoutes" in _errors(refused)
    with pytest.raises(InvalidRequestError) as refused:
        _check({"smsCountryRoutes": "not a route"})
    assert "settings.smsCountryRoutes" in _errors(refused)


def test_test_numbers_need_the_stack_to_allow_them_and_must_pass_the_number_checks() -> None:
    numbers = [{"phoneNumber": "+14155550123", "code": "123456"}]
    with pytest.raises(InvalidRequestError) as refused:
        _check({"testNumbers": numbers}, allow_test_numbers=False)
    assert "AllowTestNumbers" in _errors(refused)["settings.testNumbers"]
    with pytest.raises(InvalidRequestError) as refused:
        _check({"testNumbers": numbers, "allowedCountries": ["NZ"]})
    assert "settings.testNumbers.0.phoneNumber" in _errors(refused)
    with pytest.raises(InvalidRequestError):
        _check({"testNumbers": [*numbers, *numbers]})


def test_track_rules_and_the_identity_provider_are_checked() -> None:
    with pytest.raises(InvalidRequestError) as refused:
        _check({"trackRules": {"rules": "nonsense"}})
    assert "settings.trackRules" in _errors(refused)
    with pytest.raises(InvalidRequestError) as refused:
        _check({"idpIssuer": "https://idp.example"})
    assert "settings.idpIssuer" in _errors(refused)
    with pytest.raises(InvalidRequestError) as refused:
        _check({"idpIssuer": "https://idp.example", "idpAudience": "api", "idpJwksUrl": "http://idp.example/jwks"})
    assert "settings.idpJwksUrl" in _errors(refused)


# ------------------------------------------------------------------------------------------------ keys


def test_a_key_is_256_random_bits_stored_only_as_its_sha256() -> None:
    made = new_key("shop", "ci", 100)
    assert made.secret.startswith("sk_") and len(made.secret) == 3 + 43
    assert made.key.digest == hashlib.sha256(made.secret.encode()).hexdigest() == key_digest(made.secret)
    assert made.secret not in repr(made.key)
    assert new_key("shop", None, 100).secret != made.secret
    assert stack_key(key_digest(STACK_KEY), 1).key_id == stack_key(key_digest(STACK_KEY), 2).key_id
    assert stack_key(key_digest("rotated"), 1).key_id != stack_key(key_digest(STACK_KEY), 1).key_id


def test_a_key_opens_its_app_until_it_is_revoked(admin: AppAdmin, keys: KeyAuthority) -> None:
    admin.create("shop", "Shop", None)
    first, second = admin.create_key("shop", "one"), admin.create_key("shop", "two")
    assert keys.identify(first.secret).app_id == "shop"  # type: ignore[union-attr]
    assert keys.identify(second.secret).key_id == second.key.key_id  # type: ignore[union-attr]
    admin.revoke_key("shop", first.key.key_id)
    assert keys.identify(first.secret) is None
    assert keys.identify(second.secret).app_id == "shop"  # type: ignore[union-attr]
    assert [key.key_id for key in admin.keys("shop")] == [second.key.key_id]
    with pytest.raises(NotFoundError):
        admin.revoke_key("shop", first.key.key_id)


def test_a_sixth_key_is_a_conflict(admin: AppAdmin) -> None:
    admin.create("shop", "Shop", None)
    for _ in range(MAX_KEYS):
        admin.create_key("shop", None)
    with pytest.raises(ConflictError):
        admin.create_key("shop", None)


def test_the_stack_key_is_default_s_listed_and_revocable(admin: AppAdmin, keys: KeyAuthority) -> None:
    grant = keys.identify(STACK_KEY)
    assert grant is not None and grant != ADMIN and grant.app_id == "default"  # type: ignore[union-attr]
    listed = admin.keys("default")
    assert [key.description for key in listed] == ["generated by the stack"]
    admin.revoke_key("default", listed[0].key_id)
    assert keys.identify(STACK_KEY) is None
    # Listing default again does not bring the revoked stack key back
    assert admin.keys("default") == []
    assert keys.identify(STACK_KEY) is None


def test_the_admin_key_is_never_an_app_key(keys: KeyAuthority) -> None:
    assert keys.identify(ADMIN_KEY) == ADMIN
    assert keys.identify("sk_guess") is None


def test_last_use_is_written_at_most_every_few_minutes(admin: AppAdmin, keys: KeyAuthority, store, clock) -> None:
    admin.create("shop", "Shop", None)
    made = admin.create_key("shop", None)
    for _ in range(5):
        keys.identify(made.secret)
    clock.advance(60)
    keys.identify(made.secret)
    assert len(store.touched) == 1
    clock.advance(300)
    keys.identify(made.secret)
    assert len(store.touched) == 2
    assert admin.keys("shop")[0].last_used_at == clock.now()


def test_key_lookups_are_cached_per_digest(store: InMemoryAppStore, clock: FakeClock) -> None:
    cached = KeyAuthority(store, clock, BASE, stack_secret=lambda: STACK_KEY, admin_secret=lambda: ADMIN_KEY)
    for _ in range(3):
        assert cached.identify("sk_unknown") is None
    assert store.grant_reads == 1


# ------------------------------------------------------------------------------------------------ apps


def test_an_app_gets_a_unique_audience_and_twilio_sids(admin: AppAdmin, directory: AppDirectory) -> None:
    record = admin.create(None, "Shop", {"codeLength": 8})
    assert record.app_id.startswith("app-")
    assert record.settings["tokenAudience"] == f"urn:sms-otp:app:{record.app_id}"
    assert record.twilio_service_sid[2:] == record.twilio_account_sid[2:]
    assert record.twilio_service_sid.startswith("VA") and len(record.twilio_service_sid) == 34
    assert directory.policy(record.app_id).code_length == 8
    with pytest.raises(ConflictError):
        admin.create("other", "Other", {"tokenAudience": record.settings["tokenAudience"]})
    with pytest.raises(ConflictError):
        admin.create("other", "Other", {"tokenAudience": BASE.token_audience})


def test_patch_merges_key_by_key_and_null_removes(admin: AppAdmin, directory: AppDirectory) -> None:
    admin.create("shop", "Shop", {"codeLength": 8, "appName": "Shop"})
    patched = admin.patch("shop", None, {"codeLength": None, "maxAttempts": 3})
    assert patched.settings == {"appName": "Shop", "maxAttempts": 3, "tokenAudience": "urn:sms-otp:app:shop"}
    assert admin.get("shop").settings == patched.settings
    assert directory.policy("shop").code_length == BASE.code_length
    assert admin.patch("shop", "Renamed", None).name == "Renamed"
    with pytest.raises(InvalidRequestError):
        admin.patch("shop", None, {"codeLength": 42})
    assert admin.get("shop").settings == patched.settings


def test_deleted_ids_are_never_reused_and_default_stays(admin: AppAdmin, keys: KeyAuthority, directory) -> None:
    admin.create("shop", "Shop", None)
    made = admin.create_key("shop", None)
    admin.delete("shop")
    assert keys.identify(made.secret) is None
    with pytest.raises(UnauthorizedError):
        directory.policy("shop")
    with pytest.raises(NotFoundError):
        admin.get("shop")
    with pytest.raises(ConflictError):
        admin.create("shop", "Shop again", None)
    with pytest.raises(ConflictError):
        admin.delete("default")
    with pytest.raises(NotFoundError):
        admin.delete("shop")
    assert [record.app_id for record in admin.list()] == ["default"]


@pytest.mark.parametrize("app_id", ["Shop", "a" * 65, "shop_1", "", "shop#1"])
def test_an_app_id_is_1_to_64_of_lower_case_digits_and_dashes(admin: AppAdmin, app_id: str) -> None:
    with pytest.raises(InvalidRequestError):
        admin.create(app_id, "Shop", None)


def test_test_numbers_are_dropped_where_the_stack_does_not_allow_them(store: InMemoryAppStore, admin) -> None:
    admin.create("shop", "Shop", {"testNumbers": [{"phoneNumber": "+14155550123", "code": "123456"}]})
    assert AppDirectory(store, BASE, allow_test_numbers=True).policy("shop").test_numbers
    assert not AppDirectory(store, BASE, allow_test_numbers=False).policy("shop").test_numbers


def test_no_two_apps_share_an_identity_provider_and_audience(admin: AppAdmin, directory: AppDirectory) -> None:
    idp = {"idpIssuer": "https://idp.example", "idpAudience": "api", "idpJwksUrl": "https://idp.example/jwks"}
    admin.create("shop", "Shop", idp)
    with pytest.raises(ConflictError):
        admin.create("other", "Other", idp)
    admin.create("other", "Other", {**idp, "idpAudience": "other-api"})
    assert directory.app_of_idp("https://idp.example", "other-api")[0] == "other"  # type: ignore[index]
    assert directory.app_of_idp("https://idp.example", "api")[0] == "shop"  # type: ignore[index]
    assert directory.app_of_idp("https://evil.example", "api") is None


def test_other_apps_do_not_inherit_the_stack_s_identity_provider(store: InMemoryAppStore, clock: FakeClock) -> None:
    stack = Settings(idp_issuer="https://idp.example", idp_audience="api", idp_jwks_url="https://idp.example/j").policy
    directory = AppDirectory(store, stack)
    admin = _admin(store, directory, clock, allow_test_numbers=False)
    admin.create("shop", "Shop", {"codeLength": 8})
    assert directory.policy("shop").idp_issuer == ""
    assert directory.app_of_idp("https://idp.example", "api")[0] == "default"  # type: ignore[index]
    # A stack with only part of an identity provider still lets apps be made and changed
    partial = AppDirectory(store, Settings(idp_audience="api").policy)
    _admin(store, partial, clock, allow_test_numbers=False).patch("default", None, {"codeLength": 7})


def test_default_cannot_be_created_and_names_and_descriptions_are_checked(admin: AppAdmin) -> None:
    with pytest.raises(ConflictError):
        admin.create("default", "Mine", None)
    with pytest.raises(InvalidRequestError) as refused:
        admin.create("shop", "Shop", {"appName": "A name much longer than twenty"})
    assert "settings.appName" in _errors(refused)
    with pytest.raises(InvalidRequestError) as refused:
        admin.create("shop", "Shop", {"allowedCountries": ["XX", "NZ"]})
    assert "XX" in _errors(refused)["settings.allowedCountries"]
    admin.create("shop", "Shop", None)
    with pytest.raises(InvalidRequestError):
        admin.create_key("shop", "x" * 201)
    with pytest.raises(InvalidRequestError):
        admin.create_key("shop", "two\nlines")


def test_a_deletion_that_failed_half_way_is_finished_by_the_next(store: InMemoryAppStore, admin: AppAdmin) -> None:
    admin.create("shop", "Shop", None)
    made = admin.create_key("shop", None)
    # The mark was written, the revocations were not
    store.records["shop"] = dataclasses.replace(store.records["shop"], deleted_at=1)
    with pytest.raises(NotFoundError):
        admin.delete("shop")
    assert store.grants[made.key.digest].revoked


def test_a_patch_repairs_settings_a_stack_update_broke(store: InMemoryAppStore, clock: FakeClock) -> None:
    # Given an app whose test code fits the stack's 6-digit codes
    numbers = [{"phoneNumber": "+14155550123", "code": "123456"}]
    _admin(store, AppDirectory(store, BASE, allow_test_numbers=True), clock, allow_test_numbers=True).create(
        "shop", "Shop", {"testNumbers": numbers}
    )
    # When the stack's code length changes, the app's requests fail (a 503 that names no secret)
    longer = Settings(code_length=8).policy
    directory = AppDirectory(store, longer, allow_test_numbers=True)
    with pytest.raises(DependencyError):
        directory.policy("shop")
    # Then a PATCH that fixes the settings is accepted (the old settings are not validated again)
    admin = _admin(store, directory, clock, allow_test_numbers=True)
    admin.patch("shop", None, {"testNumbers": None})
    assert directory.policy("shop").code_length == 8


def test_a_template_is_checked_with_the_minutes_a_send_writes() -> None:
    # 599 s is sent as "10 minutes": a template that fits one part only with "9" is refused
    template = "{otp} " + "x" * 151 + " {minutes}"
    assert len(template.replace("{otp}", "123456").replace("{minutes}", "9")) == 160
    with pytest.raises(InvalidRequestError):
        _check({"codeTtlSeconds": 599, "templates": {"en": template}})


def test_released_audiences_and_identity_providers_stay_reserved(admin: AppAdmin, store: InMemoryAppStore) -> None:
    admin.create("shop", "Shop", {"tokenAudience": "shop-tokens"})
    admin.patch("shop", None, {"tokenAudience": "shop-tokens-2"})
    with pytest.raises(ConflictError):
        admin.create("other", "Other", {"tokenAudience": "shop-tokens"})
    admin.patch("shop", None, {"tokenAudience": "shop-tokens"})  # its own old audience it may take back
    # An identity provider is reserved in the write, so two racing changes cannot both take it
    idp = {"idpIssuer": "https://idp.example", "idpAudience": "api", "idpJwksUrl": "https://idp.example/jwks"}
    admin.patch("shop", None, idp)
    assert "https://idp.example\x00api" in store.identity_providers
    with pytest.raises(ConflictError):
        store.create(dataclasses.replace(store.records["shop"], app_id="racer"), "racer", "https://idp.example\x00api")


# ------------------------------------------------------------------------------------------- autofill


def test_autofill_lines_follow_the_sms_retriever_and_webotp_formats() -> None:
    from otp_core.messages import autofill

    body = "123456 is your Shop code."
    assert autofill(body, "123456", android_app_hash=None, web_otp_domain=None) == body
    assert autofill(body, "123456", android_app_hash="FA+9qCX9VSu", web_otp_domain=None) == f"<#> {body}\nFA+9qCX9VSu"
    assert autofill(body, "123456", android_app_hash=None, web_otp_domain="shop.example") == (
        f"{body}\n@shop.example #123456"
    )
    assert autofill(body, "123456", android_app_hash="FA+9qCX9VSu", web_otp_domain="shop.example") == (
        f"<#> {body}\nFA+9qCX9VSu\n@shop.example #123456"
    )


def test_autofill_settings_that_break_the_one_part_rule_are_refused() -> None:
    fill = {"webOtpDomain": "accounts.login.shop.example", "androidAppHash": "FA+9qCX9VSu"}
    assert _check({**fill, "appName": "Shop"}).web_otp_domain == "accounts.login.shop.example"
    # With a 20-character name and 10-digit codes the shipped French text no longer fits with the lines
    with pytest.raises(InvalidRequestError) as refused:
        _check({**fill, "appName": "A" * 20, "codeLength": 10})
    assert "templates.fr" in _errors(refused)["settings.webOtpDomain"]
    # An app template of its own for every language that overflows makes it fit again, or is refused itself
    with pytest.raises(InvalidRequestError) as refused:
        _check({**fill, "templates": {"en": "{otp} " + "x" * 140}})
    assert "settings.templates.en" in _errors(refused)


def test_a_send_carries_the_autofill_lines(make_world: Any) -> None:
    world = make_world(android_app_hash="FA+9qCX9VSu", web_otp_domain="shop.example")
    sent = world.service.create(CreateChallengeRequest.model_validate({"phoneNumber": "+14155552671", "action": "a"}))
    body = world.sender.sent[-1].body
    code = body.removeprefix("<#> ").split()[0]
    assert body.startswith("<#> ") and body.endswith(f"\nFA+9qCX9VSu\n@shop.example #{code}")
    assert world.service.verify(sent.challenge_id, code).is_verified


def test_a_send_goes_through_the_routes_of_its_app_s_policy(world: Any) -> None:
    # Given a starter whose sender depends on the app's routing (as runtime.sms_sender does)
    from otp_core.service import ChallengeStarter
    from tests.fakes import FakeSender

    senders = {("sns",): FakeSender("sns"), ("twilio", "sns"): FakeSender("twilio")}
    starter = ChallengeStarter(
        world.repository,
        world.identities,
        world.clock,
        world.codes,
        lambda policy: senders[tuple(policy.sms_providers)],
        check_phone_number,
        world.guard,
        app_id="shop",
    )
    routed = effective_policy(BASE, {"smsProviders": ["twilio", "sns"], "senderId": "Shop"})
    starter.create(routed, action="signIn", phone_number="+14155552671")
    starter.create(BASE, action="signIn", phone_number="+14155552672")
    # Then each went through its own providers, the app's sender ID with the app's
    assert [sms.to for sms in senders[("twilio", "sns")].sent] == ["+14155552671"]
    assert senders[("twilio", "sns")].sent[0].sender_id == "Shop"
    assert [sms.to for sms in senders[("sns",)].sent] == ["+14155552672"]


# ------------------------------------------------------------------------------- hosted page hand-off


def test_a_tracked_redirect_url_must_be_one_of_the_app_s(make_world: Any) -> None:
    import jwt

    from otp_core.models import TrackRequest
    from tests.unit.conftest import Client

    def track(world: Any, redirect: str) -> Any:
        request = {"userId": "u-1", "action": "signIn", "attributes": {"redirectUrl": redirect}}
        return Client(world).track(TrackRequest.model_validate(request))

    listed = make_world(redirect_urls="https://shop.example/done,http://localhost:8080/cb")
    for allowed, entry in (
        ("https://shop.example/done", "https://shop.example/done"),
        ("http://localhost:8080/cb", "http://localhost:8080/cb"),
        # Another spelling of a listed URL names it, and the token carries the operator's entry, not the spelling
        ("https://SHOP.example:443/done", "https://shop.example/done"),
        ("https://shop.example/done?next=/cart", "https://shop.example/done"),
    ):
        token = track(listed, allowed).token
        assert jwt.decode(token, options={"verify_signature": False})["rdr"] == entry
    for refused in (
        "https://shop.example/other",
        "https://evil.example/done",
        "http://shop.example/done",
        "nope",
        # Spellings Python reads as shop.example and a browser as evil.example (a backslash is "/" to a browser),
        # and any user part: all refused, never signed
        "https://evil.example\\@shop.example/done",
        "https://evil.example\\\\@shop.example/done",
        "https://evil.example\\\t@shop.example/done",
        "https://x@evil.example\\@shop.example/done",
        "https://evil@shop.example/done",
        "https://shop.example\\done",
        " https://shop.example/done",
        "\x01https://shop.example/done",
    ):
        with pytest.raises(InvalidRequestError) as error:
            track(listed, refused)
        assert "attributes.redirectUrl" in _errors(error)
    # Without a list the URL is ignored: it reaches no token
    token = track(make_world(), "https://anything.example/").token
    assert "rdr" not in jwt.decode(token, options={"verify_signature": False})


def test_a_redirect_url_removed_from_the_list_after_the_track_receives_no_token(make_world: Any) -> None:
    import jwt

    from otp_core.models import TrackRequest
    from tests.unit.conftest import Client

    # Given a track whose redirectUrl was on the app's list
    world = make_world(redirect_urls="https://old.example/done")
    client = Client(world)
    request = {"userId": "u-3", "action": "signIn", "attributes": {"redirectUrl": "https://old.example/done"}}
    claims = client.authenticate(f"Bearer {client.track(TrackRequest.model_validate(request)).token}")
    client.client_enroll(claims, "+14155552671")

    # When the operator replaces the list (a lost domain) before the user verifies
    world.policy = world.policy.model_copy(update={"redirect_urls": ("https://new.example/done",)})
    verified = client.client_verify(claims, world.sender.last_code())

    # Then the success token names no redirect: the page falls back to postMessage
    assert verified.token is not None
    assert "rdr" not in jwt.decode(verified.token, options={"verify_signature": False})


def test_a_listed_url_with_a_backslash_is_refused_in_the_settings() -> None:
    for value in ("https://evil.example\\.shop.example/done", "https://shop.example\\done"):
        with pytest.raises(ValueError, match="backslash"):
            Settings(redirect_urls=value)


def test_the_success_token_carries_the_tracked_redirect(make_world: Any) -> None:
    import jwt

    from otp_core.models import TrackRequest
    from tests.unit.conftest import Client

    world = make_world(redirect_urls="https://shop.example/done")
    client = Client(world)
    request = {"userId": "u-2", "action": "signIn", "attributes": {"redirectUrl": "https://shop.example/done"}}
    tracked = client.track(TrackRequest.model_validate(request))
    claims = client.authenticate(f"Bearer {tracked.token}")
    client.client_enroll(claims, "+14155552671")
    verified = client.client_verify(claims, world.sender.last_code())
    assert verified.token is not None
    assert jwt.decode(verified.token, options={"verify_signature": False})["rdr"] == "https://shop.example/done"
