"""The pip extras behind the parts of smoot_ext beyond the ops (setup.py lists what each holds)."""
import importlib.util


def require(extra: str, *modules: str) -> None:
    """An ImportError naming the extra to install when any of ``modules`` is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"this part of smoot_ext needs the [{extra}] extra ({', '.join(missing)} "
                          f"not installed): pip install 'smoot_ext[{extra}]' "
                          f"(from a source folder: pip install '.[{extra}]')")
