"""Run every benchmark: ``python -m benchmarks [--pin] [--quick]``."""

from __future__ import annotations

import sys

from benchmarks import bench_backends, bench_dataplane, bench_k8s, bench_latency, bench_reporter


def main() -> None:
    argv = sys.argv[1:]
    bench_reporter.main(argv)
    bench_k8s.main(argv)
    bench_backends.main(argv)
    bench_latency.main(argv)
    bench_dataplane.main(argv)


if __name__ == "__main__":
    main()
