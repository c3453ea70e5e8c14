"""Copy the last run's tables and headline figures into docs/benchmarks.md.

    .venv/bin/python -m bench.embed

- A block ``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->`` is replaced by
  bench/results/NAME.md as the run wrote it.
- An inline ``<!--fig:KEY-->`` ... ``<!--/fig-->`` is replaced by figure KEY, computed
  from the run's JSON (`figures`).

So the doc's numbers for the run are the run's own output, never retyped. It refuses a
``--quick`` run.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT

DOC = ROOT / "docs" / "benchmarks.md"
BLOCK = re.compile(r"(<!-- bench:(\w+) -->\n).*?(<!-- /bench:\2 -->)", re.S)
FIG = re.compile(r"(<!--fig:(\w+)-->).*?(<!--/fig-->)", re.S)


def load(name: str) -> Any:
    return json.loads((RESULTS / f"{name}.json").read_text())


def median(values: list[float]) -> float:
    return statistics.median(values)


def middle_half(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def profile_excerpt(text: str, lines: int = 40) -> str:
    """The first call tree of a pyinstrument text profile, without its banner, at most *lines* long."""
    tree = text.split("Profile at ", 1)[1].split("\n", 1)[1].strip("\n").split("\n\n\n")[0]
    kept = tree.split("\n")
    return "\n".join(kept[:lines] + (["..."] if len(kept) > lines else []))


def figures() -> dict[str, str]:
    run = load("run")
    django, fanout, memory, tab = load("django"), load("fanout"), load("memory"), load("tab")
    out: dict[str, str] = {
        "run_total": f"{run['total_seconds']}",
        "run_start": run["date_utc"],
        "run_commit": run.get("commit", "unknown"),
        "run_load": f"{run['load_avg_at_start'][0]:.2f}",
    }
    # Django in process: ours minus the floor, per round, median (µs).
    diff: dict[str, float] = {}
    for kind, key in (("layer (sync)", "sync"), ("layer (async)", "async"), ("WSGIHandler", "wsgi")):
        per = django["in_process_us"][kind]
        d = [o - f for o, f in zip(per["ours"], per["floor"], strict=True)]
        diff[key] = median(d)
        out[f"dj_{key}"] = f"{median(d):+.2f} µs"
        out[f"dj_{key}_half"] = "{:+.2f} to {:+.2f} µs".format(*middle_half(d))
        out[f"dj_{key}_floor"] = f"{median(per['floor']):.1f} µs"
        cors = [c - f for c, f in zip(per["cors"], per["floor"], strict=True)]
        out[f"dj_{key}_cors"] = f"{median(cors):+.1f} µs"
        out[f"dj_{key}_fastest"] = f"{min(per['ours']) - min(per['floor']):+.2f} µs"
    out["dj_layer_verdict"] = "met" if diff["sync"] <= 1 and diff["async"] <= 1 else "**missed**, see Django"
    steps = dict(django["in_process_us"]["breakdown"])
    response = steps["- of which HttpResponse() itself"]
    # Each step's row (bench.django_bench.breakdown); a stamp row creates its response too.
    for name, key, less in (
        ("SERVING.stamping: the settings' host at its version, one attribute read", "dj_step_serving", 0.0),
        ("stamping.stamp(HttpResponse()): text/plain, as the view's", "dj_step_stamp", response),
        ("stamping.stamp() on an HTML document (the Server-Timing metric too)", "dj_step_html", response),
        ("- of which looking for Access-Control-Allow-Origin: response.headers.pop()", "dj_step_pop", 0.0),
        ("(not used: 'Access-Control-Allow-Origin' in headers, a raised KeyError)", "dj_step_acao", 0.0),
        ("the floor: response.headers[name] = value", "dj_step_floor", 0.0),
    ):
        out[key] = f"{steps[name] - less:.2f} µs"
    # Django throughput: ours / floor per round.
    verdicts = []
    for server in ("gunicorn", "uvicorn"):
        per = django["throughput"][server]
        ratios = [o["rps"] / f["rps"] for o, f in zip(per["ours"], per["floor"], strict=True)]
        low, high = middle_half(ratios)
        out[f"dj_tp_{server}"] = f"{median(ratios):.3f}×"
        out[f"dj_tp_{server}_half"] = f"{low:.3f}-{high:.3f}"
        cors = [c["rps"] / f["rps"] for c, f in zip(per["cors"], per["floor"], strict=True)]
        out[f"dj_tp_{server}_cors"] = f"{median(cors):.3f}×"
        verdicts.append(low <= 1.0 <= high)
    out["dj_tp_verdict"] = "met" if all(verdicts) else "**missed**, see Django"
    # Fan-out.
    for r in fanout["results"]:
        key = f"fan_redis_{r['listeners']}" if r["store"] == "redis" else "fan_file"
        bumps = r["per_bump_ms"]
        out[f"{key}_p50"] = f"{median(bumps):.1f} ms"
        out[f"{key}_p99"] = f"{percentile(bumps, 99):.1f} ms"
        out[f"{key}_max"] = f"{max(bumps):.1f} ms"
        out[f"{key}_first"] = f"{r['first_in_process_ms_p50']:.1f} ms"
        out[f"{key}_client_cpu"] = f"{r['bump_client_cpu_us_per_listener']:.0f} µs"
        if r["store"] == "redis":
            out[f"{key}_redis_cpu"] = f"{r['bump_redis_cpu_us_per_listener']:.1f} µs"
            out[f"{key}_redis_mem"] = f"{r['redis_memory_per_listener_bytes'] / 1024:.0f} KiB"
            if r["listeners"] >= 1000:
                p99 = percentile(bumps, 99)
                out["fan_verdict"] = "met" if p99 < 50 else "**missed**, see Fan-out"
                redis_ms = r["bump_redis_cpu_us_per_listener"] * r["listeners"] / 1000
                out["fan_redis_total_ms"] = f"{redis_ms:.1f} ms"
                out["fan_client_total_ms"] = (
                    f"{r['bump_client_cpu_us_per_listener'] * r['listeners'] / 1000:.0f} ms"
                )
    # Memory.
    rss = memory["rss_bytes"]
    mib = 1024 * 1024
    out["mem_idle"] = f"{(rss['drain']['idle'] - rss['bare']['idle']) / mib:+.1f} MiB"
    out["mem_after"] = f"{(rss['drain']['settled'] - rss['bare']['settled']) / mib:+.1f} MiB"
    growth = (rss["drain"]["settled"] - rss["drain"]["idle"]) - (rss["bare"]["settled"] - rss["bare"]["idle"])
    out["mem_growth"] = f"{growth / 1024:+,.0f} KiB"
    out["mem_bare_growth"] = f"{(rss['bare']['settled'] - rss['bare']['idle']) / mib:.1f} MiB"
    out["mem_websockets"] = f"{memory['args']['websockets']:,}"
    # The tab.
    tabs = tab["tabs"]
    out["tab_quiet_s"] = f"{tab['args']['quiet']:g}"
    for build in ("script", "npm"):
        t = tabs[build]
        out[f"tab_{build}_quiet"] = str(len(t["requests_while_quiet"]))
        out[f"tab_{build}_cycles"] = " / ".join(str(len(c)) for c in t["requests_per_hide_show_cycle"])
        heap = t["js_heap_used_bytes"] - tabs["none"]["js_heap_used_bytes"]
        out[f"tab_{build}_heap"] = f"{heap / 1024:+.0f} KiB"
        for mode in ("network", "instant"):
            f = tab["fetch"][build][mode]
            d = [w - r for w, r in zip(f["wrapped_us"], f["raw_us"], strict=True)]
            out[f"tab_{build}_{mode}"] = f"{f['added_us_median']:+.1f} µs"
            out[f"tab_{build}_{mode}_half"] = "{:+.0f} to {:+.0f} µs".format(*middle_half(d))
            out[f"tab_{build}_{mode}_raw"] = f"{f['raw_us_median']:,.0f} µs"
    out["chromium"] = tab["chromium"]
    # The ASGI benchmarks, re-measured in the same run.
    ratios = load("throughput")["ratios"]
    out["asgi_tp_ours"] = f"{median(ratios['ours']):.3f}×"
    out["asgi_tp_wrap"] = f"{median(ratios['wrap']):.3f}×"
    per = load("inprocess")["per_request_us"]
    for variant in ("ours", "wrap"):
        added = [x - b for x, b in zip(per[variant], per["bare"], strict=True)]
        out[f"asgi_in_{variant}"] = f"{median(added):.2f} µs"
    out["asgi_prop"] = f"{percentile(load('propagation')['latencies_ms']['redis'], 99):.1f} ms"
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DOC, help="write here instead (a trial)")
    parser.add_argument("--allow-quick", action="store_true", help="accept a --quick run (a trial)")
    args = parser.parse_args(argv)
    run = load("run")
    if run.get("quick") and not args.allow_quick:
        raise SystemExit("the last run was --quick: not for publishing")
    text = DOC.read_text()
    names: list[str] = []
    values = figures()

    def fill(match: re.Match[str]) -> str:
        names.append(match.group(2))
        name = match.group(2).replace("_", "-") if match.group(2).startswith("profile") else match.group(2)
        if name.startswith("profile"):
            body = "```\n" + profile_excerpt((RESULTS / f"{name}.txt").read_text()) + "\n```"
        else:
            body = (RESULTS / f"{name}.md").read_text().replace("### ", "#### ").strip()
        return f"{match.group(1)}{body}\n{match.group(3)}"

    def fig(match: re.Match[str]) -> str:
        return f"{match.group(1)}{values[match.group(2)]}{match.group(3)}"

    text = FIG.sub(fig, BLOCK.sub(fill, text))
    args.out.write_text(text)
    print(f"embedded {', '.join(names) or 'no tables'} and {len(FIG.findall(text))} figures into {args.out}")


if __name__ == "__main__":
    main()
