"""Loaded by Python at start-up (the `site` module) when `tracehouse-agent run` put this directory on
PYTHONPATH. Starts the agent, then hands over to any other sitecustomize further along the path."""

import importlib.util
import os
import sys


def _start_agent() -> None:
    if os.environ.get("TRACEHOUSE_AGENT_AUTO") != "1":
        return
    try:
        import tracehouse.agents

        agent = tracehouse.agents.init()
        if agent is not None and agent.settings.gc_freeze:
            # Auto-instrumentation imports every instrumented library (web frameworks, drivers, their
            # dependencies): some 100 000 objects that live as long as the process. Moved to the
            # permanent generation now, they no longer lengthen every full collection of the
            # application (tens of microseconds a request at a few hundred requests a second).
            import gc

            gc.freeze()
    except BaseException as exc:  # noqa: BLE001 - never stop the application from starting
        print(f"tracehouse-agent: could not start, agent disabled: {exc}", file=sys.stderr)


def _chain_other_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_tracehouse_chained_sitecustomize", candidate)
            if spec is not None and spec.loader is not None:
                try:
                    spec.loader.exec_module(importlib.util.module_from_spec(spec))
                except Exception as exc:  # noqa: BLE001
                    print(f"tracehouse-agent: {candidate} failed: {exc}", file=sys.stderr)
            return


_start_agent()
_chain_other_sitecustomize()
