"""The listening socket of the built-in server, bound once per ``run()``.

``run()`` binds the socket itself, before any startup hook or worker runs, so that a
port already in use is one clear error (:class:`PortInUse`) and so that worker
processes and reloaded processes all serve the very same socket: the supervising
process (or the reloader) keeps it open across restarts, so clients are queued in its
backlog rather than refused while a worker or the application restarts.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Optional

__all__ = ['ServeError', 'PortInUse', 'bind', 'several_addresses', 'display_host']

#: Pending connections the kernel queues for the socket.
BACKLOG = 1024


class ServeError(RuntimeError):
    """The server cannot run; the message is one line meant for the user."""

    #: exit status of ``microdot run`` for this error
    exit_status = 1


class PortInUse(ServeError):
    """Another process listens on the port (``EADDRINUSE``).

    The message is ``port N is in use``; callers append how to pick another one
    (``--port`` for the command line, ``port=`` for ``app.run()``).
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__('port %d is in use' % port)
        self.host = host
        self.port = port


def bind(host: Optional[str], port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (``SO_REUSEADDR`` on POSIX).

    ``host`` may be an IPv4 or IPv6 address or a name (its first IPv4 address is
    used, else its first address);
    ``''`` or None listens on every interface of both families (one dual-stack IPv6
    socket where the platform has one). The socket is inheritable, for worker and
    reloaded processes. Raises :class:`PortInUse`, or :class:`ServeError` for an
    address that cannot be resolved or bound.
    """
    try:
        if not host:
            if socket.has_dualstack_ipv6():
                sock = socket.create_server(('', port), family=socket.AF_INET6,
                                            backlog=BACKLOG, dualstack_ipv6=True)
            else:
                sock = socket.create_server(('', port), backlog=BACKLOG)
        else:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
            # a name such as 'localhost': its IPv4 address if it has one
            infos.sort(key=lambda info: info[0] != socket.AF_INET)
            family, _, _, _, address = infos[0]
            sock = socket.create_server(address, family=family, backlog=BACKLOG)
    except socket.gaierror as exc:
        raise ServeError('cannot resolve host %r: %s' % (host, exc.strerror)) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host or '', port) from None
        if exc.errno == errno.EACCES:
            raise ServeError('no permission to listen on port %d (ports below 1024 need '
                             'privileges); pick another port' % port) from None
        raise ServeError('cannot listen on %s:%d: %s'
                         % (host or '*', port, exc.strerror or exc)) from None
    sock.set_inheritable(True)
    return sock


def several_addresses(host: Optional[str], port: int) -> bool:
    """Whether ``host`` is a name with more than one address (``localhost``: 127.0.0.1
    and ::1). False for addresses, ``''``/None, and names that do not resolve."""
    if not host:
        return False
    try:
        ipaddress.ip_address(host.split('%')[0])
        return False
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        return False
    return len({info[4][:2] for info in infos}) > 1


def display_host(host: str) -> str:
    """``host`` as it appears in a URL (IPv6 addresses in brackets)."""
    return '[%s]' % host if ':' in host else host
