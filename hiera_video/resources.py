"""The files shipped inside the package: the paper's run configs (`hiera_video/configs/*.yaml`) and the
class lists of the official checkpoints (`hiera_video/data_lists/*.txt`), and how a short name finds them.

A value that is an existing path is always taken as that path; only otherwise is a bare name
(`k400_hiera_l`, `kinetics400`) looked up among the shipped files. The checkout's top-level `configs/`
and `data_lists/` are links to these folders, so `--cfg configs/k400_hiera_l.yaml` works there too.
"""

from __future__ import annotations

import difflib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE_DIR / "configs"
CLASSES_DIR = PACKAGE_DIR / "data_lists"


def list_configs() -> list[str]:
    """Names of the shipped configs (`hiera-video configs` prints them)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def list_class_lists() -> list[str]:
    return sorted(p.stem for p in CLASSES_DIR.glob("*.txt"))


def _shipped(value: str, folder: Path, suffix: str, prefix: str) -> Path | None:
    """`name`, `name.suffix` or `prefix/name.suffix` (the form the checkout's links give) -> the shipped
    file, or None."""
    name = value[len(prefix) + 1:] if value.startswith(prefix + "/") else value
    if "/" in name or "\\" in name:
        return None
    path = folder / (name if name.endswith(suffix) else name + suffix)
    return path if path.is_file() else None


def config_path(value: str | Path) -> Path:
    """`--cfg` value -> a YAML file: an existing path as given, else a shipped config by name. Raises
    FileNotFoundError naming the value, the closest shipped names and where they are listed."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    found = _shipped(str(value), CONFIG_DIR, ".yaml", "configs")
    if found is not None:
        return found
    names = list_configs()
    close = difflib.get_close_matches(Path(str(value)).stem, names, n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise FileNotFoundError(f"config file not found: {value}, and no shipped config has that name{hint} "
                            f"(`hiera-video configs` lists the {len(names)} shipped ones)")


def classes_path(value: str | Path) -> Path | None:
    """A class-names value (`data.classes`, `--labels`) -> a file: an existing path as given, else a
    shipped list by name (`kinetics400`, `kinetics400.txt`, `data_lists/kinetics400.txt`); None when
    neither exists."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    return _shipped(str(value), CLASSES_DIR, ".txt", "data_lists")
