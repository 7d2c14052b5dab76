"""The results chart (benchmarks/chart.py) from a tiny synthetic results folder."""

from __future__ import annotations

import json
import re

from benchmarks import chart


def _result(model: str, tvm_ms: float, ort_ms: float, gflops: bool) -> dict:
    flops = 2e9
    out = {
        "model": model,
        "inputs": [{"name": "x", "shape": [1, 3, 32, 32], "dtype": "float32"}],
        "latency": {"neo_local_tvm": {"median_ms": tvm_ms, "peak_rss_mb": 300.0},
                    "onnxruntime": {"median_ms": ort_ms, "peak_rss_mb": 200.0}},
        "ratio": {"tvm_over_onnxruntime": tvm_ms / ort_ms},
        "compile": {"compile_s": 12.5, "artifact_bytes": 3 * 2**20, "peak_rss_mb": 900.0},
    }
    if gflops:
        out["flops"] = flops
        out["gflops"] = {"neo_local_tvm": flops / (tvm_ms * 1e6), "onnxruntime": flops / (ort_ms * 1e6)}
    return out


def _record(ts: str, commit: str, dirty: list[str], results: list[dict], **extra) -> dict:
    return {"timestamp": ts, "git": {"commit": commit, "dirty_files": dirty}, "results": results, **extra}


def test_chart_of_two_runs_and_a_foreign_file(tmp_path):
    records = [  # out of time order on purpose
        _record("2026-11-26T10:00:00+00:00", "b" * 40, [], [_result("resnet_like", 4.0, 5.0, True)],
                sgemm_peak={"gflops": 800.0}),
        _record("2026-11-26T09:00:00+00:00", "a" * 40, ["x.py"], [_result("resnet_like", 10.0, 5.0, False),
                                                                 _result("bert_like", 2.0, 1.0, False)]),
    ]
    (tmp_path / "some-cpu-2c.json").write_text(json.dumps(records))
    (tmp_path / "inprocess.json").write_text(json.dumps([{"timestamp": "t", "model": "m"}]))  # another harness's
    out = chart.build(tmp_path, tmp_path / "chart.html")
    page = out.read_text()

    assert "<script" not in page and "<link" not in page and "src=" not in page  # self-contained
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg ")
    assert "<h2>some-cpu-2c</h2>" in page and "inprocess" not in page
    # the latest ratios' bars, then over time: ratio, GFLOP/s, compile time, artifact size, memory
    assert page.count("<svg ") == 1 + len(chart.METRICS)
    # time order on the x axis; the run from a dirty checkout is starred
    assert page.index("aaaaaaa*<tspan") < page.index("bbbbbbb<tspan")
    assert "11-26 09:00" in page
    # each point's value is its tooltip: the ratio fell from 2 to 0.8
    assert "<title>resnet_like / onnxruntime: 2 x (aaaaaaa*, 2026-11-26T09:00:00+00:00)</title>" in page
    assert "<title>resnet_like / onnxruntime: 0.8 x (bbbbbbb, 2026-11-26T10:00:00+00:00)</title>" in page
    assert "<title>resnet_like: neo-local: 500 GFLOP/s (bbbbbbb, 2026-11-26T10:00:00+00:00)</title>" in page
    # the older run recorded no FLOPs: the later count of the same model and inputs gives its GFLOP/s
    assert "<title>resnet_like: neo-local: 200 GFLOP/s (aaaaaaa*, 2026-11-26T09:00:00+00:00)</title>" in page
    assert page.count("GFLOP/s (aaaaaaa") == 2  # no bert_like count, no sgemm peak in the older run
    # the machine's sgemm rate, where the run measured it, beside the models' GFLOP/s
    assert "<title>machine: numpy sgemm 1024^2: 800 GFLOP/s (bbbbbbb, 2026-11-26T10:00:00+00:00)</title>" in page
    assert page.count("GFLOP/s (bbbbbbb") == 3
    assert "<title>bert_like (run): 300 MiB" in page and "<title>bert_like (compile): 900 MiB" in page
    assert 'class="ref"' in page  # the ratio's 1.0 line
    # legends: each line's latest value
    assert "resnet_like / onnxruntime: 0.8 x</li>" in page and "bert_like / onnxruntime: 2 x</li>" in page


def test_main_writes_next_to_the_results(tmp_path, capsys):
    (tmp_path / "cpu.json").write_text(json.dumps([_record("2026-11-26T09:00:00+00:00", "c" * 40, [],
                                                           [_result("m", 1.0, 1.0, True)])]))
    assert chart.main(["--results", str(tmp_path)]) == 0
    assert (tmp_path / "chart.html").exists() and "wrote" in capsys.readouterr().out


def test_latest_results_table_bars_and_markdown_keep_variants_apart(tmp_path, capsys):
    tuned = {**_result("resnet_like", 3.0, 5.0, True), "variant": "tuned"}
    records = [
        _record("2026-11-26T09:00:00+00:00", "a" * 40, [], [_result("resnet_like", 10.0, 5.0, True)]),
        _record("2026-11-26T10:00:00+00:00", "b" * 40, [], [_result("resnet_like", 4.0, 5.0, True), tuned],
                sgemm_peak={"gflops": 1000.0}),
    ]
    (tmp_path / "cpu-2c.json").write_text(json.dumps(records))
    rows = chart.latest(chart.load_runs(tmp_path / "cpu-2c.json"))
    # the newest default result replaced the older one; the tuned one is its own row
    assert [(r.result["model"], r.result.get("variant", "default"), r.ratio) for r in rows] == [
        ("resnet_like", "default", 0.8), ("resnet_like", "tuned", 0.6)]
    assert rows[1].cells()[:6] == ["resnet_like", "tuned", "3.000", "5.000 (onnxruntime)", "0.60", "666.7 (67%)"]
    page = chart.build(tmp_path, tmp_path / "chart.html").read_text()
    assert "<title>resnet_like [tuned] / onnxruntime: 0.6 x (bbbbbbb, 2026-11-26T10:00:00+00:00)</title>" in page
    assert page.count('<table class="latest">') == 1 and page.count("<tr>") == 3
    assert chart.main(["--results", str(tmp_path), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| resnet_like | tuned | 3.000 | 5.000 (onnxruntime) | 0.60 |" in out and out.startswith("### cpu-2c")
