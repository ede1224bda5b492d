"""sekisho's benchmarks: the core's yardsticks, each against a peer measured in the same run.

Run `python -m bench` (or `make bench`); it writes `bench/RESULTS.md`. `--quick` is a short
smoke run with small numbers (written to `bench/RESULTS-quick.md` unless `--output` says
otherwise). PostgreSQL is measured too when SEKISHO_BENCH_POSTGRES_URL names a server on which
the benchmark may create and drop its own databases.
"""
