"""Where a report is written: a staging folder beside the output, renamed into place at the end,
so a failed run leaves either the previous report or none, never half of one."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

REPORT_MARKER = "results.json"  # a folder holding this is an earlier report, safe to replace


def check_output_folder(out: str | Path) -> Path:
    """Refuse to replace a folder that is not an earlier report (it could be anything the user
    pointed --out at); checked before any work starts."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"out: {str(out)!r} exists and is not a folder")
        if any(out.iterdir()) and not (out / REPORT_MARKER).is_file():
            raise ValueError(f"out: folder {str(out)!r} is not empty and holds no earlier report "
                             f"({REPORT_MARKER}); choose a new or empty folder")
    return out


@contextlib.contextmanager
def staged_folder(out: str | Path):
    """Yields an empty staging folder; on success it replaces ``out``, on error it is removed."""
    out = check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(stage, 0o777 & ~umask)  # mkdtemp's folder is private; the report is an ordinary folder
    try:
        yield stage
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(stage, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
