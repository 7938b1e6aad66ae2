"""Trivial task functions for bench_jobs.py (imported by the job workers)."""

import time


def stamp() -> float:
    return time.time()


def noop() -> None:
    return None
