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
import sys
from typing import Optional

__all__ = ['ServeError', 'PortInUse', 'bind', 'several_addresses', 'display_host',
           'reuse_port_supported', 'reserve_for_workers', 'listen_again']

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

    Args:
        host: The host that was asked for.
        port: The port in use.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__('port %d is in use' % port)
        self.host = host
        self.port = port


def bind(host: Optional[str], port: int) -> socket.socket:
    """Open a listening TCP socket on an address (``SO_REUSEADDR`` on POSIX).

    The socket is inheritable, for worker and reloaded processes.

    Args:
        host: An IPv4 or IPv6 address or a name (its first IPv4 address is used, else
            its first address); ``''`` or ``None`` listens on every interface of both
            families (one dual-stack IPv6 socket where the platform has one).
        port: The TCP port (``0``: one the system picks).

    Returns:
        The listening socket.

    Raises:
        PortInUse: If another process listens on the port.
        ServeError: If the address cannot be resolved or bound.
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


def reuse_port_supported() -> bool:
    """Tell whether worker processes get a socket each (``SO_REUSEPORT``): on Linux only.

    Linux spreads new connections over the listening sockets of one port by a hash of
    their addresses; macOS and the BSDs accept the option but hand every connection to
    one socket, and Windows lacks it, so workers share one socket there.

    Returns:
        ``True`` on Linux with ``SO_REUSEPORT``.
    """
    return sys.platform.startswith('linux') and hasattr(socket, 'SO_REUSEPORT')


def _reuse_port_socket(family: int, v6only: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    except BaseException:
        sock.close()
        raise
    return sock


def _v6only(sock: socket.socket) -> bool:
    if sock.family != socket.AF_INET6:
        return False
    return bool(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))


def reserve_for_workers(sock: socket.socket) -> socket.socket:
    """Trade a listening socket for a placeholder that holds its address.

    The placeholder is bound with ``SO_REUSEPORT`` but does not listen, so the kernel
    never hands it a connection: it keeps the port reserved for this server while
    workers come and go, and each worker opens its own listening socket on the address
    with :func:`listen_again`. ``sock`` was bound first without ``SO_REUSEPORT``, which
    is how a port used by anyone else (another ``SO_REUSEPORT`` server included) is
    reported as :class:`PortInUse` rather than silently shared.

    Args:
        sock: The listening socket from :func:`bind`; it is closed.

    Returns:
        The placeholder socket (inheritable).

    Raises:
        PortInUse: If another process took the port between the two binds.
        ServeError: If the address cannot be bound again.
    """
    address = sock.getsockname()
    family, v6only = sock.family, _v6only(sock)
    sock.close()
    placeholder = _reuse_port_socket(family, v6only)
    try:
        placeholder.bind(address)
    except OSError as exc:
        placeholder.close()
        if exc.errno == errno.EADDRINUSE:  # taken in the instant between the two binds
            raise PortInUse(address[0], address[1]) from None
        raise ServeError('cannot listen on %s:%d: %s'
                         % (address[0], address[1], exc.strerror or exc)) from None
    placeholder.set_inheritable(True)
    return placeholder


def listen_again(placeholder: socket.socket) -> socket.socket:
    """Open a worker's own listening socket on the address a placeholder reserves.

    Args:
        placeholder: The socket from :func:`reserve_for_workers`.

    Returns:
        A listening socket bound with ``SO_REUSEPORT`` to the same address.
    """
    sock = _reuse_port_socket(placeholder.family, _v6only(placeholder))
    try:
        sock.bind(placeholder.getsockname())
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def several_addresses(host: Optional[str], port: int) -> bool:
    """Tell whether a host is a name with more than one address.

    Args:
        host: The host to serve, such as ``localhost`` (127.0.0.1 and ::1).
        port: The port, for the address lookup.

    Returns:
        ``True`` for a name that resolves to several addresses; ``False`` for an
        address, ``''`` or ``None``, and a name that does not resolve.
    """
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
    """Write a host as it appears in a URL.

    Args:
        host: A name or an IPv4 or IPv6 address.

    Returns:
        ``host``, with IPv6 addresses in brackets.
    """
    return '[%s]' % host if ':' in host else host
