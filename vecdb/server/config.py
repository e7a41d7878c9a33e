"""Server settings: from a TOML file, the environment and command-line flags, in that order.

A TOML file looks like::

    host = "0.0.0.0"
    port = 50051
    data_dir = "/var/lib/vecdb"
    max_k = 10000

    [tls]
    cert_file = "server.crt"
    key_file = "server.key"

    [[keys]]
    key = "a-long-random-admin-key"
    role = "admin"

    [[keys]]
    key_env = "ACME_KEY"        # read the key from this environment variable
    tenant = "acme"

Environment: ``VECDB_CONFIG`` (path of the TOML file), ``VECDB_ADMIN_KEYS`` (comma-separated),
``VECDB_TENANT_KEYS`` (comma-separated ``tenant=key`` pairs), ``VECDB_DATA_DIR``, ``VECDB_HOST``,
``VECDB_PORT``.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from vecdb.engine.errors import InvalidArgument
from vecdb.engine.schema import check_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_PORT = 50051
MIB = 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs to start."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = Path("vecdb-data")
    admin_keys: frozenset[str] = frozenset()
    tenant_keys: Mapping[str, str] = field(default_factory=dict)  # key -> tenant
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    max_k: int = 10_000
    max_message_bytes: int = 64 * MIB
    max_workers: int = 8
    max_concurrent_rpcs: int = 64
    grace_seconds: float = 10.0

    @property
    def auth_enabled(self) -> bool:
        """True when any API key is configured."""
        return bool(self.admin_keys or self.tenant_keys)

    @property
    def address(self) -> str:
        """The host:port to bind (IPv6 hosts bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def check(self) -> None:
        """Raise InvalidArgument if the settings are unsafe or inconsistent."""
        if not 0 <= self.port <= 65535:
            raise InvalidArgument(f"port {self.port} is not in 0..65535")
        if self.max_k < 1:
            raise InvalidArgument(f"max_k {self.max_k} must be at least 1")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise InvalidArgument("TLS needs both cert_file and key_file")
        if not self.auth_enabled and not is_loopback(self.host):
            raise InvalidArgument(
                f"refusing to listen on {self.host!r} without API keys: with no keys configured "
                "vecdb only binds loopback (127.0.0.1, ::1, localhost). Configure admin/tenant "
                "keys (config file or VECDB_ADMIN_KEYS) to listen elsewhere."
            )
        for key, tenant in self.tenant_keys.items():
            check_name("tenant", tenant)
            if key in self.admin_keys:
                raise InvalidArgument(
                    f"a key is configured both as admin and for tenant {tenant!r}"
                )


def is_loopback(host: str) -> bool:
    """Return True if ``host`` names only the loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


MIN_KEY_LENGTH = 8
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "host": (str,),
    "port": (int,),
    "data_dir": (str,),
    "max_k": (int,),
    "max_message_bytes": (int,),
    "max_workers": (int,),
    "max_concurrent_rpcs": (int,),
    "grace_seconds": (int, float),
}


def _add_key(
    admin: set[str], tenants: dict[str, str], key: str, tenant: str | None, where: str
) -> None:
    """Record one key (admin when ``tenant`` is None), refusing short or ambiguous keys."""
    if len(key) < MIN_KEY_LENGTH:
        raise InvalidArgument(f"{where} needs a key of {MIN_KEY_LENGTH}+ characters")
    other = tenants.get(key)
    if (key in admin and tenant is not None) or (other is not None and tenant is None):
        named = tenant if tenant is not None else other
        raise InvalidArgument(
            f"{where}: a key is configured both as admin and for tenant {named!r}"
        )
    if other is not None and other != tenant:
        raise InvalidArgument(
            f"{where}: a key is configured for both tenant {other!r} and tenant {tenant!r}"
        )
    if tenant is None:
        admin.add(key)
    else:
        tenants[key] = tenant


def _keys_from_toml(entries: object, env: Mapping[str, str]) -> tuple[set[str], dict[str, str]]:
    admin: set[str] = set()
    tenants: dict[str, str] = {}
    if not isinstance(entries, list):
        raise InvalidArgument("config: keys must be an array of tables ([[keys]])")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise InvalidArgument(f"config: keys entry {number} is not a table")
        key = entry.get("key")
        if key is None and "key_env" in entry:
            key = env.get(str(entry["key_env"]))
            if not key:
                raise InvalidArgument(
                    f"config: keys entry {number} reads ${entry['key_env']}, which is not set"
                )
        if not isinstance(key, str):
            raise InvalidArgument(f"config: keys entry {number} needs a key of 8+ characters")
        where = f"config: keys entry {number}"
        if entry.get("role") == "admin":
            _add_key(admin, tenants, key, None, where)
        elif isinstance(entry.get("tenant"), str):
            _add_key(admin, tenants, key, entry["tenant"], where)
        else:
            raise InvalidArgument(
                f'config: keys entry {number} needs role = "admin" or tenant = "<name>"'
            )
    return admin, tenants


def load_config(
    path: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: object
) -> ServerConfig:
    """Return the server settings from a TOML file, the environment, then ``overrides``."""
    env = os.environ if environ is None else environ
    config = ServerConfig()
    if path is None and env.get("VECDB_CONFIG"):
        path = Path(env["VECDB_CONFIG"])
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise InvalidArgument(f"cannot read config file {str(path)!r}: {error}") from error
        admin, tenants = _keys_from_toml(data.pop("keys", []), env)
        tls = data.pop("tls", {})
        if not isinstance(tls, dict) or set(tls) - {"cert_file", "key_file"}:
            raise InvalidArgument(
                f"config: [tls] takes cert_file and key_file only, got {sorted(tls)}"
                if isinstance(tls, dict)
                else "config: tls must be a table ([tls])"
            )
        known = {
            "host",
            "port",
            "data_dir",
            "max_k",
            "max_message_bytes",
            "max_workers",
            "max_concurrent_rpcs",
            "grace_seconds",
        }
        unknown = set(data) - known
        if unknown:
            raise InvalidArgument(
                f"config: unknown settings {sorted(unknown)} (allowed: {sorted(known)}, tls, keys)"
            )
        for name, value in data.items():
            allowed = _SETTING_TYPES[name]
            if isinstance(value, bool) or not isinstance(value, allowed):
                kinds = " or ".join(t.__name__ for t in allowed)
                raise InvalidArgument(f"config: {name} must be {kinds}, got {value!r}")
        if "data_dir" in data:
            data["data_dir"] = Path(data["data_dir"])
        config = replace(config, admin_keys=frozenset(admin), tenant_keys=tenants)
        config = replace(config, **data)
        if tls:
            config = replace(
                config,
                tls_cert_file=Path(tls["cert_file"]) if "cert_file" in tls else None,
                tls_key_file=Path(tls["key_file"]) if "key_file" in tls else None,
            )
    admin_keys = set(config.admin_keys)
    tenant_keys = dict(config.tenant_keys)
    for key in env.get("VECDB_ADMIN_KEYS", "").split(","):
        if key.strip():
            _add_key(admin_keys, tenant_keys, key.strip(), None, "VECDB_ADMIN_KEYS")
    for pair in env.get("VECDB_TENANT_KEYS", "").split(","):
        if not pair.strip():
            continue
        tenant, sep, key = pair.strip().partition("=")
        if not sep or not key:
            raise InvalidArgument("VECDB_TENANT_KEYS takes comma-separated tenant=key pairs")
        _add_key(admin_keys, tenant_keys, key, tenant, "VECDB_TENANT_KEYS")
    config = replace(config, admin_keys=frozenset(admin_keys), tenant_keys=tenant_keys)
    for name, var, kind in (
        ("data_dir", "VECDB_DATA_DIR", Path),
        ("host", "VECDB_HOST", str),
        ("port", "VECDB_PORT", int),
    ):
        if env.get(var):
            try:
                value = kind(env[var])
            except ValueError:
                raise InvalidArgument(f"{var}={env[var]!r} is not a valid {name}") from None
            config = replace(config, **{name: value})  # type: ignore[arg-type]
    given = {k: v for k, v in overrides.items() if v is not None}
    config = replace(config, **given)  # type: ignore[arg-type]
    config.check()
    return config
