"""One self-contained HTML page of the benchmark results over time (inline SVG: no scripts, no
network, nothing to install).

    .venv/bin/python -m benchmarks.chart [--results benchmarks/results] [--out benchmarks/results/chart.html]
                                         [--markdown]

Reads every results file ``benchmarks.run`` writes (``<cpu>-<mcpu>-<N>c.json``: a list of run
records) and draws, per machine, one panel per figure: latency ratio neo-local / engine (log
scale, 1 = as fast), GFLOP/s of every engine, compile time, artifact size and peak memory, each
model a line across the runs in time order (x axis: commit and date; ``*`` marks a run from a
checkout with uncommitted changes). Every point carries its value as a tooltip. Runs from before
FLOPs were recorded get GFLOP/s from another run's count of the same model and input shapes.
Above the panels, the latest result of each model and variant (default compile, "tuned" when
the run passed CompilerOptions asking for tuning, "bfloat16" for precision bfloat16) as bars of
its ratio and as a table; ``--markdown``
prints that table for a README or a closing note. Other JSON files in the folder (other harnesses'
formats) are skipped.
"""

from __future__ import annotations

import argparse
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NEO_LOCAL = "neo_local_tvm"  # benchmarks.suite.NEO_LOCAL.key (not imported: the chart needs no frameworks)

#: (a result of a record) -> {series label: value}
Extract = Callable[[dict[str, Any]], dict[str, float]]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 680, 320, 64, 72, 28, 84
#: the variants in the order of their bar colours (``benchmarks.run.variant``)
VARIANTS = ("default", "tuned", "bfloat16", "tuned bfloat16")


@dataclass(frozen=True)
class Metric:
    title: str
    unit: str
    extract: Extract
    log: bool = False
    #: a value to draw as a dashed line (the ratio's 1.0: as fast as the engine)
    reference: float | None = None
    #: a line of the run itself rather than of a model (the machine's sgemm rate beside GFLOP/s)
    per_run: Callable[[Run], dict[str, float]] | None = None


@dataclass(frozen=True)
class Run:
    """One record of a results file: its commit (``*``: uncommitted changes), date and per-model results."""

    commit: str
    date: str
    timestamp: str
    results: tuple[dict[str, Any], ...]
    #: the machine's float32 matmul rate measured in the run (benchmarks.measure.sgemm_peak)
    sgemm_gflops: float | None = None


def _engine(key: str) -> str:
    return "neo-local" if key == NEO_LOCAL else key


def _name(r: dict[str, Any]) -> str:
    """The model, with its variant when it is not the default compile (e.g. ``resnet50_like [tuned]``)."""
    v = r.get("variant", "default")
    return r["model"] if v == "default" else f"{r['model']} [{v}]"


def _ratios(r: dict[str, Any]) -> dict[str, float]:
    return {f"{_name(r)} / {k.removeprefix('tvm_over_')}": v for k, v in r.get("ratio", {}).items()}


def _gflops(r: dict[str, Any]) -> dict[str, float]:
    return {f"{_name(r)}: {_engine(k)}": v for k, v in r.get("gflops", {}).items()}


def _sgemm(run: Run) -> dict[str, float]:
    return {"machine: numpy sgemm 1024^2": run.sgemm_gflops} if run.sgemm_gflops else {}


def _compile_s(r: dict[str, Any]) -> dict[str, float]:
    return {_name(r): r["compile"]["compile_s"]}


def _artifact_mb(r: dict[str, Any]) -> dict[str, float]:
    return {_name(r): r["compile"]["artifact_bytes"] / 2**20}


def _peak_mb(r: dict[str, Any]) -> dict[str, float]:
    out = {f"{_name(r)} (compile)": r["compile"]["peak_rss_mb"]}
    run = r["latency"].get(NEO_LOCAL, {}).get("peak_rss_mb")
    return out if run is None else {**out, f"{_name(r)} (run)": run}


METRICS = (
    Metric("Latency ratio neo-local / engine (median; below 1: neo-local is faster)", "x", _ratios, True, 1.0),
    Metric("GFLOP/s (conv and matmul FLOPs / median latency)", "GFLOP/s", _gflops, True, per_run=_sgemm),
    Metric("Compile time (neo_local.compile wall time)", "s", _compile_s, True),
    Metric("Artifact size", "MiB", _artifact_mb, True),
    Metric("Peak memory of neo-local (compile step, and the process running the artifact)", "MiB", _peak_mb),
)


# --------------------------------------------------------------------------- reading


def load_runs(path: Path) -> list[Run] | None:
    """The run records of one results file in time order; None when it is not benchmarks.run's."""
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "results" in r and "git" in r for r in records):
        return None
    runs = []
    flops = _known_flops(records)
    for r in sorted(records, key=lambda r: r["timestamp"]):
        commit = (r["git"].get("commit") or "unknown")[:7] + ("*" if r["git"].get("dirty_files") else "")
        results = tuple(_with_gflops(x, flops) for x in r["results"])
        peak = (r.get("sgemm_peak") or {}).get("gflops")
        runs.append(Run(commit, r["timestamp"][5:16].replace("T", " "), r["timestamp"], results, peak))
    return runs or None


def _model_key(result: dict[str, Any]) -> str:
    return json.dumps([result["model"], result.get("inputs")], sort_keys=True)


def _known_flops(records: list[dict[str, Any]]) -> dict[str, int]:
    """FLOPs per (model, input shapes), from the records that counted them."""
    return {_model_key(x): x["flops"] for r in records for x in r["results"] if x.get("flops")}


def _with_gflops(result: dict[str, Any], flops: dict[str, int]) -> dict[str, Any]:
    """A result from before FLOPs were recorded gets GFLOP/s from a later count of the same model
    on the same input shapes (the models are built in code with seeded weights: the same FLOPs)."""
    n = flops.get(_model_key(result))
    if result.get("gflops") or not n:
        return result
    return {**result, "gflops": {k: n / (x["median_ms"] * 1e6) for k, x in result["latency"].items()}}


def series(runs: list[Run], metric: Metric) -> dict[str, list[tuple[int, float]]]:
    """{label: [(run index, value)]}: each label's points across the runs that have it."""
    out: dict[str, list[tuple[int, float]]] = {}
    for i, run in enumerate(runs):
        values = [metric.extract(result) for result in run.results] + ([metric.per_run(run)] if metric.per_run else [])
        for label, value in (item for v in values for item in v.items()):
            if value is not None and math.isfinite(value) and value > 0:
                out.setdefault(label, []).append((i, float(value)))
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Latest:
    """The newest result of one model and variant in a results file, with the run it came from."""

    result: dict[str, Any]
    run: Run

    @property
    def engine(self) -> str | None:
        """The engine the ratio is taken against: the first one the entry compares with."""
        return next(iter(self.result.get("ratio", {})), "").removeprefix("tvm_over_") or None

    @property
    def ratio(self) -> float | None:
        return self.result["ratio"][f"tvm_over_{self.engine}"] if self.engine else None

    def cells(self) -> list[str]:
        """One table row: model, variant, neo-local ms, engine ms and ratio, GFLOP/s (share of the
        run's sgemm rate), compile s, artifact MiB, peak MiB of the run, and which run."""
        r, lat = self.result, self.result["latency"]
        engine_ms = f"{lat[self.engine]['median_ms']:.3f} ({self.engine})" if self.engine else "-"
        g = r.get("gflops", {}).get(NEO_LOCAL)
        share = f" ({g / self.run.sgemm_gflops:.0%})" if g and self.run.sgemm_gflops else ""
        peak = lat.get(NEO_LOCAL, {}).get("peak_rss_mb")
        return [r["model"], r.get("variant", "default"), f"{lat[NEO_LOCAL]['median_ms']:.3f}", engine_ms,
                f"{self.ratio:.2f}" if self.ratio else "-", f"{g:.1f}{share}" if g else "-",
                f"{r['compile']['compile_s']:.1f}", f"{r['compile']['artifact_bytes'] / 2**20:.2f}",
                f"{peak:.0f}" if peak else "-", f"{self.run.commit} {self.run.date}"]


COLUMNS = ("model", "variant", "neo-local ms", "engine ms", "ratio", "GFLOP/s (of sgemm)", "compile s",
           "artifact MiB", "run peak MiB", "run")


def latest(runs: list[Run]) -> list[Latest]:
    """Each (model, variant)'s newest result, in the order models first appear."""
    out: dict[tuple[str, str], Latest] = {}
    for run in runs:  # time order: later runs replace earlier ones
        for r in run.results:
            out[(r["model"], r.get("variant", "default"))] = Latest(r, run)
    return list(out.values())


def markdown(rows: list[Latest]) -> str:
    """The snapshot as a Markdown table (for the README or a closing note)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(rows: list[Latest]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row.cells()) + "</tr>" for row in rows)
    return f'<table class="latest"><tr>{head}</tr>{body}</table>'


def svg_bars(rows: list[Latest]) -> str:
    """Horizontal bars of the latest ratios (log scale, the 1.0 line dashed): the suite at a glance."""
    rows = [row for row in rows if row.ratio]
    if not rows:
        return ""
    bar, left, width = 16, 260, WIDTH
    height = TOP + bar * len(rows) + 24
    lo, hi = min(0.5, *(r.ratio for r in rows)) / 1.2, max(2.0, *(r.ratio for r in rows)) * 1.2

    def x(v: float) -> float:
        return left + (width - left - 16) * (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             '<text x="4" y="16" class="t">Latest ratio neo-local / engine per model (log scale; below 1: '
             'neo-local is faster)</text>']
    for i, row in enumerate(rows):
        y = TOP + i * bar
        v = row.result.get("variant", "default")
        color = PALETTE[VARIANTS.index(v) if v in VARIANTS else 0]
        label = html.escape(f"{_name(row.result)} / {row.engine}")
        tip = html.escape(f"{_name(row.result)} / {row.engine}: {_fmt(row.ratio)} x ({row.run.commit}, {row.run.timestamp})")
        parts.append(f'<text x="{left - 6}" y="{y + bar - 4}" class="yl">{label}</text>'
                     f'<rect x="{x(lo):.1f}" y="{y + 2}" width="{x(row.ratio) - x(lo):.1f}" height="{bar - 4}" '
                     f'fill="{color}"><title>{tip}</title></rect>'
                     f'<text x="{x(row.ratio) + 4:.1f}" y="{y + bar - 4}" class="xl">{_fmt(row.ratio)}</text>')
    bottom = TOP + bar * len(rows)
    for t in _ticks(lo, hi, True):
        parts.append(f'<text x="{x(t):.1f}" y="{bottom + 14}" class="xl">{_fmt(t)}</text>')
    parts.append(f'<line x1="{x(1.0):.1f}" x2="{x(1.0):.1f}" y1="{TOP}" y2="{bottom}" class="ref"/></svg>')
    return "".join(parts)


# --------------------------------------------------------------------------- drawing


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        ticks = [m * 10**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)]
        return [t for t in ticks if lo <= t <= hi] or [lo, hi]
    step = 10 ** math.floor(math.log10(hi / 4)) if hi > 0 else 1
    step = next(s * step for s in (1, 2, 5, 10) if hi / (s * step) <= 6)
    return [k * step for k in range(int(hi / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def svg_chart(metric: Metric, points: dict[str, list[tuple[int, float]]], runs: list[Run]) -> str:
    """A line chart as an <svg> element: one polyline per label, a <title> tooltip per point."""
    values = [v for pts in points.values() for _, v in pts] + ([metric.reference] if metric.reference else [])
    lo, hi = (min(values) / 1.2, max(values) * 1.2) if metric.log else (0.0, max(values) * 1.1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(runs) - 1, 1)

    def x(i: int) -> float:
        return LEFT + plot_w * (i / n if len(runs) > 1 else 0.5)

    def y(v: float) -> float:
        frac = (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo)) if metric.log else (v - lo) / (hi - lo)
        return TOP + plot_h * (1 - frac)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img">',
             f'<text x="{LEFT}" y="16" class="t">{html.escape(metric.title)}</text>',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="frame"/>']
    for t in _ticks(lo, hi, metric.log):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}" class="grid"/>'
                     f'<text x="{LEFT - 4}" y="{y(t) + 4:.1f}" class="yl">{_fmt(t)}</text>')
    parts.append(f'<text x="12" y="{TOP + plot_h / 2}" class="yl" transform="rotate(-90 12 {TOP + plot_h / 2})">'
                 f'{html.escape(metric.unit)}</text>')
    for i, run in enumerate(runs):
        parts.append(f'<text x="{x(i):.1f}" y="{TOP + plot_h + 12}" class="xl" '
                     f'transform="rotate(35 {x(i):.1f} {TOP + plot_h + 12})">{html.escape(run.commit)}'
                     f'<tspan x="{x(i):.1f}" dy="11">{html.escape(run.date)}</tspan></text>')
    if metric.reference:
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(metric.reference):.1f}" '
                     f'y2="{y(metric.reference):.1f}" class="ref"/>')
    for k, (label, pts) in enumerate(points.items()):
        color = PALETTE[k % len(PALETTE)]
        coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in pts)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        for i, v in pts:
            tip = html.escape(f"{label}: {_fmt(v)} {metric.unit} ({runs[i].commit}, {runs[i].timestamp})")
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"><title>{tip}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _legend(points: dict[str, list[tuple[int, float]]], unit: str) -> str:
    items = [f'<li><span style="background:{PALETTE[k % len(PALETTE)]}"></span>{html.escape(label)}: '
             f"{_fmt(pts[-1][1])} {html.escape(unit)}</li>" for k, (label, pts) in enumerate(points.items())]
    return f'<ul class="legend">{"".join(items)}</ul>'


_STYLE = """body{font:14px sans-serif;margin:24px;color:#222}h2{margin-top:32px}
.panel{display:flex;gap:16px;align-items:flex-start;margin:8px 0 24px}
svg .t{font-weight:bold;font-size:12px}svg .xl{font-size:10px}svg .yl{font-size:10px;text-anchor:end}
svg .frame{fill:none;stroke:#999}svg .grid{stroke:#e4e4e4}svg .ref{stroke:#444;stroke-dasharray:4 3}
.legend{list-style:none;padding:0;margin:24px 0 0;font-size:12px;columns:2}
table.latest{border-collapse:collapse;font-size:12px;margin:8px 0}
table.latest td,table.latest th{border:1px solid #ccc;padding:2px 6px;text-align:right}
.legend span{display:inline-block;width:10px;height:10px;margin-right:6px}"""


def render(machines: dict[str, list[Run]]) -> str:
    """The page: per machine (results file), one panel per metric with its legend (latest values)."""
    body = []
    for name, runs in machines.items():
        body.append(f"<h2>{html.escape(name)}</h2><p>{len(runs)} runs, {html.escape(runs[0].timestamp)} to "
                    f"{html.escape(runs[-1].timestamp)}; legends give each line's latest value. The machine may be "
                    "shared: see each record's loadavg and other_cpu_share.</p>")
        rows = latest(runs)
        body.append(f"<h3>Latest result of each model</h3>{svg_bars(rows)}{_html_table(rows)}"
                    "<h3>Over time</h3>")
        for metric in METRICS:
            points = series(runs, metric)
            if points:
                body.append(f'<div class="panel">{svg_chart(metric, points, runs)}{_legend(points, metric.unit)}</div>')
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>neo-local benchmarks</title>'
            f"<style>{_STYLE}</style></head><body><h1>neo-local benchmarks</h1>{''.join(body)}</body></html>\n")


def build(results_dir: Path, out: Path) -> Path:
    machines = {p.stem: runs for p in sorted(results_dir.glob("*.json")) if (runs := load_runs(p))}
    out.write_text(render(machines))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.chart", description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS, help="folder of results files")
    p.add_argument("--out", type=Path, default=None, help="HTML file to write (default: <results>/chart.html)")
    p.add_argument("--markdown", action="store_true", help="also print each machine's latest results as Markdown")
    args = p.parse_args(argv)
    if args.markdown:
        for path in sorted(args.results.glob("*.json")):
            if runs := load_runs(path):
                print(f"### {path.stem}\n\n{markdown(latest(runs))}\n")
    out = build(args.results, args.out or args.results / "chart.html")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
