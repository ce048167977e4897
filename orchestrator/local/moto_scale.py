"""moto's server at the scale of many concurrent rollouts on one local stack.

Two of its costs grow with everything the stack holds, not with the request:

- **Dispatch.** For every request, under one lock all requests share, moto lists the
  ``moto`` package directory (``os.listdir`` and an ``isdir`` per entry) to see whether the
  Host header names a service. The list never changes while the process runs: it is read
  once, so concurrent requests stop queueing behind each other's file system calls.
- **GetMetricData.** moto answers each query period by period, scanning every datapoint
  of every metric in the window each time. A call only ever matches the metrics its
  queries name, so the scan is narrowed to those first (with moto's own matching rules);
  the answer is the same.

And three costs that grow with the number of executions running at once: the Step
Functions interpreter makes a new boto3 client for every Lambda task it runs (it keeps one
per region and service now), parses every JSONPath again with a freshly built parser
(parsed paths are kept), and the first requests to arrive together each load the same
service model from disk (they are loaded before any request).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any

_narrowed = threading.local()


def install() -> None:
    from moto import backends
    from moto.cloudwatch.models import CloudWatchBackend

    if getattr(backends.list_of_moto_modules, "_edgeshift", False):
        return
    _patch(backends, "list_of_moto_modules", _listed_once(backends.list_of_moto_modules))
    _patch(CloudWatchBackend, "get_metric_data", _narrowing(CloudWatchBackend.get_metric_data))
    _patch(
        CloudWatchBackend, "get_all_metrics", _narrowed_metrics(CloudWatchBackend.get_all_metrics)
    )
    _share_interpreter_clients()
    _keep_parsed_paths()
    _load_service_models()


_SERVICES = ("dynamodb", "cloudwatch", "events", "stepfunctions", "lambda", "secretsmanager")


def _share_interpreter_clients() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    made: dict[tuple[Any, ...], Any] = {}
    lock = threading.Lock()
    make = boto_client.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # The interpreter's clients sign with fixed local keys, whatever the credentials.
        from moto.core.models import botocore_stubber
        from moto.settings import moto_server_port

        key = (region, service, botocore_stubber.enabled, moto_server_port())
        with lock:
            if key not in made:
                made[key] = make(region, service, state_credentials)
            return made[key]

    for module in (boto_client, lambda_eval_utils):
        _patch(module, "boto_client_for", boto_client_for)


def _keep_parsed_paths() -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    parse = json_path.parse  # type: ignore[attr-defined]
    _patch(json_path, "parse", functools.lru_cache(maxsize=1024)(parse))


def _load_service_models() -> None:
    from moto.core.utils import get_service_model

    for service in _SERVICES:
        get_service_model(service)


def _patch(owner: Any, name: str, function: Callable[..., Any]) -> None:
    function._edgeshift = True  # type: ignore[attr-defined]
    setattr(owner, name, function)


def _listed_once(list_modules: Callable[[], Iterable[str]]) -> Callable[[], Iterable[str]]:
    listed = functools.cache(lambda: tuple(list_modules()))

    def list_of_moto_modules() -> Iterable[str]:
        return listed()

    return list_of_moto_modules


def _narrowing(get_metric_data: Callable[..., Any]) -> Callable[..., Any]:
    def narrowed_get_metric_data(
        backend: Any, queries: list[dict[str, Any]], *args: Any, **kwargs: Any
    ) -> Any:
        if any(str(q.get("Expression", "")).startswith("SELECT") for q in queries):
            return get_metric_data(backend, queries, *args, **kwargs)  # insights read all
        _narrowed.call = (
            backend,
            [_matcher(q["MetricStat"]) for q in queries if "MetricStat" in q],
        )
        try:
            return get_metric_data(backend, queries, *args, **kwargs)
        finally:
            _narrowed.call = None

    return narrowed_get_metric_data


def _matcher(stat: dict[str, Any]) -> Callable[[Any], bool]:
    """moto's test of a datapoint against one query: the name, and the dimensions when the
    query has any (then regardless of the namespace), else the namespace."""
    from moto.cloudwatch.models import Dimension

    metric = stat["Metric"]
    name, namespace = metric["MetricName"], metric["Namespace"]
    dimensions = sorted(Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
    if dimensions:
        return lambda md: md.name == name and sorted(md.dimensions) == dimensions
    return lambda md: md.name == name and md.namespace == namespace


def _narrowed_metrics(get_all_metrics: Callable[[Any], list[Any]]) -> Callable[[Any], list[Any]]:
    def narrowed_get_all_metrics(backend: Any) -> list[Any]:
        call = getattr(_narrowed, "call", None)
        metrics = get_all_metrics(backend)
        if call is None or call[0] is not backend:
            return metrics
        return [md for md in metrics if any(match(md) for match in call[1])]

    return narrowed_get_all_metrics
