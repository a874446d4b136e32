"""The package as users get it: `pip install .` (not editable) into a fresh venv, then used from an empty
folder with no checkout in sight: the `hiera-video` console script (make-synthetic, finetune with a
shipped config's bare name, evaluate, predict, configs), `python -m hiera_video`, and the Python
`hiera_video.predict` call. Also the command table itself, in-process.

The fresh venv borrows this venv's installed dependencies through a .pth line (no download: the
suite runs offline), but the project itself is built into a wheel from a copy of the working tree
and installed into the new venv, so a file missing from the package data fails here.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from hiera_video import cli

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _copy_tree(dst: Path) -> Path:
    """The working tree without the venv, runs, git data and caches (what `pip install .` would see)."""
    ignore = shutil.ignore_patterns(".venv", ".git", "runs", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", "fixtures")
    shutil.copytree(ROOT, dst, symlinks=True, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder of a fresh venv holding a non-editable install, environment to run it with)."""
    base = tmp_path_factory.mktemp("pkg")
    src = _copy_tree(base / "src")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)  # this venv's pip installs into it (`pip --python`)
    py = env_dir / "bin" / "python"
    new_site = Path(subprocess.check_output([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                            text=True).strip())
    # Dependencies (torch, accelerate, ...) come from the venv running the tests; appended after the new
    # venv's own site-packages, so the freshly installed hiera_video wins over any editable install here.
    (new_site / "zz-borrowed-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                        "--no-build-isolation", "--no-index", str(src)], cwd=base, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return env_dir / "bin", env


def run(bin_dir: Path, env: dict, cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def test_installed_package_runs_the_whole_workflow_from_an_empty_folder(installed, tmp_path):
    bin_dir, env = installed
    work = tmp_path / "empty"
    work.mkdir()
    where = run(bin_dir, env, work, "python", "-c", "import hiera_video; print(hiera_video.__file__)").stdout
    assert str(bin_dir.parent) in where and str(ROOT) not in where, where  # the installed copy, not the checkout

    run(bin_dir, env, work, "hiera-video", "make-synthetic", "--out", "data", "--train", "16", "--val", "8",
        "--workers", "1", "--no-progress")
    data = ["data.train_list=data/train.csv", "data.val_list=data/val.csv", "data.classes=data/classes.txt",
            "data.num_workers=0", "output_dir=run"]
    # A shipped config by its bare name; its class names come from the data folder here.
    run(bin_dir, env, work, "hiera-video", "finetune", "--cfg", "synthetic_hiera_tiny", *data, "train.epochs=1",
        "train.batch_size=8")
    assert (work / "run" / "model_best.pt").is_file() and (work / "run" / "metrics.jsonl").is_file()

    run(bin_dir, env, work, "hiera-video", "evaluate", "--cfg", "synthetic_hiera_tiny", "--ckpt",
        "run/model_best.pt", "--out", "eval", *data, "eval.num_temporal_clips=1", "eval.num_spatial_crops=1")
    metrics = json.loads((work / "eval" / "metrics.json").read_text())
    assert metrics["num_videos"] == 8

    video = "data/" + (work / "data" / "val.csv").read_text().split()[0]  # list paths are relative to the list
    classes = (work / "data" / "classes.txt").read_text().split()
    out = run(bin_dir, env, work, "hiera-video", "predict", video, "--ckpt", "run/model_best.pt", "--views", "1,1",
              "--k", "3", "--json").stdout
    top = json.loads(out)[0]["top"]
    assert len(top) == 3 and all(t["class"] in classes for t in top)  # names from the checkpoint

    code = (f"import hiera_video; r = hiera_video.predict({video!r}, 'run/model_best.pt', k=2, views=(1, 1)); "
            f"import json; print(json.dumps(r))")
    result = json.loads(run(bin_dir, env, work, "python", "-c", code).stdout)
    assert result[0]["error"] is None and [t["class"] for t in result[0]["top"]] == [t["class"] for t in top[:2]]
    assert result[0]["top"][0]["prob"] == pytest.approx(top[0]["prob"], abs=1e-5)  # the same code path


def test_installed_package_ships_configs_and_class_lists(installed, tmp_path):
    bin_dir, env = installed
    listing = run(bin_dir, env, tmp_path, "python", "-m", "hiera_video", "configs").stdout
    assert "k400_hiera_l" in listing and "kinetics400" in listing
    text = run(bin_dir, env, tmp_path, "hiera-video", "configs", "k400_hiera_l").stdout
    assert "hiera_large_16x224" in text
    code = ("from hiera_video.config import load_config; from hiera_video.data.lists import read_classes; "
            "c = load_config('k400_hiera_l'); print(c.data.classes, len(read_classes(c.data.classes)))")
    assert run(bin_dir, env, tmp_path, "python", "-c", code).stdout.split() == ["kinetics400", "400"]
    # The pretrained tags' label set resolves to the shipped list as well.
    assert "400" in run(bin_dir, env, tmp_path, "python", "-c",
                        "from hiera_video.data.lists import read_classes; print(len(read_classes('kinetics400')))").stdout


def test_every_command_is_a_module_with_main_and_a_tools_wrapper():
    import importlib
    for name, (module, _) in cli.COMMANDS.items():
        assert callable(importlib.import_module(f"hiera_video.commands.{module}").main), name
    wrapped = {p.stem for p in (ROOT / "tools").glob("*.py")}
    # Every script in tools/ is a wrapper of one command (no second implementation).
    modules = {m for m, _ in cli.COMMANDS.values()}
    assert wrapped <= modules, wrapped - modules
    for script in (ROOT / "tools").glob("*.py"):
        assert f"from hiera_video.commands.{script.stem} import main" in script.read_text(), script


def test_cli_help_unknown_command_and_version(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)
    assert cli.main(["finetun"]) == 2
    assert "did you mean finetune" in capsys.readouterr().err
    assert cli.main([]) == 2
    assert cli.main(["--version"]) == 0 and "hiera-video" in capsys.readouterr().out


def test_help_of_a_subcommand_names_the_console_script(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["predict", "--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("usage: hiera-video predict")


def test_python_dash_m_runs_the_same_cli(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hiera_video", "configs", "--path", "synthetic_hiera_tiny"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("synthetic_hiera_tiny.yaml"), r.stderr


def test_split_overrides_keeps_existing_files_with_equals_signs(tmp_path):
    odd = tmp_path / "a=b.mp4"
    odd.write_bytes(b"")
    videos, overrides = cli.split_overrides(["x.mp4", "data.num_frames=8", str(odd)])
    assert videos == ["x.mp4", str(odd)] and overrides == ["data.num_frames=8"]


def test_overrides_without_a_config_are_an_error():
    from hiera_video.config import ConfigError
    with pytest.raises(ConfigError, match="without --cfg"):
        cli.load_cli_config(None, ["data.num_frames=8"])


def test_the_documented_checkout_command_still_finds_its_config(monkeypatch, capsys):
    """`accelerate launch tools/finetune.py --cfg configs/k400_hiera_l.yaml`, as the README writes it, from
    the checkout: configs/ is a link into the package, so the config loads and the run stops only at the
    missing Kinetics lists (named by their config key)."""
    from conftest import load_tool
    monkeypatch.chdir(ROOT)
    assert (ROOT / "configs").is_symlink() and (ROOT / "data_lists").is_symlink()
    assert load_tool("finetune").main(["--cfg", "configs/k400_hiera_l.yaml"]) == 2
    err = capsys.readouterr().err
    assert "data.train_list" in err and "config file not found" not in err, err


def test_accelerate_launch_runs_the_module(tmp_path):
    """`accelerate launch -m hiera_video COMMAND`: Accelerate's module mode finds hiera_video/__main__.py."""
    r = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
                        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m",
                        "hiera_video", "configs", "--path", "k400_hiera_l"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("k400_hiera_l.yaml"), r.stdout + r.stderr
