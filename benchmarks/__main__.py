"""Run every benchmark: ``python -m benchmarks [--pin] [--quick]``."""

from __future__ import annotations

import sys

from benchmarks import bench_reporter


def main() -> None:
    argv = sys.argv[1:]
    bench_reporter.main(argv)


if __name__ == "__main__":
    main()
