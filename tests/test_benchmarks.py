"""The benchmark tools run on CPU and write what they promise (figures are measured, never asserted)."""

import json

import pytest

from hiera_video.benchmark import run_benchmark
from hiera_video.data.lists import write_list
from videos import make_video
from conftest import load_tool



def test_model_benchmark_on_cpu_inference_and_train():
    for train in (False, True):
        report = run_benchmark("hiera_test_8x64", device="cpu", dtype="fp32", batch_sizes=(1, 2), warmup=1,
                               iters=1, seconds=0.0, train=train, log=lambda _: None)
        out = report.to_json()
        assert [r["batch_size"] for r in out["results"]] == [1, 2]
        assert all(r["clips_per_s"] > 0 for r in out["results"]) and out["best"]["clips_per_s"] > 0
        assert out["mode"] == ("train" if train else "inference") and out["gflops_per_clip"] > 0
        assert "clip/s" in report.table()


def test_benchmark_tool_writes_json(tmp_path, capsys):
    code = load_tool("benchmark").main(["--model", "hiera_test_8x64", "--device", "cpu", "--dtype", "fp32",
                                        "--batch-sizes", "1", "--warmup", "0", "--iters", "1", "--seconds", "0",
                                        "--json", str(tmp_path / "b.json")])
    assert code == 0
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["model"] == "hiera_test_8x64" and data["torch_version"] and data["device_name"]
    assert load_tool("benchmark").main(["--model", "hiera_test_8x64", "--device", "cpu", "--batch-sizes", "x"]) == 2


def test_data_benchmark_tool(tmp_path, capsys):
    for i in range(3):
        make_video(tmp_path / f"{i}.mp4", 40)
    write_list(tmp_path / "list.csv", [(f"{i}.mp4", i) for i in range(3)])
    code = load_tool("benchmark_data").main(["--list", str(tmp_path / "list.csv"), "--workers", "0", "--clips", "4",
                                             "--batch-size", "2", "--crop-size", "32",
                                             "--json", str(tmp_path / "d.json")])
    assert code == 0
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["num_videos"] == 3 and data["results"]
    for r in data["results"]:
        assert r["clips"] >= 4 and r["clips_per_s"] > 0 and r["bad_videos"] == 0


@pytest.mark.slow
def test_resume_memory_benchmark_tool(tmp_path, capsys):
    """`benchmark-resume` writes a checkpoint, loads it both ways in 2-process launches and reports every
    process (the figures themselves are in docs/training.md)."""
    out = tmp_path / "resume"
    code = load_tool("benchmark_resume").main(["--model", "hiera_test_8x64", "--num-classes", "2", "--out", str(out),
                                               "--write-processes", "1", "--json", str(tmp_path / "r.json")])
    assert code == 0
    records = json.loads((tmp_path / "r.json").read_text())
    assert [(r["path"], r["rank"]) for r in records] == [("broadcast", 0), ("broadcast", 1), ("every-process", 0),
                                                         ("every-process", 1)]
    assert all(r["model"] == "hiera_test_8x64" and r["peak_mb"] >= r["rss_before_mb"] > 0 for r in records)
    assert "| hiera_test_8x64 | broadcast |" in capsys.readouterr().out
