"""Size guards: estimate from the numbers a run is given what it will need, and refuse before
anything is allocated when that is more than the machine can give.

A run told to build a model of a billion channels, or to read a map that claims a million rows,
would otherwise spend minutes before it dies with MemoryError or is killed by the system. The
estimates are rough (within a small factor) on purpose: they are for telling sane sizes from
absurd ones, in microseconds, before any work.
"""

import os

MEMORY_SHARE = 0.8  # of the machine's memory, the most one run may plan to use


def machine_memory() -> int | None:
    """Bytes of physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def memory_limit(gigabytes: float | None = None) -> int:
    """The limit in bytes: `gigabytes` when given, else MEMORY_SHARE of the machine (16 GiB when
    the machine does not say)."""
    if gigabytes is not None:
        return int(gigabytes * 2**30)
    total = machine_memory()
    return int(MEMORY_SHARE * total) if total else 16 * 2**30


def gib(n: float) -> str:
    """Bytes as GiB for messages: 3.2 GiB, 0.004 GiB, 1.9e+06 GiB."""
    value = n / 2**30
    return f"{value:.3g} GiB" if value < 1e6 else f"{value:.2g} GiB"


def check_memory(needed: float, what: str, fix: str, gigabytes: float | None = None) -> None:
    """Raise a ValueError when `needed` bytes exceed the limit, naming the estimate and the limit.

    `what` says what needs it ("training this model"), `fix` how to need less; the message adds
    how the limit was chosen (`gigabytes`, e.g. from a --max-memory-gb flag, or the machine).
    """
    limit = memory_limit(gigabytes)
    if needed <= limit:
        return
    source = (
        "the limit you set"
        if gigabytes is not None
        else f"{MEMORY_SHARE:.0%} of this machine's memory"
    )
    raise ValueError(
        f"{what} needs about {gib(needed)} of memory, more than {gib(limit)} ({source}).\n"
        f"help: {fix}"
    )
