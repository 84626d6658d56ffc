"""The whole local stack: DynamoDB Local and moto, resources from template.yaml, and the gateway in front.

Two ways to run it:

- ``run_local_stack()``: everything in this process (the handlers too), for a test session or ``make run``.
  It sets ``os.environ`` for the handlers while it runs, and handler modules keep the boto3 clients they
  created, so start it once per process.
- ``spawn_local_stack()``: ``python -m local`` in a child process, for test suites that must not
  share their interpreter (and its environment and imported modules) with the handlers.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from local import REPO_ROOT
from local.gateway import FunctionRunner, Gateway, GatewayServer, import_handler, quiet_empty_metrics, start
from local.iam import IAM, IamEnforcer, enabled_by_environment, install_iam_hook
from local.idp import (
    DEFAULT_AUDIENCE,
    ENV_AUDIENCE,
    ENV_ISSUER,
    LocalIdp,
    RunningStack,
    local_issuer,
    publish_stack,
    stack_environment,
)
from local.outbox import OUTBOX, Outbox, install_outbox_hook
from local.services import (
    DEFAULT_ADMIN_KEY,
    ENV_ADMIN_KEY,
    java_missing_warning,
    local_admin_key,
    local_provider_credentials,
    patched_environ,
    provision_stack,
    reset_counters,
    start_dynamodb_local,
    start_moto_server,
    warn,
)
from local.template import DEFAULT_TEMPLATE, Resolver, Template
from otp_core import runtime

DEFAULT_API_KEY: Final = "local-dev-key"
DEFAULT_PORT: Final = 3000
READY_LINE: Final = re.compile(r"^Local stack ready: (?P<url>http://\S+)$", re.MULTILINE)
AWS_LINE: Final = re.compile(r"^KMS, Secrets Manager, SNS: moto at (?P<url>http://\S+)$", re.MULTILINE)


def local_api_key() -> str:
    """The local stack's API key: ``OTP_LOCAL_API_KEY`` or ``local-dev-key``."""
    return os.environ.get("OTP_LOCAL_API_KEY") or DEFAULT_API_KEY


@dataclass
class LocalStack:
    """A running local stack.

    Attributes
    ----------
    url:
        Base URL of the API (``http://127.0.0.1:PORT``), no stage prefix.
    api_key:
        The server API key (``Authorization: Bearer <api_key>``).
    admin_key:
        The admin key of the ``/v1/admin`` routes (``OTP_LOCAL_ADMIN_KEY`` or ``local-admin-key``).
    environment:
        The functions' environment variables (table name, key ids, policy settings, local endpoints).
    idp:
        The local identity provider (``/_local/idp/...``) whose tokens the verification endpoints accept.
    iam:
        The enforcer that checks each function's AWS calls against its template policy, or None when
        ``OTP_LOCAL_IAM=off`` turned that off.
    """

    url: str
    api_key: str
    admin_key: str
    environment: dict[str, str]
    template: Template
    outbox: Outbox
    gateway: Gateway
    dynamodb_endpoint: str
    aws_endpoint: str
    uses_dynamodb_local: bool
    idp: LocalIdp
    iam: IamEnforcer | None = None

    @property
    def table_name(self) -> str:
        """The DynamoDB table the functions use (their TABLE_NAME)."""
        return self.environment.get("TABLE_NAME", "")

    @property
    def serves_admin(self) -> bool:
        """Whether the template's AdminApiEnabled condition holds here, so ``/v1/admin/...`` is routed."""
        return any(route.path.startswith("/v1/admin/") for route in self.gateway.routes)

    @property
    def serves_verification(self) -> bool:
        """Whether the template's HasIdp condition holds here, so ``/v1/verification/...`` is routed."""
        return bool(self.environment.get(ENV_ISSUER))


@contextlib.contextmanager
def run_local_stack(
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    template_path: Path | str = DEFAULT_TEMPLATE,
    api_key: str | None = None,
    admin_key: str | None = None,
    dynamodb_local: bool = True,
    region: str = "us-east-1",
    enforce_iam: bool | None = None,
    publish: bool = False,
) -> Iterator[LocalStack]:
    """Start the local stack in this process and stop all of it on exit.

    Parameters
    ----------
    port:
        Port of the gateway: None reads ``PORT`` (default 3000); 0 picks a free one (see ``LocalStack.url``).
    api_key:
        Default ``local_api_key()``.
    admin_key:
        Default ``local_admin_key()``. ``AdminApi=disabled`` (or ``ADMIN_API=disabled``) in the environment
        leaves the admin routes out, as the parameter does in a deployed stack.
    dynamodb_local:
        False keeps the table on moto even when Java is available (faster start, less faithful).
    enforce_iam:
        Whether each function's AWS calls are checked against its template.yaml policy (``local.iam``);
        None reads ``OTP_LOCAL_IAM`` (on unless ``off``).
    publish:
        Record the stack's URL and IdP claims in ``.local/stacks/<port>.json`` while it runs, for ``make token``
        (``python -m local`` does).

    The SMS provider secret holds ``local.services.LOCAL_PROVIDER_CREDENTIALS`` (or the JSON file
    ``OTP_LOCAL_SMS_PROVIDER_SECRET`` names), so ``SMS_PROVIDERS`` can route to the vendor fakes as they are.
    The functions' IDP_ISSUER, IDP_AUDIENCE and IDP_JWKS_URL point at the stack's own IdP unless the
    environment sets them (``IDP_ISSUER=`` leaves the verification endpoints out, like an empty IdpIssuer).
    """
    template = Template.load(template_path)
    api_key = api_key or local_api_key()
    admin_key = admin_key or local_admin_key()
    port = int(os.environ.get("PORT", DEFAULT_PORT)) if port is None else port
    with contextlib.ExitStack() as stack:
        dynamodb = start_dynamodb_local() if dynamodb_local else None
        if dynamodb is None and dynamodb_local:
            warn(java_missing_warning())
        if dynamodb is not None:
            stack.enter_context(dynamodb)
        moto = stack.enter_context(start_moto_server())
        dynamodb_endpoint = dynamodb.endpoint if dynamodb else moto.endpoint
        # Bound before provisioning: the IdP settings name the gateway's URL, whose port 0 picks only now.
        server = GatewayServer(None, host, port)
        stack.callback(server.server_close)
        provisioned = provision_stack(
            template,
            dynamodb_endpoint=dynamodb_endpoint,
            aws_endpoint=moto.endpoint,
            api_key=api_key,
            admin_key=admin_key,
            region=region,
            # /v1/track's url opens the hosted page on this stack, unless PUBLIC_BASE_URL names another base.
            environ={
                **os.environ,
                **stack_environment(server.url, os.environ),
                "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL") or server.url,
            },
            provider_credentials=local_provider_credentials(os.environ),
        )
        environment = provisioned.environment
        idp = LocalIdp.load(
            issuer=environment.get(ENV_ISSUER) or local_issuer(server.url),
            audience=environment.get(ENV_AUDIENCE) or DEFAULT_AUDIENCE,
        )
        # Registered before the environment is patched, so it also runs after the environment is restored:
        # the core builds settings and clients once per process, and they must not outlive these endpoints.
        stack.callback(runtime.reset)
        stack.enter_context(patched_environ(environment))
        runtime.reset()
        stack.enter_context(quiet_empty_metrics())
        # Before any handler is imported: clients copy the hooks of their session when they are created.
        install_outbox_hook(OUTBOX)
        # Sends to an app's test numbers reach no provider; here they show in the outbox as provider "test".
        runtime.use_test_number_sink(OUTBOX.record_test)
        stack.callback(runtime.use_test_number_sink, None)
        iam = IAM if (enabled_by_environment() if enforce_iam is None else enforce_iam) else None
        if iam is not None:
            iam.configure(template, provisioned.resolver)
            install_iam_hook(iam)
            stack.callback(iam.clear)
        table = environment.get("TABLE_NAME", "")
        gateway = server.gateway = _gateway(
            template, region, idp, iam, lambda: reset_counters(dynamodb_endpoint, table, region)
        )
        server, thread = start(server)
        stack.callback(_shutdown, server, thread)
        if publish:
            published = publish_stack(RunningStack(server.url, idp.issuer, idp.audience, os.getpid()))
            stack.callback(published.unlink, missing_ok=True)
        yield LocalStack(
            url=server.url,
            api_key=api_key,
            admin_key=admin_key,
            environment=environment,
            template=template,
            outbox=OUTBOX,
            gateway=gateway,
            dynamodb_endpoint=dynamodb_endpoint,
            aws_endpoint=moto.endpoint,
            uses_dynamodb_local=dynamodb is not None,
            idp=idp,
            iam=iam,
        )


def _gateway(
    template: Template, region: str, idp: LocalIdp, iam: IamEnforcer | None, counters: Callable[[], int]
) -> Gateway:
    resolver = Resolver(template, environ=os.environ, region=region)
    stage = resolver.resolve_str(template.api_properties.get("StageName", "api")) or "api"
    loader = import_handler if iam is None else lambda function: iam.wrap(function.logical_id, import_handler(function))
    runner = FunctionRunner(loader=loader, region=region)
    return Gateway(
        template,
        stage=stage,
        region=region,
        runner=runner,
        outbox=OUTBOX,
        active=resolver.is_active,
        idp=idp,
        reset_counters=counters,
    )


def _shutdown(server: GatewayServer, thread: Any) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


# ----------------------------------------------------------------------------------- child process


@dataclass
class LocalStackProcess:
    """``python -m local`` (or ``make run``) running as a child process, the leader of its own process group;
    ``log_path`` holds its console output.

    ``aws_endpoint`` is the child's moto server (KMS, Secrets Manager, SNS), for tests that need to reach
    behind the API, such as signing a token with the stack's own key.
    """

    url: str
    api_key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    aws_endpoint: str = ""
    admin_key: str = DEFAULT_ADMIN_KEY

    def stop(self) -> None:
        """Stop the child and its process group (SIGTERM, then SIGKILL after 15 s).

        The group, because the child may be ``make``, which does not pass a SIGTERM on to the stack it runs.
        """
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait(timeout=5)

    def log(self) -> str:
        """The child's console output so far (requests, SMS, tracebacks)."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def spawn_local_stack(
    port: int = 0,
    *,
    api_key: str | None = None,
    admin_key: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
    command: Sequence[str] | None = None,
) -> Iterator[LocalStackProcess]:
    """Run the local stack as a child process and yield once it serves; stop it on exit.

    ``env`` adds to this process's environment (policy settings such as ``MAX_ATTEMPTS``). ``command``
    replaces ``python -m local`` (``["make", "-s", "run"]`` runs it as the README does); it gets ``PORT``
    and the import roots in its environment. The child's output goes to a temporary log file, so a chatty
    child can never block on a full pipe.
    """
    api_key = api_key or local_api_key()
    admin_key = admin_key or local_admin_key()
    child_env = {**os.environ, **(env or {}), "PORT": str(port), "OTP_LOCAL_API_KEY": api_key}
    child_env[ENV_ADMIN_KEY] = admin_key
    child_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), str(REPO_ROOT / "layers" / "otp_core"), os.environ.get("PYTHONPATH")])
    )
    child_env["PYTHONUNBUFFERED"] = "1"
    with tempfile.NamedTemporaryFile(prefix="local-stack-", suffix=".log", delete=False) as log_file:
        log_path = Path(log_file.name)
        process = subprocess.Popen(  # noqa: S603 - our own interpreter, or the caller's fixed command
            list(command or [sys.executable, "-m", "local"]),
            cwd=REPO_ROOT,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    child = LocalStackProcess(url="", api_key=api_key, process=process, log_path=log_path, admin_key=admin_key)
    try:
        child.url = _wait_for_ready(child, timeout)
        aws = AWS_LINE.search(child.log())
        child.aws_endpoint = aws.group("url") if aws else ""
        yield child
    except BaseException:
        child.stop()
        print(f"local stack log kept at {log_path}", file=sys.stderr)
        raise
    child.stop()
    log_path.unlink(missing_ok=True)


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The child leads its own session (start_new_session), so its group id is its pid.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _wait_for_ready(child: LocalStackProcess, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = READY_LINE.search(child.log())
        if found:
            return found.group("url")
        if child.process.poll() is not None:
            raise RuntimeError(f"the local stack exited with {child.process.returncode}:\n{child.log()[-4000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"the local stack did not start within {timeout:.0f}s:\n{child.log()[-4000:]}")
