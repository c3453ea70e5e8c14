"""JS helper build sizes: raw, minified and min+gzip, for each build (the budgets in docs/js.md).

Uses js/scripts/size.js (esbuild, the builds exactly as shipped) for the minified
figures, and gzips each file in js/dist as published.

    .venv/bin/python -m bench.js_sizes
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from typing import Any

from bench.common import ROOT, save, table

JS = ROOT / "js"


def main() -> dict[str, Any]:
    if not (JS / "package.json").exists():
        text = "### JS build sizes\n\njs/ does not exist in this checkout: nothing to measure.\n"
        print(text)
        save("js_sizes", {}, text)
        return {}
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed (make js-test installs the JS toolchain)")
    if not (JS / "node_modules").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=600)
    subprocess.run([npm, "run", "--silent", "build"], cwd=JS, check=True, timeout=300)
    out = subprocess.run(
        ["node", "scripts/size.js"], cwd=JS, capture_output=True, text=True, timeout=300, check=False
    ).stdout
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    for line in out.splitlines():
        match = re.match(
            r"(ok|OVER)\s+(\w+): (\d+) B min, (\d+) B min\+gzip \(budget (\d+) B\)", line.strip()
        )
        if match:
            verdict, name, minified, zipped, budget = match.groups()
            rows.append(
                [f"{name} (bundled, minified)", "-", int(minified), int(zipped), int(budget), verdict]
            )
            data[name] = {"min": int(minified), "min_gzip": int(zipped), "budget": int(budget)}
    for path in sorted((JS / "dist").glob("*.js")):
        raw = path.read_bytes()
        rows.append([f"dist/{path.name} (as published)", len(raw), "-", len(gzip.compress(raw, 9)), "-", "-"])
        data[path.name] = {"raw": len(raw), "gzip": len(gzip.compress(raw, 9))}
    text = table(
        "JS build sizes (bytes)", ["build", "raw", "min", "min+gzip / gzip", "budget", "check"], rows
    )
    save("js_sizes", data, text)
    return data


if __name__ == "__main__":
    main()
