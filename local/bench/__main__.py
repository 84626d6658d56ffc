"""``python -m local.bench``: measure the built functions and print the Markdown report (see the package doc).

Progress goes to stderr; the report goes to stdout and to ``.aws-sam/bench.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from local.bench import calls, coldstart, fraud, memory, sizes
from local.bench.report import BenchReport, render
from local.bench.workspace import (
    AWS_SAM,
    built_function_dirs,
    built_layer_dir,
    find_python,
    prepare,
    unbuilt_functions,
)
from local.template import DEFAULT_TEMPLATE, Template


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per cold-start median (15)")
    parser.add_argument(
        "--lambda-runs", type=int, default=5, help="the same for the Lambda-like mode (5: it keeps the run short)"
    )
    parser.add_argument("--python", help="the python3.13 to measure with (default: PATH, then pyenv)")
    parser.add_argument("--output", type=Path, default=AWS_SAM / "bench.md", help="where the report is written")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.lambda_runs < 1:
        parser.error("--runs and --lambda-runs must be at least 1")

    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    template = Template.load(DEFAULT_TEMPLATE)
    python = find_python(args.python)
    _progress(f"python {python.version} ({python.machine}) at {python.path}")

    phases: dict[str, float] = {}
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = now - mark
        mark = now

    _progress("sizes: zipping the build output")
    layer_dir = built_layer_dir(template)
    function_sizes = [sizes.package_size(name, path) for name, path in built_function_dirs(template).items()]
    layer_size = sizes.package_size(layer_dir.parent.name, layer_dir.parent, group_under=layer_dir.name)

    phase("sizes")
    _progress("preparing precompiled copies of the functions and the layer")
    workspace = prepare(template, python)
    phase("copies")

    cold = coldstart.measure(
        workspace, template, {coldstart.LOCAL: args.runs, coldstart.LAMBDA: args.lambda_runs}, _progress
    )
    worst = cold.worst(coldstart.LOCAL)
    _progress(f"cold start: importtime profile and no-.pyc runs of {worst}")
    profiles = [coldstart.profile_imports(workspace, template, worst, mode) for mode in coldstart.MODES]
    no_pyc = coldstart.measure_without_pyc(workspace, template, worst)
    phase("cold start")

    # The in-process part runs the handlers from the source tree, as the tests do.
    with calls.start_lab(template) as lab:
        phase("services")
        results = calls.run_scenarios(lab, _progress)
        phase("AWS calls")
        simulation = fraud.run(lab, _progress)
        phase("fraud guard")
        events = calls.memory_events(lab)
        memory_use = memory.measure(workspace, template, lab.environment, events, _progress)
        phase("memory")

    report = BenchReport(
        started=started_at,
        seconds=time.monotonic() - started,
        phases=phases,
        load=(load_at_start, os.getloadavg()[0]),
        machine=platform.machine(),
        cpus=os.cpu_count() or 1,
        python=f"python {python.version} ({python.path})",
        layer_source=workspace.layer_source,
        cold=cold,
        profiles=profiles,
        no_pyc_function=worst,
        no_pyc_ms=no_pyc,
        calls=results,
        uses_dynamodb_local=lab.uses_dynamodb_local,
        functions=function_sizes,
        layer=layer_size,
        layer_pyc_bytes=sizes.pycache_size(workspace.layer),
        built_layer_pyc_bytes=sizes.pycache_size(layer_dir),
        memory=memory_use,
        fraud=simulation,
        unbuilt=unbuilt_functions(template),
    )
    text = render(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(text, end="")
    _progress(f"report written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
