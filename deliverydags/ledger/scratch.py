"""Scratch space inside the run dir: DuckDB's spill files and parked numpy arrays."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def scratch_dir(run_dir: Path, prefix: str) -> Iterator[Path]:
    """A fresh directory inside ``run_dir`` (the system temp dir if that is read-only),
    removed afterwards."""
    try:
        path = tempfile.mkdtemp(prefix=prefix, dir=run_dir)
    except OSError:
        path = tempfile.mkdtemp(prefix=prefix.lstrip("."))
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def park(obj: object, names: Sequence[str], directory: Path) -> None:
    """Move ``obj``'s numpy arrays ``names`` into files: they wait in the page cache, not
    in the process's memory, while DuckDB's join needs the room."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, np.ndarray):
            np.save(directory / f"{name}.npy", value)
            setattr(obj, name, np.empty(0))


def unpark(obj: object, names: Sequence[str], directory: Path) -> None:
    for name in names:
        path = directory / f"{name}.npy"
        if path.exists():
            setattr(obj, name, np.load(path))
