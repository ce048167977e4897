"""Run every benchmark module (or those named on the command line); one JSON object per line."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time

import benchmarks


def main(names: list[str]) -> int:
    modules = names or sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__))
    failed = 0
    for name in modules:
        module = importlib.import_module(f"benchmarks.{name}")
        if not hasattr(module, "run"):
            continue
        started = time.perf_counter()
        try:
            for record in module.run():
                print(json.dumps({"benchmark": name, **record}), flush=True)
        except Exception as exc:  # report and go on: one broken benchmark hides no others
            failed += 1
            print(json.dumps({"benchmark": name, "error": repr(exc)}), flush=True)
        seconds = round(time.perf_counter() - started, 2)
        print(json.dumps({"benchmark": name, "wall_seconds": seconds}), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
