"""Peak memory of a warm invocation: each function in its own fresh interpreter, against the local services."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from local.bench.calls import EventPair
from local.bench.coldstart import LAMBDA, ProbeJob, run_probe
from local.bench.workspace import Workspace, lambda_env
from local.template import Template


@dataclass(frozen=True)
class MemoryUse:
    """Peak RSS in KB after import and after each invocation, the answers, and the configured MemorySize."""

    logical_id: str
    events: str
    memory_size_mb: int
    rss_after_import_kb: int
    rss_after_kb: list[int]
    statuses: list[str]

    @property
    def peak_kb(self) -> int:
        return max([self.rss_after_import_kb, *self.rss_after_kb])

    @property
    def headroom_mb(self) -> float:
        return self.memory_size_mb - self.peak_kb / 1024


def measure(
    workspace: Workspace,
    template: Template,
    environment: Mapping[str, str],
    events: Mapping[str, EventPair],
    progress: Callable[[str], None] = print,
) -> list[MemoryUse]:
    """Import each function's handler and invoke it twice (Lambda-like environment); ``events`` by folder."""
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        root = Path(scratch)
        for logical_id, directory in workspace.functions.items():
            function = template.functions[logical_id]
            if function.folder not in events:
                progress(f"memory: {logical_id} has no route and no events/{function.folder}.json; skipped")
                continue
            progress(f"memory: {logical_id}")
            config = root / f"{logical_id}.json"
            config.write_text(
                json.dumps(
                    {
                        "events": events[function.folder].events,
                        "function_name": f"bench-{logical_id}",
                        "memory_size": function.memory_size,
                    }
                ),
                encoding="utf-8",
            )
            env = lambda_env(environment, memory_size=function.memory_size, task_root=directory, home=root)
            job = ProbeJob(logical_id, LAMBDA, [directory, workspace.layer], env)
            result = run_probe(workspace, job, root, config=config)
            results.append(
                MemoryUse(
                    logical_id=logical_id,
                    events=events[function.folder].source,
                    memory_size_mb=function.memory_size,
                    rss_after_import_kb=int(result["rss_after_import_kb"]),
                    rss_after_kb=[int(value) for value in result["rss_after_kb"]],
                    statuses=[str(status) for status in result["statuses"]],
                )
            )
    return results
