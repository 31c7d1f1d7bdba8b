"""py-spy profiles of the server under load, summarised as top functions (self and inclusive)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"


def available() -> bool:
    return PY_SPY.exists() or shutil.which("py-spy") is not None


def ensure_py_spy() -> bool:
    if not available():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=False, capture_output=True
        )
    return available()


def _exe() -> str:
    return str(PY_SPY) if PY_SPY.exists() else "py-spy"


@contextlib.contextmanager
def recording(pid: int, seconds: float, out_base: Path, *, subprocesses: bool) -> Iterator[None]:
    """Record ``pid`` (and its children) for ``seconds`` while the block runs: a flame graph
    (``.svg``) and collapsed stacks (``.txt``) side by side."""
    out_base.parent.mkdir(parents=True, exist_ok=True)
    common = [
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "100",
        "--nonblocking",
    ]
    if subprocesses:
        common.append("--subprocesses")
    procs = [
        subprocess.Popen(
            [_exe(), *common, "--format", fmt, "--output", str(out_base.with_suffix(ext))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fmt, ext in (("raw", ".txt"), ("flamegraph", ".svg"))
    ]
    try:
        yield
    finally:
        for p in procs:
            try:
                p.wait(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _frame(text: str) -> tuple[str, str, bool]:
    """ "function (pkg/mod/file.py:123)" -> ("function (mod/file.py)", area, is a hygie frame)."""
    name, _, where = text.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    parts = file.split("/")
    hygie = parts[0] == "hygie" or "/hygie/" in file
    short = "/".join(parts[-2:]) if hygie else parts[-1]
    if hygie:
        i = parts.index("hygie") if "hygie" in parts else 0
        mods = [x.removesuffix(".py") for x in parts[i:]]
        area = ".".join(mods[:3]) if len(mods) > 3 else ".".join(mods)
    elif parts[0] == "asyncio" and name == "Runner.run":
        area = "event loop (uvloop C code: socket I/O, callbacks)"
    else:
        area = parts[0].removesuffix(".py") if len(parts) > 1 else f"stdlib {parts[0].removesuffix('.py')}"
    return f"{name} ({short})", area, hygie


def summarise(collapsed: Path, top: int = 15) -> dict[str, object]:
    """Top functions by self samples, hygie functions by inclusive samples, and self samples
    by area (package or hygie module), in % of all samples."""
    self_counts: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    if not collapsed.exists():
        return {"samples": 0, "self": [], "inclusive": [], "areas": []}
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [_frame(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        label, area, _ = frames[-1]
        self_counts[label] += count
        areas[area] += count
        for f in {f[0] for f in frames if f[2] and not f[0].startswith(("serve ", "_serve ", "<module>"))}:
            incl[f] += count

    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100 * n / total, 1)) for f, n in c.most_common(top)] if total else []

    return {"samples": total, "self": pct(self_counts), "inclusive": pct(incl), "areas": pct(areas)}
