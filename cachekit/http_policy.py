"""What the HTTP admin routes may change: nothing that reaches outside the machine's allow-lists.

The admin routes of :mod:`cachekit.http` bind their services to :func:`admin_guard`; it runs on
every config edit they make, before the edit is applied, and refuses it (:class:`~cachekit.errors.
AccessDenied`, a 403) when a provider the edit adds or changes

- is a custom driver (``type = "custom"``, an entry point, ``driver = "module:Class"``): loading one
  imports code, so it is declared in the config file only;
- is a ``file`` store outside ``[http] file_root`` (the path resolved: no ``..``, no symlink out);
  without ``file_root``, file providers cannot be created over HTTP;
- is a ``redis`` or ``memcached`` store whose address (``url``, ``host``, ``sentinel``,
  ``startup_nodes``, ``servers``) names a host not in ``[http] allowed_hosts`` (loopback by default),
  a Unix socket, or a URL query parameter that could redirect the connection;
- opts into unsigned pickle (``allow_unsigned_pickle``);

or when the edit changes the ``[http]`` section (tokens and these allow-lists are never settable over
HTTP). Providers the edit leaves as they were are not checked: the owner's file may declare anything.
Python code calling the services directly is trusted and passes no guard.

>>> from cachekit import CacheConfig
>>> cfg = CacheConfig(providers={"r": {"type": "redis", "url": "redis://10.0.0.9:6379/0"}})
>>> admin_guard({"providers": {}, "http": cfg.http}, cfg)
Traceback (most recent call last):
...
cachekit.errors.AccessDenied: providers.r: host '10.0.0.9' is not in [http] allowed_hosts ...
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr

from .errors import AccessDenied
from .providers.types import PROVIDER_TYPES

if TYPE_CHECKING:
    from .config.models import CacheConfig, HttpConfig

__all__ = ["admin_guard", "check_provider", "is_loopback"]

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
# redis-py passes any other query parameter of a URL to the connection (?host=, ?path= would
# redirect it); these only tune it.
_SAFE_URL_QUERY = {"db", "protocol", "socket_timeout", "socket_connect_timeout", "socket_keepalive",
                   "retry_on_timeout", "health_check_interval", "max_connections", "client_name"}


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a name or an IP, IPv6 in brackets or not) is this machine's loopback."""
    if not host:
        return False
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def admin_guard(before: Mapping[str, Any], cfg: CacheConfig) -> None:
    """The edit guard of the HTTP admin routes (see the module docstring); raises AccessDenied."""
    if "http" in before and before["http"] != cfg.http:
        raise AccessDenied("the [http] section (tokens, allowed_hosts, file_root, adhoc_regions) cannot be "
                           "changed over HTTP; edit the config file or the environment")
    previous = before.get("providers") or {}
    for name, model in cfg.providers.items():
        if previous.get(name) != model:
            check_provider(name, model, cfg.http)


def check_provider(name: str, model: Any, http: HttpConfig) -> None:
    """Refuse (AccessDenied) provider ``model`` if the HTTP admin routes may not declare it."""
    where = f"providers.{name}"
    kind = model.type
    if kind not in PROVIDER_TYPES:
        raise AccessDenied(f"{where}: custom drivers ({kind!r}) cannot be declared over HTTP (loading one "
                           "imports code); declare it in the config file")
    if getattr(model, "allow_unsigned_pickle", False):
        raise AccessDenied(f"{where}: allow_unsigned_pickle cannot be set over HTTP; declare it in the config "
                           "file")
    if kind == "file":
        _check_path(where, model.path, http.file_root)
    elif kind == "redis":
        for address in _redis_addresses(model):
            _check_address(where, address, http.allowed_hosts)
    elif kind == "memcached":
        for server in model.servers:
            _check_address(where, server, http.allowed_hosts)


def _redis_addresses(model: Any) -> list[str]:
    """Every address the Redis driver may connect to (``host`` only where it is the one used)."""
    addresses = [*model.sentinel, *model.startup_nodes]
    if model.url:
        addresses.append(model.url)
    elif not model.sentinel and not (model.cluster and model.startup_nodes):
        addresses.append(model.host)
    return addresses


def _check_address(where: str, address: str, allowed: Iterable[str]) -> None:
    host = _host_of(where, address)
    if not _allowed(host, allowed):
        listed = ", ".join(allowed) or "nothing"
        raise AccessDenied(f"{where}: host {host!r} is not in [http] allowed_hosts ({listed}); "
                           "add it there (config file or CACHEKIT_HTTP__ALLOWED_HOSTS) to allow it")


def _host_of(where: str, address: str) -> str:
    """The host of a ``redis://`` URL or a ``host:port`` address, as the client libraries read it."""
    # the real URL (a SecretUrl prints its password masked), parsed as the client will parse it
    text = (address.get_secret_value() if isinstance(address, SecretStr) else str(address)).strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("redis", "rediss"):
            raise AccessDenied(f"{where}: {parts.scheme}:// addresses cannot be set over HTTP "
                               "(redis:// or rediss:// to an allowed host)")
        unsafe = sorted(set(parse_qs(parts.query)) - _SAFE_URL_QUERY)
        if unsafe:
            raise AccessDenied(f"{where}: URL parameter(s) {', '.join(unsafe)} cannot be set over HTTP")
        return unquote(parts.hostname or "")  # redis-py unquotes the host it connects to
    if text.startswith(("unix:", "/")):
        raise AccessDenied(f"{where}: Unix sockets cannot be set over HTTP")
    if text.startswith("["):
        return text[1:].partition("]")[0]
    if text.count(":") > 1:  # a bare IPv6 address, read whole by the clients' rpartition(':')
        return text.rpartition(":")[0]
    return text.partition(":")[0]


def _allowed(host: str, allowed: Iterable[str]) -> bool:
    name = host.strip().lower()
    if not name:
        return False
    try:
        ip: Any = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    for entry in allowed:
        entry = entry.strip().strip("[]").lower()
        if entry == name:
            return True
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _check_path(where: str, path: str, root: str | None) -> None:
    if root is None:
        raise AccessDenied(f"{where}: file providers cannot be created over HTTP unless [http] file_root "
                           "names the directory they must live under")
    base = Path(root).expanduser().resolve()
    # as the file store opens it (~ expanded, relative to the working directory), symlinks followed
    target = Path(path).expanduser().resolve()
    if target != base and base not in target.parents:
        raise AccessDenied(f"{where}: path {path!r} is outside [http] file_root ({root})")
