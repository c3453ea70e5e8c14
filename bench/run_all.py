"""Run every benchmark in turn (``make bench``) and collect the tables in bench/results/summary.md.

    .venv/bin/python -m bench.run_all [--quick]

``--quick`` shrinks every benchmark (a smoke run, minutes less; not for publishing).
"""

from __future__ import annotations

import argparse
import json
import time

from bench import drain, inprocess, js_sizes, propagation, throughput
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
    propagation.main(["--bumps", "5"] if quick else [])
    drain.main(["--sockets", "500", "--window", "3"] if quick else [])
    throughput.main(["--rounds", "1", "--seconds", "1"] if quick else [])
    parts = [f"# Benchmark run\n\n```json\n{json.dumps(info, indent=2)}\n```\n"]
    for name in ("js_sizes", "inprocess", "propagation", "drain", "throughput"):
        parts.append((RESULTS / f"{name}.md").read_text())
    parts.append(f"Total time: {time.monotonic() - started:.0f} s\n")
    (RESULTS / "summary.md").write_text("\n".join(parts))
    print(f"wrote {RESULTS / 'summary.md'}", flush=True)


if __name__ == "__main__":
    main()
