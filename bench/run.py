"""Run every bench/bench_*.py and rewrite bench/RESULTS.md with the figures.

Each benchmark module has ``TITLE`` and ``run(repeats=, log=)`` returning rows of
(figure, ours, baseline, better) measured in the same run, the ratio, target checks and notes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"


def _fmt(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _ratio(ours: float, base: float) -> str:
    if not base:
        return "–"
    return f"{ours / base:.2f}"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        cpu = model
    except (OSError, StopIteration):
        pass
    try:
        pg = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "show server_version"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except OSError:
        pg = "?"
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"PostgreSQL {pg or '?'}, {platform.system()} {platform.release()}"
    )


def _kept_sections(titles: set[str]) -> dict[str, str]:
    """Sections of the current RESULTS.md by title, except those being measured again."""
    if not RESULTS.exists():
        return {}
    kept, title, lines = {}, None, []
    for line in [*RESULTS.read_text().splitlines(), "## "]:
        if line.startswith("## "):
            if title is not None and title not in titles:
                kept[title] = "\n".join(lines).rstrip() + "\n"
            title, lines = line[3:], [line]
        elif title is not None:
            lines.append(line)
    return kept


def render(sections: list[tuple[str, dict]], repeats: int, kept: dict[str, str]) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (bench/run.py) on {now}: {_machine()}.",
        "Every figure is the median of the runs its section states (this time"
        f" {repeats}); the baseline is measured in the same run on the same machine. The app"
        " and the load generator share the machine.",
        "",
    ]
    if kept:
        names = ", ".join(f'"{title}"' for title, _ in sections)
        out[-1:] = [
            f"Measured in this run: {names}. The other sections are kept as an earlier run"
            " wrote them (their own notes say when and how many runs).",
            "",
        ]
    out += list(kept.values())
    for title, res in sections:
        out += [
            f"## {title}",
            "",
            "| Figure | Ours | Baseline | Ours / baseline |",
            "|---|---:|---:|---:|",
        ]
        for name, ours, base, _better in res["rows"]:
            out.append(f"| {name} | {_fmt(ours)} | {_fmt(base)} | {_ratio(ours, base)} |")
        out += ["", "| Target | Measured | Met |", "|---|---:|:---:|"]
        for name, measured, ok in res["checks"]:
            out.append(f"| {name} | {measured} | {'yes' if ok else '**no**'} |")
        out += [""] + [f"- {n}" for n in res["notes"]] + [""]
        out += [*res.get("details", []), ""] if res.get("details") else []
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=int(os.environ.get("WMB_BENCH_REPEATS", 3)))
    parser.add_argument("names", nargs="*", help="run only these (e.g. callback)")
    args = parser.parse_args()
    common.OUT.mkdir(exist_ok=True)
    modules = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    if args.names:
        modules = [m for m in modules if m.removeprefix("bench_") in args.names]
    sections = []
    for name in modules:
        mod = importlib.import_module(f"bench.{name}")
        print(f"{mod.TITLE}:", flush=True)
        res = mod.run(repeats=args.repeats, log=lambda s: print(s, flush=True))
        (common.OUT / f"{name}.json").write_text(json.dumps(res["raw"], indent=1))
        sections.append((mod.TITLE, res))
        for check, measured, ok in res["checks"]:
            print(f"  {check}: {measured} {'ok' if ok else 'NOT MET'}", flush=True)
    # A run of some benchmarks keeps the other benchmarks' sections as they were.
    kept = _kept_sections({title for title, _ in sections}) if args.names else {}
    RESULTS.write_text(render(sections, args.repeats, kept))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
