"""Cold start: ``import app`` in fresh interpreters, per function, against a boto3 baseline."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from local.bench.analysis import ImportTime, direct_imports, median, parse_importtime, ratio, top
from local.bench.workspace import REGION, Workspace, lambda_env
from local.services import resolve_environment
from local.template import Resolver, Template

PROBE: Final = Path(__file__).with_name("probe.py")
LOCAL: Final = "local"
LAMBDA: Final = "lambda"
MODES: Final = (LOCAL, LAMBDA)
PROBE_TIMEOUT: Final = 120.0


@dataclass
class ColdStarts:
    """Milliseconds of every kept run: ``functions[logical_id][mode]`` and the ``baseline``."""

    baseline: list[float] = field(default_factory=list)
    functions: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)

    def median(self, logical_id: str, mode: str) -> float:
        return median(self.functions[logical_id][mode])

    def ratio(self, logical_id: str, mode: str) -> float:
        return ratio(self.median(logical_id, mode), median(self.baseline))

    def worst(self, mode: str = LOCAL) -> str:
        return max(self.functions, key=lambda logical_id: self.median(logical_id, mode))


@dataclass(frozen=True)
class ImportProfile:
    """``-X importtime`` of one function's import: its direct imports and the slowest modules by self time."""

    logical_id: str
    mode: str
    total_us: int
    direct: list[ImportTime]
    by_self: list[ImportTime]


def template_environment(template: Template) -> dict[str, str]:
    """The functions' variables resolved without any service (resource names are placeholders).

    The core reads its settings lazily, so the values only have to exist, not to point anywhere.
    """
    return resolve_environment(template, Resolver(template, environ={}, region=REGION), {})


@dataclass(frozen=True)
class ProbeJob:
    """One kind of probe run: a function's import in a mode, or the baseline (``function`` None)."""

    function: str | None
    mode: str
    path: list[Path]
    env: dict[str, str]


def measure(
    workspace: Workspace,
    template: Template,
    runs: Mapping[str, int],
    progress: Callable[[str], None] = print,
) -> ColdStarts:
    """Interleaved rounds: ``runs[mode]`` kept imports per function and mode, the baseline in every round.

    A discarded warm-up (the baseline and one function per mode) first reads the layer into the page cache,
    so the first measured round is not the only one paying for disk reads. Every function shares those files.
    """
    results = ColdStarts(functions={logical_id: {mode: [] for mode in MODES} for logical_id in workspace.functions})
    results.runs = dict(runs)
    rounds = max(runs.values())
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
        jobs = _jobs(workspace, template, Path(scratch))
        warm_up = [jobs[0], *(next(job for job in jobs if job.mode == mode and job.function) for mode in MODES)]
        progress("cold start: warm-up (discarded)")
        for job in warm_up:
            run_probe(workspace, job, Path(scratch))
        for round_number in range(1, rounds + 1):
            progress(f"cold start: round {round_number}/{rounds}")
            wanted = [job for job in jobs if job.function is None or round_number <= runs[job.mode]]
            # Rotate the order so no function always runs right after the same neighbour.
            shift = round_number % len(wanted)
            for job in wanted[shift:] + wanted[:shift]:
                ms = float(run_probe(workspace, job, Path(scratch))["ms"])
                if job.function is None:
                    results.baseline.append(ms)
                else:
                    results.functions[job.function][job.mode].append(ms)
    return results


def _jobs(workspace: Workspace, template: Template, home: Path) -> list[ProbeJob]:
    baseline_env = lambda_env({}, memory_size=128, task_root=None, home=home)
    jobs = [ProbeJob(None, LOCAL, [workspace.layer], baseline_env)]
    for logical_id, directory in workspace.functions.items():
        jobs.extend(_job(workspace, template, logical_id, mode, home, directory) for mode in MODES)
    return jobs


def _job(workspace: Workspace, template: Template, logical_id: str, mode: str, home: Path, directory: Path) -> ProbeJob:
    memory = template.functions[logical_id].memory_size
    task_root = directory if mode == LAMBDA else None
    env = lambda_env(template_environment(template), memory_size=memory, task_root=task_root, home=home)
    return ProbeJob(logical_id, mode, [directory, workspace.layer], env)


def run_probe(
    workspace: Workspace,
    job: ProbeJob,
    scratch: Path,
    *,
    flags: Sequence[str] = (),
    path: Sequence[Path] | None = None,
    config: Path | None = None,
    keep_log: bool = False,
) -> dict[str, Any]:
    """Run probe.py once in a fresh interpreter and return its JSON result."""
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        out = Path(work) / "result.json"
        log = Path(work) / "output.log"
        probe_mode = "invoke" if config else ("baseline" if job.function is None else "import")
        search = ":".join(str(entry) for entry in (path or job.path))
        command = [str(workspace.python.path), "-I", "-S", *flags, str(PROBE), probe_mode, str(out), search]
        if config:
            command.append(str(config))
        with log.open("wb") as output:
            completed = subprocess.run(  # noqa: S603 - the measured python3.13 on our own probe script
                command, cwd=work, env=job.env, stdout=output, stderr=subprocess.STDOUT, timeout=PROBE_TIMEOUT
            )
        if completed.returncode != 0 or not out.is_file():
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{job.function or 'baseline'} probe failed ({completed.returncode}):\n{tail}")
        result: dict[str, Any] = json.loads(out.read_text())
        if keep_log:
            result["log"] = log.read_text(errors="replace")
        return result


def profile_imports(workspace: Workspace, template: Template, logical_id: str, mode: str) -> ImportProfile:
    """One ``-X importtime`` run of a function's import: what it imports directly, and what is slow itself."""
    with tempfile.TemporaryDirectory(prefix="bench-importtime-") as scratch:
        job = _job(workspace, template, logical_id, mode, Path(scratch), workspace.functions[logical_id])
        output = run_probe(workspace, job, Path(scratch), flags=("-X", "importtime"), keep_log=True)["log"]
    lines = parse_importtime(output)
    app = next((line for line in lines if line.level == 0 and line.module == "app"), None)
    return ImportProfile(
        logical_id=logical_id,
        mode=mode,
        total_us=app.cumulative_us if app else 0,
        direct=top(direct_imports(lines, "app"), 5),
        by_self=top(lines, 5, by="self"),
    )


def measure_without_pyc(workspace: Workspace, template: Template, logical_id: str, runs: int = 3) -> list[float]:
    """Import times of one function when no ``.pyc`` exists for it or its layer (as ``sam build`` ships them).

    Lambda's code directories are read-only, so nothing compiled at one cold start survives to the next. The
    copies are symlink trees without ``__pycache__`` and ``-B`` keeps Python from writing any; the standard
    library keeps its ``.pyc``, as Lambda's runtime does.
    """
    with tempfile.TemporaryDirectory(prefix="bench-nopyc-") as scratch:
        root = Path(scratch)
        function = _mirror(workspace.functions[logical_id], root / "task")
        layer = _mirror(workspace.layer, root / "opt" / "python")
        job = _job(workspace, template, logical_id, LOCAL, root, function)
        return [
            float(run_probe(workspace, job, root, flags=("-B",), path=[function, layer])["ms"]) for _ in range(runs)
        ]


def _mirror(source: Path, target: Path) -> Path:
    def link(src: str, dst: str) -> None:
        Path(dst).symlink_to(src)

    shutil.copytree(source, target, copy_function=link, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target
