"""Each function's IAM policy from template.yaml, enforced on the AWS calls its handler makes locally.

DynamoDB Local and moto accept any call, so a function whose ``Policies`` lack an action it uses passes
every local test and fails once deployed (AccessDenied, which the handler answers with a 503). Here each
function's inline policy statements are resolved against the local resources, the way the local stack
resolves its environment, and a botocore hook checks every call made while a handler runs. A call the
policy does not allow is answered as AWS answers it, with an ``AccessDeniedException`` (SNS:
``AuthorizationError``), and reported on the console with ``DENIAL_MARKER``.

Enforced:

- ``Effect`` Allow and Deny (an explicit Deny wins), ``Action``/``NotAction`` and ``Resource``/``NotResource``
  (a string or a list) with ``*`` and ``?`` wildcards; actions match case-insensitively, resources do not.
- IAM's action names, ``<prefix>:<Operation>``, except where IAM names them otherwise: TransactWriteItems needs
  dynamodb:PutItem, UpdateItem, DeleteItem or ConditionCheckItem per item, TransactGetItems dynamodb:GetItem
  per item, each on its item's table; BatchGetSecretValue also needs secretsmanager:GetSecretValue per secret.
- Resources: DynamoDB tables and indexes, KMS keys (by id, key ARN, or an alias the template defines),
  Secrets Manager secrets (by name or ARN), SNS topics (a publish to a phone number is on ``*``).
- The grants follow the function's environment: a test that points ``TABLE_NAME`` (bound to ``!Ref Table``)
  at another table, or changes a variable bound to a parameter, is checked as a stack deployed that way.

Approximated:

- A statement's ``Condition`` is taken to hold; there is no request context to evaluate it against.
- Managed policies the template defines (``!Ref`` to an ``AWS::IAM::ManagedPolicy``) grant their document;
  other managed policies (a string in ``Policies``), SAM policy templates and a function's own ``Role`` are not
  read: they grant nothing here, and loading the policy says so. SAM's implicit policies (CloudWatch Logs,
  X-Ray) do not matter locally: those calls do not go through boto3.
- A KMS alias the template does not define, and operations of other services, are checked on the action
  alone (any resource). PartiQL is checked as ``dynamodb:<Operation>`` on ``*``, not as IAM's PartiQL* actions.
- Resource-based policies (key and secret policies), SCPs and permission boundaries are not evaluated.
- A call is attributed to a function only on the thread that runs its handler (the core starts none).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, TextIO

import boto3
from botocore import handlers
from botocore.awsrequest import AWSResponse

from local.template import LOCAL_ACCOUNT_ID, LOCAL_STACK_NAME, Resolver, Template, UnresolvableError

DENIAL_MARKER: Final = "local IAM: AccessDenied"
"""Starts the console line of every denied call, so a test can find denials in a child stack's log."""
ENV_SWITCH: Final = "OTP_LOCAL_IAM"
"""``OTP_LOCAL_IAM=off`` runs the local stack without enforcing the policies."""

Handler = Callable[[dict[str, Any], Any], Any]

# ----------------------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Statement:
    """One statement of a function's identity policy, its intrinsic functions resolved."""

    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    sid: str = ""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        """A statement from its resolved template form."""
        return cls(
            effect=str(raw.get("Effect", "")).capitalize(),
            actions=_strings(raw.get("Action")),
            not_actions=_strings(raw.get("NotAction")),
            resources=_strings(raw.get("Resource")),
            not_resources=_strings(raw.get("NotResource")),
            sid=str(raw.get("Sid", "")),
        )

    def applies(self, access: Access) -> bool:
        """Whether the statement covers ``access`` (its Condition, if any, taken to hold)."""
        if self.actions:
            covered = any(_matches(pattern, access.action, fold=True) for pattern in self.actions)
        else:
            covered = bool(self.not_actions) and not any(
                _matches(pattern, access.action, fold=True) for pattern in self.not_actions
            )
        if not covered:
            return False
        if access.resource is None:  # a resource this module does not model: the action decides
            return True
        if self.not_resources:
            return not any(_matches(pattern, access.resource) for pattern in self.not_resources)
        return any(_matches(pattern, access.resource) for pattern in self.resources)


@dataclass(frozen=True)
class FunctionPolicy:
    """What a function's execution role may do: the inline statements of its ``Policies``.

    ``unsupported`` names the parts of ``Policies`` (managed policies, policy templates, a ``Role``) that are
    not read and so grant nothing here.
    """

    function_id: str
    statements: tuple[Statement, ...]
    unsupported: tuple[str, ...] = ()

    def allows(self, access: Access) -> bool:
        """IAM's rule: allowed when some statement allows it and none denies it."""
        applicable = [statement for statement in self.statements if statement.applies(access)]
        return bool(applicable) and all(statement.effect == "Allow" for statement in applicable)

    def grants(self) -> dict[str, tuple[str, ...]]:
        """The allowed actions per resource: ``{"arn:...:table/t": ("dynamodb:GetItem", ...)}``.

        A NotResource statement is listed under ``"NOT <pattern>, ..."``, a NotAction one as ``"NOT <action>"``.
        """
        found: dict[str, dict[str, None]] = {}
        for statement in self.statements:
            if statement.effect != "Allow":
                continue
            resources = statement.resources or ("NOT " + ", ".join(statement.not_resources),)
            actions = statement.actions or tuple(f"NOT {action}" for action in statement.not_actions)
            for resource in resources:
                found.setdefault(resource, {}).update(dict.fromkeys(actions))
        return {resource: tuple(actions) for resource, actions in found.items()}


def function_policy(template: Template, resolver: Resolver, function_id: str) -> FunctionPolicy:
    """The policy of one ``AWS::Serverless::Function``, resolved with ``resolver``."""
    properties = template.resources[function_id].get("Properties") or {}
    unsupported: list[str] = []
    if "Role" in properties:
        unsupported.append("Role (its policies are not in the template)")
    declared = properties.get("Policies") or []
    declared = declared if isinstance(declared, list) else [declared]
    statements: list[Statement] = []
    entries = []
    for conditional in declared:
        # An entry under a condition (`!If [HasEum, !Ref EumSendPolicy, !Ref AWS::NoValue]`) is its chosen branch.
        item = _chosen(resolver, conditional)
        if item is None:
            continue
        # A managed policy the template itself defines (Ref to an AWS::IAM::ManagedPolicy) grants its document.
        document = _template_managed_policy(template, item)
        if document is not None:
            items = resolver.resolve(document.get("Statement") or [])
            statements.extend(Statement.parse(raw) for raw in (items if isinstance(items, list) else [items]))
        else:
            entries.append(item)
    raw_entries = resolver.resolve(entries)
    for entry in raw_entries if isinstance(raw_entries, list) else [raw_entries]:
        if isinstance(entry, Mapping) and "Statement" in entry:
            items = entry["Statement"]
            statements.extend(Statement.parse(item) for item in (items if isinstance(items, list) else [items]))
        elif isinstance(entry, str):
            unsupported.append(f"managed policy {entry}")
        elif isinstance(entry, Mapping):
            unsupported.append("policy template " + ", ".join(map(str, entry)))
    return FunctionPolicy(function_id, tuple(statements), tuple(unsupported))


def _chosen(resolver: Resolver, entry: Any) -> Any:
    """A Policies entry with its ``Fn::If`` decided by the resolver's conditions (None for ``AWS::NoValue``)."""
    while isinstance(entry, Mapping) and set(entry) == {"Fn::If"}:
        condition, when_true, when_false = entry["Fn::If"]
        entry = when_true if resolver.condition(str(condition)) else when_false
    if isinstance(entry, Mapping) and entry == {"Ref": "AWS::NoValue"}:
        return None
    return entry


def _template_managed_policy(template: Template, entry: Any) -> Mapping[str, Any] | None:
    """The PolicyDocument of ``{"Ref": X}`` when X is an ``AWS::IAM::ManagedPolicy`` of the template."""
    if not (isinstance(entry, Mapping) and set(entry) == {"Ref"} and isinstance(entry["Ref"], str)):
        return None
    resource = template.resources.get(entry["Ref"])
    if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::IAM::ManagedPolicy":
        return None
    document = (resource.get("Properties") or {}).get("PolicyDocument")
    return document if isinstance(document, Mapping) else None


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(item for part in value for item in _strings(part))
    return (str(value),)


@functools.lru_cache(maxsize=512)
def _pattern(pattern: str, fold: bool) -> re.Pattern[str]:
    regex = ".*".join(".".join(map(re.escape, part.split("?"))) for part in pattern.split("*"))
    return re.compile(regex, re.IGNORECASE if fold else 0)


def _matches(pattern: str, value: str, *, fold: bool = False) -> bool:
    return _pattern(pattern, fold).fullmatch(value) is not None


# ---------------------------------------------------------------------------------------- accesses


@dataclass(frozen=True)
class Access:
    """One IAM authorization a call needs: an action on a resource (None: not modelled, any resource)."""

    action: str
    resource: str | None


@dataclass(frozen=True)
class Arns:
    """Turns the identifiers of a request into the ARNs IAM evaluates it against.

    ``secrets`` maps the stack's secret names to their full ARNs (a request may name a secret either way);
    ``aliases`` maps the template's KMS aliases (``alias/x``) to their keys' ARNs.
    """

    region: str
    account: str
    secrets: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)

    def table(self, name: str) -> str:
        """A table's ARN from its name (or ARN)."""
        return name if name.startswith("arn:") else f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"

    def key(self, key_id: str) -> str | None:
        """The key ARN IAM checks for a KeyId: a key id, key ARN, alias name or alias ARN (None: unknown alias)."""
        if key_id.startswith("arn:") and ":key/" in key_id:
            return key_id
        alias = key_id.split(":", 5)[-1] if key_id.startswith("arn:") else key_id
        if alias.startswith("alias/"):
            return self.aliases.get(alias)
        return f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"

    def secret(self, secret_id: str) -> str:
        """A secret's full ARN from its name, partial ARN or ARN."""
        if secret_id in self.secrets.values():
            return secret_id
        name = secret_id.split(":secret:", 1)[-1]
        if name in self.secrets:
            return self.secrets[name]
        return secret_id if secret_id.startswith("arn:") else self.secret_arn(name)

    def secret_arn(self, name: str) -> str:
        """The ARN of a secret named ``name``, without the random suffix Secrets Manager appends."""
        return f"arn:aws:secretsmanager:{self.region}:{self.account}:secret:{name}"


_TRANSACT_WRITE_ACTIONS: Final = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def accesses(prefix: str, operation: str, params: Mapping[str, Any], arns: Arns) -> list[Access]:
    """The authorizations an API call needs, in order and without repeats.

    ``prefix`` is the service's IAM prefix (``dynamodb``, ``kms``, ``secretsmanager``, ``sns``), ``operation``
    the API operation (``TransactWriteItems``) and ``params`` its parameters as the caller passed them.
    """
    if prefix == "dynamodb":
        found = _dynamodb(operation, params, arns)
    elif prefix == "kms":
        key_id = params.get("KeyId")
        found = [Access(f"kms:{operation}", arns.key(str(key_id)) if key_id else "*")]
    elif prefix == "secretsmanager":
        found = _secretsmanager(operation, params, arns)
    elif prefix == "sns":
        topic = params.get("TopicArn") or params.get("TargetArn")
        # A direct SMS to a phone number is on no ARN: only Resource "*" (or a NotResource) covers it.
        found = [Access(f"sns:{operation}", str(topic) if topic else "*" if operation == "Publish" else None)]
    elif prefix == "sms-voice":
        found = _sms_voice(operation, params, arns)
    else:
        found = [Access(f"{prefix}:{operation}", None)]
    return list(dict.fromkeys(found))


def _sms_voice(operation: str, params: Mapping[str, Any], arns: Arns) -> list[Access]:
    """End User Messaging SMS: a send is authorized on each resource it names (the configuration set, the
    origination identity, the protect configuration), or on "*" when it names none; feedback on its message."""
    base = f"arn:aws:sms-voice:{arns.region}:{arns.account}"
    action = f"sms-voice:{operation}"
    if operation == "PutMessageFeedback":
        return [Access(action, f"{base}:message/{params.get('MessageId', '')}")]
    if operation != "SendTextMessage":
        return [Access(action, None)]
    found = []
    config_set = params.get("ConfigurationSetName")
    if config_set:
        name = str(config_set)
        found.append(Access(action, name if name.startswith("arn:") else f"{base}:configuration-set/{name}"))
    identity = params.get("OriginationIdentity")
    if identity:
        value = str(identity)
        if value.startswith("arn:"):
            resource = value
        elif value.startswith("pool-"):
            resource = f"{base}:pool/{value}"
        elif value.startswith(("phone-", "+")):
            resource = f"{base}:phone-number/{value}"
        else:
            resource = f"{base}:sender-id/{value}/*"
        found.append(Access(action, resource))
    protect = params.get("ProtectConfigurationId")
    if protect:
        value = str(protect)
        found.append(Access(action, value if value.startswith("arn:") else f"{base}:protect-configuration/{value}"))
    return found or [Access(action, "*")]


def _dynamodb(operation: str, params: Mapping[str, Any], arns: Arns) -> list[Access]:
    if operation == "TransactWriteItems":
        # Malformed items are botocore's to reject, after this hook: read them without assuming their shape.
        return [
            Access(action, arns.table(str(item[kind].get("TableName", ""))))
            for item in params.get("TransactItems") or []
            for kind, action in _TRANSACT_WRITE_ACTIONS.items()
            if isinstance(item, Mapping) and isinstance(item.get(kind), Mapping)
        ]
    if operation == "TransactGetItems":
        items = params.get("TransactItems") or []
        return [
            Access("dynamodb:GetItem", arns.table(str(item["Get"].get("TableName", ""))))
            for item in items
            if isinstance(item, Mapping) and isinstance(item.get("Get"), Mapping)
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Access(f"dynamodb:{operation}", arns.table(str(name))) for name in params.get("RequestItems") or {}]
    table = params.get("TableName")
    if not table:
        return [Access(f"dynamodb:{operation}", "*")]
    resource = arns.table(str(table))
    if params.get("IndexName"):
        resource = f"{resource}/index/{params['IndexName']}"
    return [Access(f"dynamodb:{operation}", resource)]


def _secretsmanager(operation: str, params: Mapping[str, Any], arns: Arns) -> list[Access]:
    if operation == "BatchGetSecretValue":
        per_secret: list[Access] = [
            Access("secretsmanager:GetSecretValue", arns.secret(str(secret_id)))
            for secret_id in params.get("SecretIdList") or []
        ]
        if params.get("Filters"):
            per_secret.append(Access("secretsmanager:GetSecretValue", None))
        return [Access("secretsmanager:BatchGetSecretValue", "*"), *per_secret]
    secret_id = params.get("SecretId")
    return [Access(f"secretsmanager:{operation}", arns.secret(str(secret_id)) if secret_id else "*")]


# ---------------------------------------------------------------------------------------- denials


@dataclass(frozen=True)
class Denial:
    """A call a function's policy did not allow: the first authorization it lacked."""

    function_id: str
    service: str
    operation: str
    access: Access
    grants: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    @property
    def error_message(self) -> str:
        """The message AWS gives, with the local stack's names in it."""
        # SAM names a function's role <LogicalId>Role; Lambda's session is named after the function.
        principal = (
            f"arn:aws:sts::{LOCAL_ACCOUNT_ID}:assumed-role/{self.function_id}Role/{LOCAL_STACK_NAME}-{self.function_id}"
        )
        resource = self.access.resource or "*"
        return (
            f"User: {principal} is not authorized to perform: {self.access.action} on resource: {resource} "
            f"because no identity-based policy allows the {self.access.action} action"
        )

    def report(self) -> str:
        """The console line: what was denied, what the policy grants on that resource, and where to fix it."""
        resource = self.access.resource or "*"
        granted = ", ".join(self.grants.get(resource, ())) or "nothing"
        return (
            f"{DENIAL_MARKER}: {self.function_id} may not {self.access.action} on {resource} "
            f"({self.service}.{self.operation}); its template.yaml Policies grant {granted} there. "
            "If the function needs this call, add the action to its Policies: AWS denies it the same way."
        )


# Error code and HTTP status each service answers an unauthorized call with.
_ERRORS: Final = {"sns": ("AuthorizationError", 403), "s3": ("AccessDenied", 403), "sts": ("AccessDenied", 403)}
_DEFAULT_ERROR: Final = ("AccessDeniedException", 400)


class _Body:
    """The ``raw`` of a synthetic AWSResponse: what botocore reads when something asks for its content."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._content


def error_response(denial: Denial, url: str = "") -> tuple[AWSResponse, dict[str, Any]]:
    """What a ``before-call`` hook returns to answer a call with the service's access-denied error."""
    code, status = _ERRORS.get(denial.service, _DEFAULT_ERROR)
    http = AWSResponse(url, status, {}, _Body(b""))
    parsed = {
        "Error": {"Code": code, "Message": denial.error_message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    return http, parsed


# ----------------------------------------------------------------------------------------- enforcer


@dataclass(frozen=True)
class _Binding:
    """A function environment variable that is exactly a ``Ref``, and the value the local stack gave it."""

    variable: str
    target: str
    provisioned: str


@dataclass(frozen=True)
class _Stack:
    template: Template
    resolver: Resolver
    bindings: Mapping[str, tuple[_Binding, ...]]


class IamEnforcer:
    """Checks the AWS calls of a running handler against its function's policy (see the module docstring).

    ``configure`` loads the template and the provisioned resources, ``install_iam_hook`` attaches the botocore
    hooks, and a handler runs under its policy inside ``acting_as`` (or wrapped by ``wrap``). Calls made
    outside a handler (provisioning, a test reading the table) are not checked.

    Parameters
    ----------
    echo:
        Where each denial is reported as it happens, or None; by default the ``sys.stderr`` of that moment
        (the local stack's console, or what pytest captures for the running test).
    """

    def __init__(self, echo: TextIO | Literal["stderr"] | None = "stderr") -> None:
        self.echo = echo
        self._acting: ContextVar[str | None] = ContextVar(f"local_iam_{id(self)}", default=None)
        self._context_key = f"local_iam_denial_{id(self)}"
        self._lock = threading.Lock()
        self._stack: _Stack | None = None
        self._policies: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[FunctionPolicy, Arns]] = {}
        self._denials: list[Denial] = []

    # -- configuration

    def configure(self, template: Template, resolver: Resolver) -> None:
        """Enforce ``template``'s policies, resolved with the provisioning ``resolver`` (its refs filled in)."""
        bindings: dict[str, tuple[_Binding, ...]] = {}
        for function in template.functions.values():
            bindings[function.logical_id] = tuple(
                _Binding(variable, str(raw["Ref"]), resolver.resolve_str(raw))
                for variable, raw in function.environment.items()
                if isinstance(raw, Mapping)
                and set(raw) == {"Ref"}
                and (raw["Ref"] in template.resources or raw["Ref"] in template.parameters)
            )
        with self._lock:
            self._stack = _Stack(template, resolver, bindings)
            self._policies.clear()
        for function_id in template.functions:
            policy = self.policy(function_id)
            if policy.unsupported:
                self._say(
                    f"local IAM: {function_id}: not read, so granting nothing here: " + "; ".join(policy.unsupported)
                )

    def clear(self) -> None:
        """Stop enforcing: forget the template (the hooks stay installed and let every call through)."""
        with self._lock:
            self._stack = None
            self._policies.clear()

    @property
    def configured(self) -> bool:
        """Whether a template is loaded."""
        return self._stack is not None

    def policy(self, function: str) -> FunctionPolicy:
        """A function's policy (logical id or CodeUri folder) under the current environment."""
        return self._policy_and_arns(self._function_id(function))[0]

    def denials(self) -> list[Denial]:
        """Every call denied so far, oldest first."""
        with self._lock:
            return list(self._denials)

    # -- running handlers

    @contextlib.contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        """Check the calls of this thread against ``function``'s policy (logical id or CodeUri folder)."""
        token = self._acting.set(self._function_id(function))
        try:
            yield
        finally:
            self._acting.reset(token)

    def wrap(self, function: str, handler: Handler) -> Handler:
        """``handler``, running under ``function``'s policy on every invocation."""

        @functools.wraps(handler)
        def enforced(event: dict[str, Any], context: Any) -> Any:
            with self.acting_as(function):
                return handler(event, context)

        return enforced

    def check(
        self, function: str, prefix: str, operation: str, params: Mapping[str, Any], region: str | None = None
    ) -> Denial | None:
        """The denial of one call by ``function``, or None when its policy allows every authorization it needs."""
        function_id = self._function_id(function)
        policy, arns = self._policy_and_arns(function_id)
        if region:
            arns = replace(arns, region=region)
        for access in accesses(prefix, operation, params, arns):
            if not policy.allows(access):
                return Denial(function_id, prefix, operation, access, policy.grants())
        return None

    # -- botocore hooks

    def before_parameter_build(self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        """``before-parameter-build`` hook: decide on the call from the caller's own parameters."""
        function_id = self._acting.get()
        if function_id is None or self._stack is None:
            return
        prefix = str(model.service_model.signing_name)
        denial = self.check(function_id, prefix, str(model.name), params, context.get("client_region"))
        if denial is not None:
            context[self._context_key] = denial
            with self._lock:
                self._denials.append(denial)
            self._say(denial.report())

    def before_call(self, context: Mapping[str, Any], params: Mapping[str, Any], **_: Any) -> Any:
        """``before-call`` hook: answer a denied call in the service's place (None lets it through)."""
        denial = context.get(self._context_key)
        if not isinstance(denial, Denial):
            return None
        return error_response(denial, str(params.get("url", "")))

    # -- internals

    def _say(self, line: str) -> None:
        stream = sys.stderr if self.echo == "stderr" else self.echo
        if stream is not None:
            print(line, file=stream, flush=True)

    def _function_id(self, function: str) -> str:
        stack = self._stack
        if stack is None:
            raise RuntimeError("the IAM enforcer has no template: call configure() first")
        return stack.template.find_function(function).logical_id

    def _policy_and_arns(self, function_id: str) -> tuple[FunctionPolicy, Arns]:
        stack = self._stack
        if stack is None:
            raise RuntimeError("the IAM enforcer has no template: call configure() first")
        changed = tuple(
            (binding.target, value)
            for binding in stack.bindings.get(function_id, ())
            if (value := os.environ.get(binding.variable)) is not None and value != binding.provisioned
        )
        key = (function_id, changed)
        with self._lock:
            cached = self._policies.get(key)
        if cached is not None:
            return cached
        resolver = _rebound(stack.template, stack.resolver, changed)
        result = function_policy(stack.template, resolver, function_id), _arns(stack.template, resolver)
        with self._lock:
            self._policies[key] = result
        return result


def _rebound(template: Template, base: Resolver, changed: Iterable[tuple[str, str]]) -> Resolver:
    """``base`` with resources and parameters taking the values the environment now gives them."""
    refs, attributes, environ = dict(base.refs), dict(base.attributes), dict(base.environ)
    arns = Arns(base.region, base.account_id)
    for target, value in changed:
        if target in template.parameters:
            environ[target] = value
            continue
        kind = template.resources[target].get("Type")
        if kind == "AWS::DynamoDB::Table":
            refs[target] = value
            attributes[(target, "Arn")] = arns.table(value)
        elif kind == "AWS::KMS::Key":
            refs[target] = value
            attributes[(target, "KeyId")] = value.rsplit("/", 1)[-1]
            attributes[(target, "Arn")] = arns.key(value) or value
        elif kind == "AWS::SecretsManager::Secret":
            refs[target] = value if value.startswith("arn:") else arns.secret_arn(value)
            attributes[(target, "Id")] = refs[target]
        else:
            refs[target] = value
    return Resolver(
        template,
        refs=refs,
        attributes=attributes,
        environ=environ,
        stack_name=base.stack_name,
        region=base.region,
        account_id=base.account_id,
    )


def _arns(template: Template, resolver: Resolver) -> Arns:
    secrets: dict[str, str] = {}
    for logical_id in template.resources_of_type("AWS::SecretsManager::Secret"):
        arn = resolver.refs.get(logical_id)
        if arn and ":secret:" in arn:
            # Secrets Manager appends "-" and six random characters to the name in the ARN.
            secrets[re.sub(r"-[A-Za-z0-9]{6}$", "", arn.split(":secret:", 1)[1])] = arn
    aliases: dict[str, str] = {}
    plain = Arns(resolver.region, resolver.account_id)
    for logical_id, resource in template.resources_of_type("AWS::KMS::Alias").items():
        try:
            properties = resolver.resolve(resource.get("Properties") or {})
            target = plain.key(str(properties["TargetKeyId"]))
        except (UnresolvableError, KeyError):
            continue
        if target is not None and resolver.is_active(logical_id):
            aliases[str(properties["AliasName"])] = target
    return Arns(resolver.region, resolver.account_id, secrets, aliases)


IAM: Final = IamEnforcer()
"""The process-wide enforcer: botocore hooks are process-wide too."""

_installed: set[int] = set()
_install_lock = threading.Lock()


def _hooks(enforcer: IamEnforcer) -> list[tuple[str, Callable[..., Any]]]:
    return [("before-parameter-build", enforcer.before_parameter_build), ("before-call", enforcer.before_call)]


def install_iam_hook(enforcer: IamEnforcer = IAM) -> None:
    """Make every boto3 client created from now on check its calls with ``enforcer``.

    As for the outbox, the hooks go into botocore's built-in handlers (every new session starts from them) and
    onto boto3's default session if it exists; a client created before keeps the hooks it had. Calling it
    again for the same enforcer does nothing.
    """
    with _install_lock:
        if id(enforcer) in _installed:
            return
        specs = _hooks(enforcer)
        handlers.BUILTIN_HANDLERS.extend(specs)
        if boto3.DEFAULT_SESSION is not None:
            for event, hook in specs:
                boto3.DEFAULT_SESSION.events.register(event, hook)
        _installed.add(id(enforcer))


def uninstall_iam_hook(enforcer: IamEnforcer) -> None:
    """Undo ``install_iam_hook`` for sessions created from now on (clients that exist keep their hooks)."""
    with _install_lock:
        handlers.BUILTIN_HANDLERS[:] = [
            spec for spec in handlers.BUILTIN_HANDLERS if getattr(spec[1], "__self__", None) is not enforcer
        ]
        if boto3.DEFAULT_SESSION is not None:
            for event, hook in _hooks(enforcer):
                boto3.DEFAULT_SESSION.events.unregister(event, hook)
        _installed.discard(id(enforcer))


def enabled_by_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OTP_LOCAL_IAM`` leaves enforcement on (anything but off, 0, false or no)."""
    value = (os.environ if environ is None else environ).get(ENV_SWITCH, "")
    return value.strip().lower() not in ("off", "0", "false", "no")


@contextlib.contextmanager
def enforced_handlers(template: Template, enforcer: IamEnforcer = IAM) -> Iterator[None]:
    """Run every function's handler under its policy however it is called, until the block ends.

    Each function module's handler attribute is replaced by ``enforcer.wrap`` of it, so a test that calls
    ``importlib.import_module("functions.x.app").lambda_handler`` directly is checked too.
    """
    replaced: list[tuple[Any, str, Any]] = []
    try:
        for function in template.functions.values():
            module = importlib.import_module(function.module)
            handler = getattr(module, function.attribute)
            replaced.append((module, function.attribute, handler))
            setattr(module, function.attribute, enforcer.wrap(function.logical_id, handler))
        yield
    finally:
        for module, attribute, handler in reversed(replaced):
            setattr(module, attribute, handler)
