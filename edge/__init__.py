"""Lambda@Edge handlers for edgeshift: stdlib only, fail-safe, cheap to cold-start.

Handlers: ``edge.viewer_request.handler`` and ``edge.origin_request.handler``. Nothing is
imported here, so each trigger loads only the modules it uses.
"""
