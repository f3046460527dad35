"""Redaction and error normalisation are linear: time each adversarial case at n, 2n, 4n, 8n characters.

    .venv/bin/python bench/linear_text.py          # about 30 s on a 2-core machine

The cases are the ones tests/test_adversarial_text.py bounds (each the worst input found for one
pattern), plus ordinary text. Each time is the median CPU time of a few runs; `x2` is the mean of
time(2n)/time(n) over the three doublings: about 2 is linear, about 4 quadratic. Redaction is also
timed once at the largest content a tool accepts (5 MB), normalisation at its 20,000-character cap.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_adversarial_text import ERROR_MESSAGE_CHARS, NORMALISER_CASES, REDACTION_CASES

from baton.redact import redact
from baton.tools._common import MAX_CONTENT_CHARS
from baton.tools.learning import normalise_error


def _median_seconds(work: Callable[[str], object], text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.process_time()
        work(text)
        times.append(time.process_time() - started)
    return statistics.median(times)


def _table(title: str, work: Callable[[str], object], cases: dict[str, Callable[[int], str]], n: int,
           largest: int, runs: int) -> list[float]:
    sizes = [n, 2 * n, 4 * n, 8 * n]
    print(f"\n{title}: median ms of {runs} runs at n = {n:,} characters; `x2` = mean time(2n)/time(n)")
    print(f"{'case':38} {'n':>8} {'2n':>8} {'4n':>8} {'8n':>8} {'x2':>5} {largest:>10,}")
    ratios = []
    for name, build in cases.items():
        times = [_median_seconds(work, build(size), runs) for size in sizes]
        ratio = statistics.mean(later / max(earlier, 1e-6) for earlier, later in itertools.pairwise(times))
        ratios.append(ratio)
        at_largest = _median_seconds(work, build(largest), 1)
        print(f"{name:38} " + " ".join(f"{t * 1000:8.2f}" for t in times) + f" {ratio:5.2f} {at_largest * 1000:8.1f}ms")
    return ratios


def main() -> None:
    ratios = _table("redact()", redact, REDACTION_CASES, 50_000, MAX_CONTENT_CHARS, runs=3)
    ratios += _table("normalise_error()", normalise_error, NORMALISER_CASES, ERROR_MESSAGE_CHARS // 8,
                     ERROR_MESSAGE_CHARS, runs=5)
    print(f"\nx2 over all cases: median {statistics.median(ratios):.2f}, max {max(ratios):.2f} (quadratic would be ~4)")


if __name__ == "__main__":
    main()
