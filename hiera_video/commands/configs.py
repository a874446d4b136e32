"""The configs and class lists shipped with the package.

    hiera-video configs                      # names, one line each, with what they are for
    hiera-video configs k400_hiera_l         # print one (e.g. > my_run.yaml to start from it)
    hiera-video configs kinetics400          # print a class list
    hiera-video configs --path k400_hiera_l  # where it is installed

Any command's `--cfg` takes these names as well as file paths; `data.classes` and `--labels` take the
class lists' names (kinetics400, kinetics600, kinetics700, ssv2, ava_v2.2_60classes).
"""

import argparse
import difflib

from ..cli import command
from ..resources import CLASSES_DIR, CONFIG_DIR, list_class_lists, list_configs


def _summary(name: str, width: int = 90) -> str:
    """The first sentence of a shipped config's opening comment (each starts with one saying what it is)."""
    words = []
    for line in (CONFIG_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        words += line.lstrip("#").split()
    text = " ".join(words)
    cut = text.find(". ")
    text = text[:cut] if cut >= 0 else text.rstrip(".")
    return text if len(text) <= width else text[:width - 3].rstrip() + "..."


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a shipped config or class list to print")
    p.add_argument("--path", action="store_true", help="print its installed path instead of its text")


@command(__doc__, arguments)
def main(args: argparse.Namespace) -> int:
    if args.name is None:
        names = list_configs()
        width = max(map(len, names))
        print(f"configs ({CONFIG_DIR}):")
        for name in names:
            print(f"  {name:<{width}}  {_summary(name)}")
        print(f"class lists ({CLASSES_DIR}): {', '.join(list_class_lists())}")
        return 0
    # Shipped names only (a path of the user's own is not "shipped"): configs first, then class lists.
    name = args.name.removesuffix(".yaml").removesuffix(".txt")
    if name in list_configs():
        path = CONFIG_DIR / f"{name}.yaml"
    elif name in list_class_lists():
        path = CLASSES_DIR / f"{name}.txt"
    else:
        close = difflib.get_close_matches(name, list_configs() + list_class_lists(), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise FileNotFoundError(f"{args.name!r} is neither a shipped config nor a shipped class list{hint} "
                                f"(`hiera-video configs` lists them)")
    print(path if args.path else path.read_text(encoding="utf-8"), end="\n" if args.path else "")
    return 0
