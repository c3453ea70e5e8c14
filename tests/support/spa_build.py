"""A real code-split frontend build, made with esbuild from js/node_modules.

`build_spa` writes a tiny app (an entry, two lazy routes, one module both share) and
bundles it the way Vite and webpack do: ES modules, code splitting, content hashes in
every name (``assets/main-HASH.js``, ``assets/lazy-a-HASH.js``, ``assets/chunk-HASH.js``),
plus the HTML shell ``index.html``. Each *version* changes every module's text, so every
hash changes too. ``make test`` installs esbuild (``npm ci`` in js/) before pytest runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import ROOT

ESBUILD = ROOT / "js" / "node_modules" / ".bin" / "esbuild"

SHELL = """<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>assets {version}</title>
  <!-- spa-version-meta -->
  <script src="/__spa-version.js"></script>
  <script type="module" src="/{entry}"></script>
</head>
<body>
  <h1 id="version">-</h1>
  <button id="load-a">a</button> <button id="load-b">b</button>
  <p id="out"></p>
</body>
</html>
"""

SOURCES = {
    "shared.js": (
        'export const VERSION = "{version}";\nexport const stamp = (name) => `${{name}} ${{VERSION}}`;\n'
    ),
    "main.js": (
        'import {{ stamp }} from "./shared.js";\n'
        'document.getElementById("version").textContent = stamp("main");\n'
        "// An async listener: a failed import() becomes an unhandled rejection, which the\n"
        "// JS helper's watchChunks() sees (docs/js.md).\n"
        "for (const name of ['a', 'b']) {{\n"
        "  document.getElementById(`load-${{name}}`).addEventListener('click', async () => {{\n"
        "    const module = name === 'a' ? await import('./lazy-a.js') : await import('./lazy-b.js');\n"
        "    document.getElementById('out').textContent = module.text;\n"
        "  }});\n"
        "}}\n"
    ),
    "lazy-a.js": 'import {{ stamp }} from "./shared.js";\nexport const text = stamp("lazy-a");\n',
    "lazy-b.js": 'import {{ stamp }} from "./shared.js";\nexport const text = stamp("lazy-b");\n',
}


@dataclass(frozen=True)
class Build:
    """One build: its directory, and its files' paths relative to it."""

    root: Path
    version: str
    entry: str
    lazy_a: str
    lazy_b: str

    def files(self) -> dict[str, str]:
        """Every file of the build: relative path -> SHA-256 (hex)."""
        return {
            p.relative_to(self.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }


def build_spa(workdir: Path, version: str, *, big_bytes: int = 0) -> Build:
    """Bundle the app of *version* into ``workdir/build-VERSION`` with esbuild. With
    *big_bytes*, the build also has an ``assets/big-HASH.bin`` of that size."""
    if not ESBUILD.exists():
        pytest.fail(f"{ESBUILD} is missing: run `cd js && npm ci` (make test does)")
    src = workdir / f"src-{version}"
    src.mkdir(parents=True)
    for name, text in SOURCES.items():
        (src / name).write_text(text.format(version=version))
    out = workdir / f"build-{version}"
    meta = workdir / f"meta-{version}.json"
    subprocess.run(
        [
            str(ESBUILD), "main.js", "--bundle", "--splitting", "--format=esm",
            f"--outdir={out / 'assets'}", "--entry-names=[name]-[hash]", "--chunk-names=[name]-[hash]",
            f"--metafile={meta}", "--log-level=warning",
        ],
        cwd=src, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    outputs = json.loads(meta.read_text())["outputs"]
    by_entry: dict[str, str] = {}
    for path, info in outputs.items():
        rel = (src / path).resolve().relative_to(out.resolve()).as_posix()
        if "entryPoint" in info:
            by_entry[Path(info["entryPoint"]).name] = rel
    build = Build(out, version, by_entry["main.js"], by_entry["lazy-a.js"], by_entry["lazy-b.js"])
    (out / "index.html").write_text(SHELL.format(version=version, entry=build.entry))
    if big_bytes:
        data = os.urandom(big_bytes)
        (out / "assets" / f"big-{hashlib.sha256(data).hexdigest()[:8]}.bin").write_bytes(data)
    return build
