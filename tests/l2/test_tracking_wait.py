"""The RESP3 listener's wait on its socket: it must see data and closes without reading anything."""

from __future__ import annotations

import select
import socket
import time

import pytest

from qcache.l2.tracking import _wait_readable


@pytest.fixture(autouse=True, params=["poll", "select"])
def waiter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of waiting: ``select`` is what is left where there is no ``poll`` (as under gevent's patching)."""
    if request.param == "select":
        monkeypatch.delattr(select, "poll")
    return str(request.param)


def test_the_wait_sees_data_without_taking_it_and_times_out_without_data() -> None:
    ours, theirs = socket.socketpair()
    try:
        started = time.monotonic()
        assert not _wait_readable(ours, 0.02)
        assert time.monotonic() - started >= 0.015  # it waited, rather than answering at once
        theirs.sendall(b"+PONG\r\n")
        assert _wait_readable(ours, 1.0)
        assert _wait_readable(ours, 0.0)  # still there: the wait read nothing
        assert ours.recv(64) == b"+PONG\r\n"
        assert not _wait_readable(ours, 0.0)
    finally:
        ours.close()
        theirs.close()


def test_a_peer_that_hung_up_and_a_socket_closed_meanwhile_count_as_readable() -> None:
    ours, theirs = socket.socketpair()
    theirs.close()
    try:
        assert _wait_readable(ours, 1.0)  # the look under the lock then finds the end of the stream
    finally:
        ours.close()
    assert _wait_readable(ours, 1.0)  # a closed socket (descriptor -1) does not raise here


class _Decrypted:
    """A TLS socket whose bytes were already decrypted into its buffer: the descriptor shows nothing."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def pending(self) -> int:
        return 5

    def fileno(self) -> int:
        return self._sock.fileno()


def test_bytes_decrypted_above_the_socket_count_as_readable() -> None:
    ours, theirs = socket.socketpair()
    try:
        assert not _wait_readable(ours, 0.0)
        assert _wait_readable(_Decrypted(ours), 0.0)
    finally:
        ours.close()
        theirs.close()
