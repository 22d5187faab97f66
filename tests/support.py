"""Helpers for tests that run TraceHouse as a real process (re-exported from tracehouse.launcher)."""

from tracehouse.launcher import TraceHouseProcess, free_port, start_tracehouse, wait_for

__all__ = ["TraceHouseProcess", "free_port", "start_tracehouse", "wait_for"]
