"""`rollout local up` started again at once: a port of the stopped stack is free again."""

from __future__ import annotations

import socket

import pytest

from orchestrator.local.loopback import LOOPBACK
from orchestrator.local.stack import PortInUse, ensure_free


def _time_wait_port() -> int:
    """A port whose listener is closed and whose one connection the server side closed
    first, so it sits in TIME_WAIT, as the CDN emulator's port does after a stop."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    client = socket.create_connection((LOOPBACK, port))
    served, _ = listener.accept()
    served.close()  # the server closes first: TIME_WAIT is on the server's port
    client.recv(1)
    client.close()
    listener.close()
    return int(port)


def test_a_port_in_time_wait_is_free_for_a_new_stack() -> None:
    ensure_free(_time_wait_port(), "--cdn-port")


def test_a_listening_port_is_in_use_naming_the_option() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen(1)
        with pytest.raises(PortInUse, match="choose another with --cdn-port"):
            ensure_free(busy.getsockname()[1], "--cdn-port")
