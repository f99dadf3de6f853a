"""What redacting the API key costs on a 64 KiB problem body, in microseconds per call (median).

    .venv/bin/python -m bench.redaction
    git show REV:functions/archive_sequences/sequence_archiver/reply/text.py > /tmp/baseline_reply_text.py
    .venv/bin/python -m bench.redaction --baseline /tmp/baseline_reply_text.py   # side by side

Each case is timed `--repeat` times (each timing the mean of `--number` calls) and the median is printed:
- `parse_problem 64 KiB`: the client reading a problem+json body whose `detail` is 64 KiB of prose, the
  key echoed nowhere (what every problem body costs) and, next, echoed split by zero-width spaces;
- `clean whole 64 KiB`: one `clean` with a 64 KiB limit, so every character is scanned (the O(n) path);
- `clean 64 KiB of key characters`: the same on text made only of the key's characters, the prefilter's
  worst case (every window is looked up).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import sys
import timeit
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sequence_archiver.reply import parsing
from sequence_archiver.reply import text as reply_text

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

KEY = "kQ7vX2mZp9LwR4tB8nY3cH6jD1fS5gAe"
BODY_BYTES = 64 * 1024
WORDS = (
    *("the", "sequence", "could", "not", "be", "archived", "because", "its", "status", "changed", "while"),
    *("request", "was", "in", "flight", "please", "retry", "later", "or", "contact", "support", "with"),
    *("identifier", "shown", "below", "configuration", "international"),
)


def prose(size: int, chance: random.Random) -> str:
    """About `size` characters of ordinary words."""
    words: list[str] = []
    length = 0
    while length < size:
        word = chance.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def load(path: Path) -> ModuleType:
    """A reply_text implementation from a file (for example the one on main), as its own module."""
    spec = importlib.util.spec_from_file_location("baseline_reply_text", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases() -> dict[str, Callable[[ModuleType], object]]:
    """Each case's call, given the reply_text implementation to use."""
    chance = random.Random(64)
    text = prose(BODY_BYTES, chance)
    plain = json.dumps({"title": "Bad Request", "detail": text, "code": "sequence.invalid"}).encode()
    spread = "\u200b".join(KEY)
    echoed = json.dumps({"title": "Bad Request", "detail": f"key {spread} " + text, "code": "x"}).encode()
    key_characters = "".join(chance.choices(KEY, k=BODY_BYTES))

    def problem(body: bytes) -> Callable[[ModuleType], object]:
        def run(module: ModuleType) -> object:
            parsing.reply_text = module  # type: ignore[attr-defined]  # parse_problem calls reply_text.clean
            return parsing.parse_problem(body, secret=KEY)

        return run

    return {
        "parse_problem 64 KiB, no key": problem(plain),
        "parse_problem 64 KiB, key split by ZWSP": problem(echoed),
        "clean whole 64 KiB prose": lambda module: module.clean(text, secret=KEY, limit=BODY_BYTES),
        "clean 64 KiB of key characters": lambda module: module.clean(key_characters, secret=KEY, limit=BODY_BYTES),
    }


def median_microseconds(call: Callable[[], object], *, number: int, repeat: int) -> float:
    """The median over `repeat` timings of the mean time of one call, in microseconds."""
    timings = timeit.repeat(call, number=number, repeat=repeat)
    return statistics.median(timings) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    """Print one line per case: this implementation's median, and the baseline's when given."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="a reply text.py to compare with, side by side")
    parser.add_argument("--number", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    implementations = {"this": reply_text}
    if args.baseline:
        implementations["baseline"] = load(args.baseline)
    print(f"{'case':44}" + "".join(f"{name + ' (µs)':>18}" for name in implementations))
    try:
        for name, run in cases().items():
            figures = [
                median_microseconds(partial(run, module), number=args.number, repeat=args.repeat)
                for module in implementations.values()
            ]
            print(f"{name:44}" + "".join(f"{figure:18.1f}" for figure in figures))
    finally:
        parsing.reply_text = reply_text  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
