"""The README's walk-throughs, run as printed against the local stack that ``make run`` starts.

Every ```` ```sh ```` block of README.md that talks to ``$API`` is a walk-through. Its commands run one at a
time, in order, in one bash session (so ``API=...`` and ``USER_TOKEN=$(make -s token ...)`` carry over to the
next command), with ``PORT`` set to the stack's port, as in a reader's second terminal: the blocks say
``API=http://127.0.0.1:${PORT:-3000}``. A command runs exactly as printed except for its placeholders, a
``<name>`` the reader copies from an earlier answer:

- ``<code>``: the code (the first 4 to 10 digits) of the newest SMS, from the latest ``/_local/outbox``
  answer or from a line the vendor fakes printed (``[twilio] SMS to +1...: 123456 is ...``);
- ``<... token>`` (``<client token>``, ``<succeeded token>``): the ``token`` of the newest answer that has one;
- ``<endpoints>``: the ``SMS_PROVIDER_ENDPOINTS=`` value the vendor fakes printed;
- any other ``<name>`` (``<challengeId>``, ``<authenticatorId>``): the field ``name`` of the newest answer
  that has it, at any depth.

A command that starts a server (``... make run``, ``make vendors``) runs in the background, with the variables
it is prefixed with, until its block ends; the next command runs once the server says it is ready. Blocks
without their own ``make run`` share one stack that ``make run`` started for the whole file, and run top to
bottom, like a reader working through the README.

Each answer must be JSON that is not an error (a problem document, or API Gateway's ``{"message": ...}``),
unless the README shows that very error as the answer (same ``status``).
Where the README shows the answer (``# {...}`` lines right after the command, optionally after a status code),
the answer must have every key shown, with the value shown, except values elided with ``…`` or written as a
``<placeholder>``, and lists of objects (the outbox holds every SMS so far). The stack's console must show no
denied AWS call, no failed function and no Powertools "No application metrics" warning.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local import REPO_ROOT
from local.gateway import EMPTY_METRICS_WARNING
from local.iam import DENIAL_MARKER
from local.stack import LocalStackProcess, spawn_local_stack

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"
LOCAL_API_KEY = "local-dev-key"  # what the walk-throughs send
COMMAND_TIMEOUT = 60.0
SERVER_TIMEOUT = 180.0
_PLACEHOLDER = re.compile(r"<([A-Za-z][A-Za-z _-]*)>")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_ENDPOINTS_LINE = re.compile(r"^SMS_PROVIDER_ENDPOINTS=(?P<value>\S+)$", re.MULTILINE)
_VENDOR_SMS = re.compile(r"^\[(?P<vendor>[a-z]+)\] SMS to (?P<to>\+\d+): (?P<body>.*)$", re.MULTILINE)
_CODE = re.compile(r"\b(\d{4,10})\b")
_STATUS_PREFIX = re.compile(r"^\d{3}\s+")
# A shell started by make for a recipe would see make's jobserver; a reader's terminal has none.
_MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


# ------------------------------------------------------------------------------------ the README


@dataclass
class Command:
    text: str
    expected: Any = None
    documented: bool = False

    @property
    def server(self) -> tuple[dict[str, str], str] | None:
        """``(variables, "run" | "vendors")`` when the command starts ``make run`` or ``make vendors``."""
        words = shlex.split(self.text, comments=True)
        variables = [word for word in words if _ASSIGNMENT.match(word)]
        rest = words[len(variables) :]
        if words[: len(variables)] != variables or rest not in (["make", "run"], ["make", "vendors"]):
            return None
        return dict(variable.split("=", 1) for variable in variables), rest[1]


@dataclass
class Walkthrough:
    title: str
    line: int
    commands: list[Command] = field(default_factory=list)

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.title})"


def walkthroughs(text: str) -> list[Walkthrough]:
    """The ``sh`` blocks that talk to ``$API``, each under the title of the section it is in."""
    found: list[Walkthrough] = []
    title, start = "", 0
    block: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if block is None and line.startswith("#"):
            title = line.lstrip("#").strip()
        elif block is None and line.strip() == "```sh":
            block, start = [], number + 1
        elif block is not None and line.strip() == "```":
            if any("$API" in each for each in block):
                found.append(Walkthrough(title, start, parse_commands(block)))
            block = None
        elif block is not None:
            block.append(line)
    return found


def parse_commands(lines: list[str]) -> list[Command]:
    """Commands (continuation lines joined) with the answers documented right after them."""
    commands: list[Command] = []
    index, attached = 0, False  # attached: no blank line since the last command
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if not line:
            attached = False
        elif line.startswith("#"):
            body = line[1:].strip()
            if attached and commands and not commands[-1].documented and _STATUS_PREFIX.sub("", body).startswith("{"):
                text = _STATUS_PREFIX.sub("", body)
                while not _complete_json(text) and index < len(lines) and lines[index].strip().startswith("#"):
                    text += " " + lines[index].strip()[1:].strip()
                    index += 1
                commands[-1].expected = json.loads(text)  # a documented answer must be JSON
                commands[-1].documented = True
        else:
            text = lines[index - 1]
            while text.endswith("\\") and index < len(lines):
                text += "\n" + lines[index]
                index += 1
            commands.append(Command(text.strip()))
            attached = True
    return commands


def _complete_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------ bash


class Shell:
    """One bash session fed command by command, as a terminal would run them."""

    _SENTINEL = "__readme_command_done__"

    def __init__(self, env: dict[str, str]) -> None:
        self._errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self._process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            text=True,
            start_new_session=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)

    def run(self, command: str) -> tuple[int, str]:
        """Run ``command``; return its exit status and standard output."""
        assert self._process.stdin is not None
        self._process.stdin.write(f"{command}\nprintf '\\n{self._SENTINEL} %d\\n' $?\n")
        self._process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no answer within {COMMAND_TIMEOUT:.0f}s to:\n{command}\n{self.errors()}")
            if line.startswith(self._SENTINEL):
                text = "".join(output)
                return int(line.split()[1]), text.removesuffix("\n")
            output.append(line)

    def errors(self) -> str:
        self._errors.seek(0)
        return self._errors.read()[-3000:]

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=5)
        self._errors.close()


@dataclass
class Background:
    """A server command running in its own process group, its output in a file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def vendors(env: dict[str, str]) -> Iterator[tuple[Background, str]]:
    """``make vendors`` in the background; yields it and the endpoints it printed."""
    with tempfile.NamedTemporaryFile(prefix="readme-vendors-", suffix=".log", delete=False) as log_file:
        process = subprocess.Popen(
            ["make", "vendors"],
            cwd=REPO_ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    fakes = Background(process, Path(log_file.name))
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while (found := _ENDPOINTS_LINE.search(fakes.log())) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make vendors did not print its endpoints:\n{fakes.log()[-3000:]}")
            time.sleep(0.1)
        yield fakes, found.group("value")
    finally:
        fakes.stop()


def reader_environment() -> dict[str, str]:
    """This process's environment without make's variables (pytest may run under ``make test``)."""
    return {name: value for name, value in os.environ.items() if name not in _MAKE_VARIABLES}


# ---------------------------------------------------------------------------------------- the run


@dataclass
class Reader:
    """What a reader has seen so far: answers, SMS, and what the vendor fakes printed."""

    answers: list[Any] = field(default_factory=list)
    sms: list[str] = field(default_factory=list)
    endpoints: str = ""
    fakes: Background | None = None
    fakes_seen: int = 0

    def read_fakes(self) -> None:
        if self.fakes is None:
            return
        lines = list(_VENDOR_SMS.finditer(self.fakes.log()))
        self.sms.extend(match.group("body") for match in lines[self.fakes_seen :])
        self.fakes_seen = len(lines)

    def fill(self, command: str) -> str:
        return _PLACEHOLDER.sub(lambda match: self.value(match.group(1)), command)

    def value(self, name: str) -> str:
        if name == "code":
            return self.code()
        if name == "endpoints":
            assert self.endpoints, "<endpoints> before make vendors printed them"
            return self.endpoints
        key = "token" if name.endswith("token") else name
        for answer in reversed(self.answers):
            found = _find(answer, key)
            if found is not None:
                return str(found)
        pytest.fail(f"no earlier answer has a {key!r} for <{name}>")

    def code(self) -> str:
        deadline = time.monotonic() + 10  # the fakes print what they received a moment later
        self.read_fakes()
        while not self.sms and self.fakes is not None and time.monotonic() < deadline:
            time.sleep(0.1)
            self.read_fakes()
        assert self.sms, "<code> before any SMS was sent"
        found = _CODE.search(self.sms[-1])
        assert found, f"no code in the newest SMS: {self.sms[-1]!r}"
        return found.group(1)

    def saw(self, answer: Any) -> None:
        self.answers.append(answer)
        if isinstance(answer, dict) and isinstance(answer.get("messages"), list) and answer["messages"]:
            self.sms.append(str(answer["messages"][-1].get("body", "")))


def _find(document: Any, key: str) -> Any:
    if isinstance(document, dict):
        if key in document:
            return document[key]
        children: Any = document.values()
    elif isinstance(document, list):
        children = document
    else:
        return None
    for child in children:
        found = _find(child, key)
        if found is not None:
            return found
    return None


def check_answer(command: Command, status: int, output: str, shell: Shell) -> Any:
    assert status == 0, f"exit status {status} of:\n{command.text}\n{shell.errors()}"
    if not output.strip():
        assert not command.documented, f"no answer to:\n{command.text}\nthe README shows {command.expected}"
        return None
    try:
        answer = json.loads(output)
    except ValueError:
        pytest.fail(f"not JSON: {output[:500]!r}\nfrom:\n{command.text}")
    if isinstance(answer, dict):
        problem = isinstance(answer.get("status"), int) and answer["status"] >= 400
        # An error is an answer only where the README shows that very error (the fraud guard's refusal).
        shown = (
            command.documented
            and isinstance(command.expected, dict)
            and command.expected.get("status") == answer.get("status")
        )
        assert (shown or not problem) and set(answer) != {"message"}, f"error answer {answer}\nto:\n{command.text}"
    if command.documented:
        assert_shows(command.expected, answer, command.text)
    return answer


def assert_shows(expected: Any, actual: Any, where: str) -> None:
    """``actual`` has what the README shows: every key, and every value not elided or a placeholder."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}\nREADME shows an object, got {actual!r}"
        missing = set(expected) - set(actual)
        assert not missing, f"{where}\nanswer lacks {sorted(missing)} the README shows: {actual}"
        for key, value in expected.items():
            assert_shows(value, actual[key], f"{where}\n  .{key}")
    elif isinstance(expected, list):
        if all(not isinstance(item, (dict, list)) for item in expected):
            assert actual == expected, f"{where}\nREADME shows {expected!r}, got {actual!r}"
    elif isinstance(expected, str) and ("…" in expected or _PLACEHOLDER.search(expected)):
        return
    else:
        assert actual == expected, f"{where}\nREADME shows {expected!r}, got {actual!r}"


def assert_clean_console(log: str, where: Walkthrough) -> None:
    problems = [
        line
        for line in log.splitlines()
        if DENIAL_MARKER in line or EMPTY_METRICS_WARNING in line or "local gateway:" in line or "Traceback" in line
    ]
    assert not problems, f"{where}: the local stack's console shows\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------------ tests

WALKTHROUGHS = walkthroughs(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def environment() -> Iterator[dict[str, str]]:
    if os.environ.get("API_URL"):
        pytest.skip("the walk-throughs use the local stack's outbox and IdP")
    with pytest.MonkeyPatch.context() as patch:
        for name in _MAKE_VARIABLES:
            patch.delenv(name, raising=False)
        # The walk-throughs send this key; a developer's OTP_LOCAL_API_KEY must not change it.
        patch.setenv("OTP_LOCAL_API_KEY", LOCAL_API_KEY)
        yield reader_environment()


@pytest.fixture(scope="module")
def readme_stack(environment: dict[str, str]) -> Iterator[LocalStackProcess]:
    """``make run`` with the defaults a reader has: one stack for every walk-through without its own."""
    with spawn_local_stack(api_key=LOCAL_API_KEY, command=["make", "run"], timeout=SERVER_TIMEOUT) as stack:
        yield stack


def test_the_readme_has_its_walkthroughs() -> None:
    titles = [walkthrough.title for walkthrough in WALKTHROUGHS]

    assert len(titles) >= 5, titles
    assert all(walkthrough.commands for walkthrough in WALKTHROUGHS)
    assert any(command.server for walkthrough in WALKTHROUGHS for command in walkthrough.commands)


@pytest.mark.parametrize("walkthrough", WALKTHROUGHS, ids=str)
def test_walkthrough_runs_as_printed(
    walkthrough: Walkthrough, environment: dict[str, str], request: pytest.FixtureRequest
) -> None:
    # Given a reader with a stack: its own when the walk-through starts one, else the shared `make run`
    own_stack = any(command.server and command.server[1] == "run" for command in walkthrough.commands)
    stack: LocalStackProcess | None = None if own_stack else request.getfixturevalue("readme_stack")
    reader = Reader()
    with contextlib.ExitStack() as servers:
        shell: Shell | None = None
        seen = len(stack.log()) if stack else 0
        # When every command runs as printed, in order
        for command in walkthrough.commands:
            server = command.server
            if server is not None:
                variables, kind = server
                filled = {name: reader.fill(value) for name, value in variables.items()}
                if kind == "vendors":
                    reader.fakes, reader.endpoints = servers.enter_context(vendors({**environment, **filled}))
                else:
                    stack = servers.enter_context(
                        spawn_local_stack(
                            api_key=LOCAL_API_KEY,
                            env=filled,
                            command=["make", "run"],
                            timeout=SERVER_TIMEOUT,
                        )
                    )
                continue
            if shell is None:
                assert stack is not None, f"{walkthrough}: a command before its make run"
                shell = Shell({**environment, "PORT": stack.url.rsplit(":", 1)[-1]})
                servers.callback(shell.close)
            status, output = shell.run(reader.fill(command.text))
            reader.saw(check_answer(command, status, output, shell))
            reader.read_fakes()

        # Then every answer was a success, as the README shows it, and the stack's console is clean
        assert stack is not None
        assert_clean_console(stack.log()[seen:], walkthrough)
