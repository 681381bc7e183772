"""`python -m pizza_operator ARGS` with yappi on demand (the cost curve's `--profile-at`).

SIGUSR1 starts yappi (CPU clock, every thread, coroutines included); SIGUSR2 stops it and writes
the functions by own time and by total time to $PIZZA_PROFILE_OUT (a text file) and the raw
stats beside it (`.pstat`, for `python -m pstats`). With $PIZZA_TRACEMALLOC=1 the allocations
are traced from the start (slow: for memory, not for CPU figures) and SIGUSR2 also writes the
largest live allocations by place to $PIZZA_PROFILE_OUT.memory.txt. The operator itself is
unchanged.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

import yappi  # type: ignore[import-not-found]
from pizza_operator.cli import main

OUT = Path(os.environ["PIZZA_PROFILE_OUT"])
TOP = 60


def memory() -> None:
    snapshot = tracemalloc.take_snapshot()
    lines = [f"traced now {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB"]
    for title, key in (("by line", "lineno"), ("by file", "filename")):
        lines.append(f"== largest live allocations {title} ==")
        for stat in snapshot.statistics(key)[:TOP]:
            frame = stat.traceback[0]
            lines.append(
                f"{stat.size / 2**20:9.2f} MiB {stat.count:9d}  {frame.filename}:{frame.lineno}"
            )
    Path(f"{OUT}.memory.txt").write_text("\n".join(lines) + "\n")


def start(_signum: int, _frame: FrameType | None) -> None:
    if tracemalloc.is_tracing():
        return
    yappi.set_clock_type("cpu")
    yappi.start(builtins=False, profile_threads=True)


def stop(_signum: int, _frame: FrameType | None) -> None:
    if os.environ.get("PIZZA_MALLOCSTATS"):  # pymalloc's arenas, to the log (stderr)
        sys.stderr.flush()
        sys._debugmallocstats()
    if tracemalloc.is_tracing():
        memory()
        OUT.write_text("memory only: see .memory.txt\n")
        return
    yappi.stop()
    stats = yappi.get_func_stats()
    stats.save(str(OUT.with_suffix(".pstat")), type="pstat")
    text = io.StringIO()
    for key, title in (("tsub", "own time"), ("ttot", "total time")):
        text.write(f"== top {TOP} by {title} (CPU seconds) ==\n")
        stats.sort(key, "desc")
        for f in list(stats)[:TOP]:
            where = f"{Path(f.module).name}:{f.lineno}"
            text.write(f"{f.tsub:9.3f} {f.ttot:9.3f} {f.ncall:9d}  {f.name}  {where}\n")
    text.write("== threads (CPU seconds) ==\n")
    for t in yappi.get_thread_stats():
        text.write(f"{t.ttot:9.3f}  {t.name} {t.id}\n")
    OUT.write_text(text.getvalue())
    yappi.clear_stats()


def trim_every(seconds: float) -> None:
    """glibc's malloc_trim(0) every `seconds` (an experiment: is the RSS freed memory kept?)."""
    import ctypes  # noqa: PLC0415
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    libc = ctypes.CDLL("libc.so.6")

    def loop() -> None:
        while True:
            time.sleep(seconds)
            libc.malloc_trim(0)

    threading.Thread(target=loop, daemon=True, name="malloc-trim").start()


if __name__ == "__main__":
    if os.environ.get("PIZZA_MALLOC_TRIM"):
        trim_every(float(os.environ["PIZZA_MALLOC_TRIM"]))
    if os.environ.get("PIZZA_TRACEMALLOC") == "1":
        tracemalloc.start(1)
    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv[0] = "pizza-operator"
    main()
