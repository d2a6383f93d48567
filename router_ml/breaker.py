"""A circuit breaker for the LLM fallback: after repeated failures, stop calling for a while.

While open, routing skips the API entirely (no timeout to wait out); after ``reset_after`` seconds
one trial call is let through (half-open) and its outcome closes or re-opens the circuit.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Thread-safe; ``clock`` is injectable so tests need not sleep.

    Parameters
    ----------
    failure_threshold : int, default 3
        Consecutive failures that open the circuit.
    reset_after : float, default 30.0
        Seconds the circuit stays open before a trial call.
    """

    def __init__(self, *, failure_threshold: int = 3, reset_after: float = 30.0, clock: Callable[[], float] = time.monotonic):
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if reset_after < 0:
            raise ValueError(f"reset_after must be >= 0, got {reset_after}")
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until: float | None = None
        self._trial_in_flight = False
        self.opened_count = 0

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._open_until is None:
            return "closed"
        return "open" if self._clock() < self._open_until else "half-open"

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one trial call at a time."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half-open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._open_until = None
            self._trial_in_flight = False

    def record_failure(self, retry_after: float | None = None) -> None:
        """Count a failure; ``retry_after`` (from a 429/529) keeps the circuit open at least that long."""
        with self._lock:
            self._failures += 1
            was_trial = self._trial_in_flight
            self._trial_in_flight = False
            if was_trial or self._failures >= self.failure_threshold:
                wait = max(self.reset_after, retry_after or 0.0)
                if self._open_until is None or self._state() != "open":
                    self.opened_count += 1
                self._open_until = self._clock() + wait
