"""Socket timeouts kept by the kernel, for the drivers' plain TCP connections.

Python's socket timeout (``settimeout``) puts the socket in non-blocking mode and polls before every
read and write: two system calls per read. On Linux a blocking socket can be given the kernel's own
send and receive timeouts instead (``SO_SNDTIMEO``, ``SO_RCVTIMEO``): one system call per read, about
1.4 us of a 20 us loopback round trip. A read that times out then raises ``BlockingIOError``
(``EAGAIN``) where Python's raises ``TimeoutError``; the kernel rounds a timeout up to its clock tick
(a few milliseconds).

If anything later calls ``settimeout`` on such a socket (redis-py does, for a read given its own
timeout), the socket is back in Python's mode, whose timeout then applies: a timeout is kept either way.
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any

__all__ = ["KERNEL_TIMEOUTS", "limit", "use_kernel_timeouts"]

#: whether sockets get the kernel's timeouts (Linux); elsewhere they keep Python's
KERNEL_TIMEOUTS = sys.platform.startswith("linux")
_TIMEVAL = struct.Struct("@ll")  # struct timeval: seconds, microseconds


def limit(sock: Any, seconds: float) -> None:
    """Let each send and receive on ``sock`` wait at most ``seconds``: the kernel's timeouts on a socket
    :func:`use_kernel_timeouts` made blocking, else Python's."""
    if sock.gettimeout() is not None:
        sock.settimeout(seconds)
        return
    whole = int(seconds)
    timeval = _TIMEVAL.pack(whole, max(int((seconds - whole) * 1e6), 0 if whole else 1))  # 0 0: no limit
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def use_kernel_timeouts(sock: Any, seconds: float | None) -> bool:
    """Make the connected plain TCP socket ``sock`` blocking with the kernel's timeouts of ``seconds``;
    ``False`` (nothing changed) off Linux, without a timeout, or for a TLS or non-TCP socket."""
    if not KERNEL_TIMEOUTS or seconds is None or seconds <= 0 or type(sock) is not socket.socket or \
            sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.settimeout(None)
    limit(sock, seconds)
    return True
