"""Run every benchmark in turn (``make bench``) and collect the tables in bench/results/summary.md.

    .venv/bin/python -m bench.run_all [--quick]

``--quick`` shrinks every benchmark (a smoke run, minutes less; not for publishing): among
others the tab's quiet minute becomes 10 s and the fan-out's file store runs 16 processes.
"""

from __future__ import annotations

import argparse
import json
import time

from bench import django_bench, drain, fanout, inprocess, js_sizes, memory, propagation, tab, throughput
from bench.common import RESULTS, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    started = time.monotonic()
    info = machine()
    print(f"# spa-version benchmarks\n\n{json.dumps(info, indent=2)}\n", flush=True)
    js_sizes.main()
    inprocess.main(["--requests", "5000", "--rounds", "3"] if quick else [])
    django_bench.main(
        ["--rounds", "3", "--requests", "500", "--layer-rounds", "10", "--calls", "500", "--wrk-rounds", "1"]
        if quick
        else []
    )
    propagation.main(["--bumps", "5"] if quick else [])
    fanout_quick = ["--bumps", "5", "--idle", "3", "--file-processes", "16", "--file-bumps", "3"]
    fanout.main(fanout_quick if quick else [])
    drain.main(["--sockets", "500", "--window", "3"] if quick else [])
    memory.main(["--websockets", "1000"] if quick else [])
    tab.main(["--quiet", "10", "--rounds", "4", "--calls", "50"] if quick else [])
    throughput.main(["--rounds", "1", "--seconds", "1"] if quick else [])
    parts = [f"# Benchmark run\n\n```json\n{json.dumps(info, indent=2)}\n```\n"]
    for name in ("js_sizes", "inprocess", "django", "propagation", "fanout", "drain", "memory", "tab"):
        parts.append((RESULTS / f"{name}.md").read_text())
    parts.append((RESULTS / "throughput.md").read_text())
    total = time.monotonic() - started
    parts.append(f"Total time: {total:.0f} s\n")
    (RESULTS / "run.json").write_text(
        json.dumps({**info, "quick": quick, "total_seconds": round(total)}, indent=2) + "\n"
    )
    (RESULTS / "summary.md").write_text("\n".join(parts))
    print(f"wrote {RESULTS / 'summary.md'}", flush=True)


if __name__ == "__main__":
    main()
