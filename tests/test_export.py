"""Exporting a tiny classifier to ONNX (both exporters) and torch.export, with a dynamic batch axis,
checked against the eager model; and the check failing when the exported model differs."""

import importlib.util
import logging
import sys

import pytest
import torch

import hiera_video
from hiera_video.export import ExportError, export_model

NAME = "hiera_test_8x64"  # 8x64x64 clips, embed_dim 16: exports in seconds
HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX,
                                reason="onnx and onnxruntime not installed (pip install 'hiera-video[export]')")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = hiera_video.create_model(NAME, num_classes=7)
    with torch.no_grad():  # random weights everywhere (the head starts near zero), so errors show
        for p in m.parameters():
            p.normal_(0, 0.2)
    return m.eval()


def _only(tmp_path, name):
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind


def test_torch_export_program_has_a_dynamic_batch_and_matches_eager(model, tmp_path):
    report = export_model(model, tmp_path / "tiny.pt2", format="torch-export")
    _only(tmp_path, "tiny.pt2")
    assert sorted(report.max_abs_error) == [1, 3] and report.checked_with == "torch.export"
    assert max(report.max_abs_error.values()) <= 1e-4
    program = torch.export.load(str(tmp_path / "tiny.pt2")).module()
    for n in (1, 3):
        x = torch.randn(n, 3, 8, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(program(x), model(x), rtol=1e-5, atol=1e-5)


@needs_onnx
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_onnx_has_a_dynamic_batch_and_matches_eager_in_onnxruntime(model, tmp_path, dynamo):
    if dynamo and importlib.util.find_spec("onnxscript") is None:
        pytest.skip("the dynamo ONNX exporter needs onnxscript (pip install onnxscript)")
    import onnx
    import onnxruntime
    report = export_model(model, tmp_path / "tiny.onnx", dynamo=dynamo, opset=18)
    _only(tmp_path, "tiny.onnx")
    assert report.checked_with == "onnxruntime" and sorted(report.max_abs_error) == [1, 3]
    assert max(report.max_abs_error.values()) <= 1e-4 and "batch 3" in report.summary()
    graph = onnx.load(str(tmp_path / "tiny.onnx")).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert graph.input[0].name == "input" and graph.output[0].name == "logits"
    assert isinstance(dims[0], str) and dims[1:] == [3, 8, 64, 64]
    session = onnxruntime.InferenceSession(str(tmp_path / "tiny.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(session.run(None, {"input": x.numpy()})[0]), model(x),
                                   rtol=1e-4, atol=1e-5)


def test_check_fails_when_the_exported_model_differs(model, tmp_path, monkeypatch):
    import hiera_video.export as export

    real = export._runner

    def off_by_a_little(report):
        run = real(report)
        return lambda x: run(x) + 1e-2
    monkeypatch.setattr(export, "_runner", off_by_a_little)
    with pytest.raises(ExportError, match=r"tiny.pt2: batch 1: max abs error 1\.0+e-02 against the eager model"):
        export_model(model, tmp_path / "tiny.pt2", format="torch-export")


@needs_onnx
def test_onnx_without_onnxruntime_is_exported_and_reported_unchecked(model, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with caplog.at_level(logging.WARNING, logger="hiera_video"):
        report = export_model(model, tmp_path / "tiny.onnx", dynamo=False)
    assert report.max_abs_error == {} and "not checked" in report.summary()
    assert "pip install onnxruntime" in caplog.text and (tmp_path / "tiny.onnx").is_file()


def test_bad_requests_say_what_is_wrong(model, tmp_path):
    with pytest.raises(ValueError, match=r"format='tflite': choose one of \('onnx', 'torch-export'\)"):
        export_model(model, tmp_path / "x", format="tflite")
    with pytest.raises(ValueError, match="batch_size=1: use 2 or more"):
        export_model(model, tmp_path / "x.onnx", batch_size=1)
    with pytest.raises(ExportError, match="an MAE .* is not exported"):
        export_model(hiera_video.create_model(f"mae_{NAME}"), tmp_path / "x.onnx")
    assert not any(tmp_path.iterdir())
