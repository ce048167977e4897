"""OpenAPI links from a created rollout to what can be done with it next, so a client (or
a stateful test) can follow create -> get, events, pause, resume, abort, promote; and from
a route write to the host's rules as the edge reads them."""

from __future__ import annotations

from typing import Any

# operationId of each route, set explicitly so links and clients do not depend on the
# names powertools would derive from paths.
OPERATION_IDS = {
    "start": "startRollout",
    "list": "listRollouts",
    "get": "getRollout",
    "events": "getRolloutEvents",
    "pause": "pauseRollout",
    "resume": "resumeRollout",
    "abort": "abortRollout",
    "promote": "promoteRollout",
    "get_routes": "getRoutes",
    "put_routes": "putRoutes",
}
_ROLLOUT_ID = {"rollout_id": "$response.body#/rollout_id"}
_FOLLOWS = {
    "GetRollout": "get",
    "GetRolloutEvents": "events",
    "PauseRollout": "pause",
    "ResumeRollout": "resume",
    "AbortRollout": "abort",
    "PromoteRollout": "promote",
}
CREATED_LINKS: dict[str, Any] = {
    name: {
        "operationId": OPERATION_IDS[verb],
        "parameters": dict(_ROLLOUT_ID),
        "description": f"the created rollout's {verb} operation, by its rollout_id",
    }
    for name, verb in _FOLLOWS.items()
}
WRITTEN_LINKS: dict[str, Any] = {
    "GetRoutes": {
        "operationId": OPERATION_IDS["get_routes"],
        "parameters": {"host": "$request.path.host"},
        "description": "the host's rules after the write",
    }
}
