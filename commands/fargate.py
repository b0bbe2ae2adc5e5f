"""Valid Fargate cpu/memory pairs (MiB), and the next step up for a task that runs out of memory."""

from __future__ import annotations

_TIERS: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}


def valid(cpu: int, memory: int) -> bool:
    return memory in _TIERS.get(cpu, [])


def next_size(cpu: int, memory: int) -> tuple[int, int] | None:
    """The smallest valid (cpu, memory) with more memory, doubling memory when that is valid.

    Doubling is what the guide does (1024 → 2048); otherwise the next valid memory for the same
    cpu, otherwise the next cpu tier's smallest memory above the current one.
    """
    tiers = sorted(_TIERS)
    if cpu in _TIERS and valid(cpu, memory * 2):
        return cpu, memory * 2
    for c in tiers:
        if c < cpu:
            continue
        bigger = [m for m in _TIERS[c] if m > memory]
        if bigger:
            return c, bigger[0]
    return None
