"""Open-file limits: each forwarded connection holds two descriptors on each side."""

from __future__ import annotations

import resource


def raise_open_files() -> int:
    """Lift the soft limit on open files to the hard one (a default of 1,024 would stop a
    gateway or a forward at about 500 connections); return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass  # some containers refuse: keep what we have
    return soft
