"""template.yaml as the local stack sees it: functions, routes, the authorizer and intrinsic functions.

The local stack routes and provisions from the same template that is deployed, so a route, an environment
variable or a table key that exists only in one of them cannot go unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Final

from cfnlint.decode import decode_str

from local import REPO_ROOT

DEFAULT_TEMPLATE: Final = REPO_ROOT / "template.yaml"
LOCAL_STACK_NAME: Final = "sms-otp-local"
LOCAL_ACCOUNT_ID: Final = "123456789012"  # moto's default account

FUNCTION_TYPE: Final = "AWS::Serverless::Function"
API_TYPE: Final = "AWS::Serverless::Api"

# --------------------------------------------------------------------------------------------- YAML


def load_document(text: str) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template (YAML or JSON) the way cfn-lint does, short-form tags included.

    cfn-lint's decoder is the one ``tests/infrastructure`` lints the template with, so the local stack and the
    linter cannot read the same file differently (``!GetAtt A.B``, duplicate keys, JSON templates).

    Raises
    ------
    ValueError
        The text does not parse, or is not a mapping.
    """
    document, errors = decode_str(text)
    if errors or not isinstance(document, dict):
        reasons = "; ".join(str(error.message) for error in errors) or "a template must be a mapping"
        raise ValueError(f"template does not parse: {reasons}")
    plain: dict[str, Any] = _plain(document)
    return plain


def _plain(value: Any) -> Any:
    # cfn-lint returns str and dict subclasses that carry line marks; the rest of the stack wants plain values.
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


# ------------------------------------------------------------------------------------ resolution

_NO_VALUE: Final = object()
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}]*)\}")


class UnresolvableError(ValueError):
    """An intrinsic function the local stack cannot evaluate (for example ``Fn::ImportValue``)."""


@dataclass
class Resolver:
    """Evaluates intrinsic functions against local stand-ins for the stack's resources.

    Parameters
    ----------
    template:
        The template whose parameters, conditions and mappings are used.
    refs:
        Physical values of ``Ref`` per resource logical id (table name, key id, secret ARN...).
    attributes:
        Values of ``Fn::GetAtt`` per (logical id, attribute).
    environ:
        Where a parameter's value may be overridden: an entry named like the parameter (``IdpIssuer``) wins over
        its Default, and so does an entry named like a function environment variable that is exactly a ``Ref``
        to it (``IDP_ISSUER: !Ref IdpIssuer``). That is the name the local stack's settings go by, so a
        condition on the parameter (``HasIdp``) sees the same value as the functions. A parameter no variable is
        bound to goes by its name in upper snake case as well (``ADMIN_API`` for ``AdminApi``, whose condition
        ``AdminApiEnabled`` decides whether the admin routes exist).
    """

    template: Template
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    stack_name: str = LOCAL_STACK_NAME
    region: str = "us-east-1"
    account_id: str = LOCAL_ACCOUNT_ID
    _conditions: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def resolve(self, value: Any) -> Any:
        """Return ``value`` with every intrinsic function evaluated; ``AWS::NoValue`` entries are dropped."""
        if isinstance(value, list):
            items = (self.resolve(item) for item in value)
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = self._intrinsics().get(key)
            # An IAM policy's Condition block is a mapping, the intrinsic's argument is a name.
            if handler is not None and not (key == "Condition" and not isinstance(argument, str)):
                return handler(argument)
        resolved = ((key, self.resolve(item)) for key, item in value.items())
        return {key: item for key, item in resolved if item is not _NO_VALUE}

    def resolve_str(self, value: Any) -> str:
        """Resolve ``value`` and render it the way CloudFormation renders an environment variable."""
        return _as_str(self.resolve(value))

    def condition(self, name: str) -> bool:
        """Evaluate a named condition of the template (cached)."""
        if name not in self._conditions:
            if name not in self.template.conditions:
                raise UnresolvableError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(self.template.conditions[name]))
        return self._conditions[name]

    def is_active(self, logical_id: str) -> bool:
        """Whether a resource exists in the stack: it has no Condition, or its condition holds."""
        condition = self.template.resources.get(logical_id, {}).get("Condition")
        return condition is None or self.condition(str(condition))

    def ref(self, name: str) -> Any:
        """The value of ``Ref`` for a pseudo parameter, a parameter or a resource."""
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.template.parameters:
            return self._parameter(name)
        if name in self.refs:
            return self.refs[name]
        if name in self.template.resources:
            return f"{self.stack_name}-{name}"
        raise UnresolvableError(f"Ref to unknown name {name!r}")

    def get_att(self, resource: str, attribute: str) -> str:
        """The value of ``Fn::GetAtt``; unknown attributes of known resources get a recognisable ARN."""
        if (resource, attribute) in self.attributes:
            return self.attributes[(resource, attribute)]
        if resource not in self.template.resources:
            raise UnresolvableError(f"GetAtt of unknown resource {resource!r}")
        return f"arn:aws:local:{self.region}:{self.account_id}:{resource}/{attribute}"

    def _parameter(self, name: str) -> Any:
        spec = self.template.parameters[name]
        raw = self.environ.get(name)
        for variable in self.template.parameter_variables.get(name, (upper_snake(name),)):
            if raw is not None:
                break
            raw = self.environ.get(variable)
        value = _as_str(spec.get("Default", "")) if raw is None else raw
        kind = str(spec.get("Type", "String"))
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            return [part.strip() for part in value.split(",")] if value else []
        return value

    def _intrinsics(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": lambda name: self.ref(str(name)),
            "Condition": lambda name: self.condition(str(name)),
            "Fn::GetAtt": self._fn_get_att,
            "Fn::Sub": self._fn_sub,
            "Fn::If": self._fn_if,
            "Fn::Equals": lambda args: _as_str(self.resolve(args[0])) == _as_str(self.resolve(args[1])),
            "Fn::Not": lambda args: not self.resolve(args[0]),
            "Fn::And": lambda args: all(self.resolve(arg) for arg in args),
            "Fn::Or": lambda args: any(self.resolve(arg) for arg in args),
            "Fn::Join": self._fn_join,
            "Fn::Select": lambda args: self.resolve(args[1])[int(self.resolve(args[0]))],
            "Fn::Split": lambda args: self.resolve_str(args[1]).split(self.resolve_str(args[0])),
            "Fn::FindInMap": self._fn_find_in_map,
            "Fn::Base64": lambda arg: self.resolve_str(arg),  # the environment wants the plain text
            "Fn::GetAZs": lambda _arg: [f"{self.region}a", f"{self.region}b"],
            "Fn::ImportValue": self._fn_import_value,
        }

    def _fn_get_att(self, args: Any) -> str:
        if isinstance(args, str):
            args = args.split(".", 1)
        resource, attribute = (self.resolve_str(part) for part in args)
        return self.get_att(resource, attribute)

    def _fn_sub(self, args: Any) -> str:
        text, variables = (args, {}) if isinstance(args, str) else (args[0], self.resolve(args[1]))

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _as_str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            return _as_str(self.ref(name))

        return _SUB_VARIABLE.sub(substitute, str(text))

    def _fn_if(self, args: Any) -> Any:
        name, when_true, when_false = args
        return self.resolve(when_true if self.condition(str(name)) else when_false)

    def _fn_join(self, args: Any) -> str:
        delimiter, items = args
        return str(delimiter).join(_as_str(item) for item in self.resolve(items))

    def _fn_find_in_map(self, args: Any) -> Any:
        name, top, second = (self.resolve_str(arg) for arg in args[:3])
        return self.template.mappings[name][top][second]

    def _fn_import_value(self, args: Any) -> Any:
        raise UnresolvableError(f"Fn::ImportValue {args!r} has no local value")


def upper_snake(name: str) -> str:
    """A parameter's name as an environment variable: ``AdminApi`` -> ``ADMIN_API``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def _as_str(value: Any) -> str:
    if value is _NO_VALUE or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_as_str(item) for item in value)
    return str(value)


def mentions_resource(value: Any, resources: Iterable[str]) -> bool:
    """Whether ``value`` refers to any of ``resources`` (through Ref, GetAtt or a Sub variable)."""
    names = set(resources)
    if isinstance(value, list):
        return any(mentions_resource(item, names) for item in value)
    if not isinstance(value, dict):
        return False
    if set(value) == {"Ref"}:
        return value["Ref"] in names
    if set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        return (target.split(".")[0] if isinstance(target, str) else target[0]) in names
    if set(value) == {"Fn::Sub"}:
        args = value["Fn::Sub"]
        text = args if isinstance(args, str) else args[0]
        variables = (match.split(".")[0] for match in _SUB_VARIABLE.findall(str(text)))
        return any(name in names for name in variables) or mentions_resource(args[1:], names)
    return any(mentions_resource(item, names) for item in value.values())


# ----------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Route:
    """One API event of a function: ``authorizer`` names the Api's authorizer, or is None for a public route."""

    method: str
    path: str
    function_id: str
    authorizer: str | None


@dataclass(frozen=True)
class Function:
    """An ``AWS::Serverless::Function`` as the local stack runs it."""

    logical_id: str
    code_uri: str
    handler: str
    module: str
    attribute: str
    routes: tuple[Route, ...]
    environment: Mapping[str, Any]
    memory_size: int
    timeout: int

    @property
    def auth(self) -> bool:
        """Whether any of the function's routes goes through an authorizer."""
        return any(route.authorizer is not None for route in self.routes)

    @property
    def folder(self) -> str:
        """The CodeUri's last folder (``create_challenge``), a short name for the function."""
        return Path(self.code_uri).name


@dataclass(frozen=True)
class Authorizer:
    """A Lambda authorizer of the Api."""

    name: str
    function_id: str
    payload_type: str
    header: str
    validation_expression: str | None
    ttl_seconds: int


class Template:
    """A parsed template.yaml with the parts the local stack needs."""

    def __init__(self, document: Mapping[str, Any], path: Path | None = None) -> None:
        self.document = dict(document)
        self.path = path
        self.parameters: dict[str, dict[str, Any]] = dict(document.get("Parameters") or {})
        self.conditions: dict[str, Any] = dict(document.get("Conditions") or {})
        self.mappings: dict[str, Any] = dict(document.get("Mappings") or {})
        self.resources: dict[str, dict[str, Any]] = dict(document.get("Resources") or {})
        self.globals: dict[str, Any] = dict(document.get("Globals") or {})
        self.api_id = self._api_id()
        self.authorizers = self._authorizers()
        self.functions = {
            logical_id: self._function(logical_id)
            for logical_id, resource in self.resources.items()
            if resource.get("Type") == FUNCTION_TYPE
        }

    @classmethod
    def load(cls, path: Path | str = DEFAULT_TEMPLATE) -> Template:
        """Read and parse a template file."""
        path = Path(path)
        return cls(load_document(path.read_text(encoding="utf-8")), path)

    @property
    def authorizer(self) -> str | None:
        """Logical id of the function behind the Api's DefaultAuthorizer, if there is one."""
        name = self.api_auth.get("DefaultAuthorizer")
        return self.authorizers[name].function_id if name in self.authorizers else None

    @property
    def api_properties(self) -> dict[str, Any]:
        """The Api's properties merged over ``Globals.Api`` (Auth merged one level deep, as SAM does)."""
        own = dict(self.resources.get(self.api_id or "", {}).get("Properties") or {})
        merged = {**(self.globals.get("Api") or {}), **own}
        merged["Auth"] = {**((self.globals.get("Api") or {}).get("Auth") or {}), **(own.get("Auth") or {})}
        return merged

    @property
    def api_auth(self) -> dict[str, Any]:
        """The Api's Auth section."""
        auth: dict[str, Any] = self.api_properties["Auth"]
        return auth

    @property
    def gateway_responses(self) -> dict[str, Any]:
        """The Api's GatewayResponses, unresolved."""
        return dict(self.api_properties.get("GatewayResponses") or {})

    @property
    def routes(self) -> list[Route]:
        """Every API route of every function."""
        return [route for function in self.functions.values() for route in function.routes]

    @cached_property
    def parameter_variables(self) -> dict[str, tuple[str, ...]]:
        """Per parameter, the function environment variables (global or any function's, conditional ones
        included) whose value is exactly a ``Ref`` to it, sorted: ``{"IdpIssuer": ("IDP_ISSUER",)}``."""
        found: dict[str, set[str]] = {}
        environments = [self.global_environment, *(function.environment for function in self.functions.values())]
        for environment in environments:
            for variable, raw in environment.items():
                if isinstance(raw, Mapping) and set(raw) == {"Ref"} and raw["Ref"] in self.parameters:
                    found.setdefault(str(raw["Ref"]), set()).add(variable)
        return {parameter: tuple(sorted(variables)) for parameter, variables in found.items()}

    @property
    def global_environment(self) -> dict[str, Any]:
        """``Globals.Function.Environment.Variables``, unresolved."""
        function_globals = self.globals.get("Function") or {}
        return dict((function_globals.get("Environment") or {}).get("Variables") or {})

    def resources_of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        """Resources whose Type is one of ``types``, by logical id."""
        return {key: value for key, value in self.resources.items() if value.get("Type") in types}

    def find_function(self, name: str) -> Function:
        """A function by logical id (``CreateChallengeFunction``) or CodeUri folder (``create_challenge``)."""
        if name in self.functions:
            return self.functions[name]
        matches = [function for function in self.functions.values() if function.folder == name.strip("/")]
        if len(matches) != 1:
            known = ", ".join(sorted(self.functions))
            raise KeyError(f"no function {name!r} in the template; known: {known}")
        return matches[0]

    def _api_id(self) -> str | None:
        apis = sorted(self.resources_of_type(API_TYPE))
        return apis[0] if apis else None

    def _authorizers(self) -> dict[str, Authorizer]:
        found: dict[str, Authorizer] = {}
        for name, spec in (self.api_auth.get("Authorizers") or {}).items():
            target = _target_function(spec.get("FunctionArn"))
            if target is None:
                continue  # Cognito and other authorizers do not run locally
            identity = spec.get("Identity") or {}
            found[name] = Authorizer(
                name=name,
                function_id=target,
                payload_type=str(spec.get("FunctionPayloadType", "TOKEN")).upper(),
                header=str(identity.get("Header", "Authorization")),
                validation_expression=identity.get("ValidationExpression"),
                ttl_seconds=int(identity.get("ReauthorizeEvery", 300)),
            )
        return found

    def _function(self, logical_id: str) -> Function:
        defaults = self.globals.get("Function") or {}
        properties = {**defaults, **(self.resources[logical_id].get("Properties") or {})}
        code_uri = str(properties.get("CodeUri", ".")).strip("/") or "."
        handler = str(properties.get("Handler", "app.lambda_handler"))
        module_path, _, attribute = handler.rpartition(".")
        package = ".".join(part for part in Path(code_uri).parts if part not in (".", ""))
        environment = {
            **self.global_environment,
            **((properties.get("Environment") or {}).get("Variables") or {}),
        }
        return Function(
            logical_id=logical_id,
            code_uri=code_uri,
            handler=handler,
            module=f"{package}.{module_path}" if package else module_path,
            attribute=attribute,
            routes=tuple(self._routes(logical_id, properties.get("Events") or {})),
            environment=environment,
            memory_size=_int_or(properties.get("MemorySize"), 128),
            timeout=_int_or(properties.get("Timeout"), 3),
        )

    def _routes(self, logical_id: str, events: Mapping[str, Any]) -> Iterable[Route]:
        default = self.api_auth.get("DefaultAuthorizer")
        for event in events.values():
            if event.get("Type") != "Api":
                continue
            properties = event.get("Properties") or {}
            api = properties.get("RestApiId")
            if isinstance(api, dict) and api.get("Ref") != self.api_id:
                continue
            named = (properties.get("Auth") or {}).get("Authorizer", default)
            authorizer = None if named in (None, "NONE", "AWS_IAM") else str(named)
            method = str(properties["Method"]).upper()
            yield Route(method=method, path=str(properties["Path"]), function_id=logical_id, authorizer=authorizer)


def _target_function(arn: Any) -> str | None:
    """The function logical id of ``!GetAtt Fn.Arn`` (or ``!Ref``/``!Sub`` of it)."""
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        target = arn["Fn::GetAtt"]
        return str(target.split(".")[0] if isinstance(target, str) else target[0])
    if isinstance(arn, dict) and "Ref" in arn:
        return str(arn["Ref"])
    return None


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default  # an intrinsic (a parameter) that does not matter locally
