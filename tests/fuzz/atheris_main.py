"""Run one fuzz target under atheris (libFuzzer): ``python tests/fuzz/atheris_main.py TARGET [libFuzzer args]``.

sioserver and the target harness are instrumented for coverage; a crash (any exception escaping
the target) makes libFuzzer write the input to ``crash-*`` and exit non-zero. ``scripts/fuzz.sh``
runs every target in turn.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

with atheris.instrument_imports(include=["sioserver", "tests.fuzz.targets"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} TARGET [libFuzzer args]; targets: {', '.join(TARGETS)}")
    target = TARGETS[sys.argv[1]]

    def test_one_input(data: bytes) -> None:
        target(data)

    atheris.Setup([sys.argv[0], *sys.argv[2:]], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
