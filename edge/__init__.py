"""Lambda@Edge handlers for edgeshift: stdlib only, fail-safe, cheap to cold-start.

Handlers: ``edge.viewer_request.handler``, ``edge.origin_request.handler`` and
``edge.viewer_response.handler``. Nothing is imported here, so each trigger loads only the
modules it uses. The route item format the handlers read is documented in ``edge.rules``.
"""
