"""Server settings: defaults, the TOML file, environment variables, overrides and safety checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vecdb.engine.errors import InvalidArgument
from vecdb.server.config import DEFAULT_PORT, ServerConfig, is_loopback, load_config

ADMIN_KEY = "admin-key-0123456789"
ACME_KEY = "acme-key-0123456789"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vecdb.toml"
    path.write_text(text)
    return path


# --- defaults and loopback -------------------------------------------------------------------


def test_defaults_bind_loopback_without_auth() -> None:
    config = load_config(environ={})
    assert config == ServerConfig()
    assert config.host == "127.0.0.1"
    assert config.port == DEFAULT_PORT
    assert config.data_dir == Path("vecdb-data")
    assert not config.auth_enabled
    assert config.address == f"127.0.0.1:{DEFAULT_PORT}"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("192.168.1.5", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com"])
def test_without_keys_only_loopback_may_be_bound(host: str) -> None:
    with pytest.raises(
        InvalidArgument, match=re.escape(f"refusing to listen on {host!r} without API keys")
    ) as raised:
        load_config(environ={}, host=host)
    assert "loopback" in str(raised.value)
    assert "VECDB_ADMIN_KEYS" in str(raised.value)
    # with a key configured the same host is fine
    assert load_config(environ={"VECDB_ADMIN_KEYS": ADMIN_KEY}, host=host).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_hosts_need_no_keys(host: str) -> None:
    assert load_config(environ={}, host=host).host == host


def test_ipv6_address_is_bracketed() -> None:
    assert load_config(environ={}, host="::1", port=7).address == "[::1]:7"


# --- the TOML file ---------------------------------------------------------------------------


def test_full_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        f"""
host = "0.0.0.0"
port = 6000
data_dir = "/var/lib/vecdb"
max_k = 500
max_message_bytes = 1048576
max_workers = 3
max_concurrent_rpcs = 9
grace_seconds = 2.5

[tls]
cert_file = "server.crt"
key_file = "server.key"

[[keys]]
key = "{ADMIN_KEY}"
role = "admin"

[[keys]]
key = "{ACME_KEY}"
tenant = "acme"

[[keys]]
key_env = "GLOBEX_KEY"
tenant = "globex"
""",
    )
    config = load_config(path, environ={"GLOBEX_KEY": "globex-key-0123"})
    assert config.host == "0.0.0.0"
    assert config.port == 6000
    assert config.data_dir == Path("/var/lib/vecdb")
    assert config.max_k == 500
    assert config.max_message_bytes == 1048576
    assert config.max_workers == 3
    assert config.max_concurrent_rpcs == 9
    assert config.grace_seconds == 2.5
    assert config.tls_cert_file == Path("server.crt")
    assert config.tls_key_file == Path("server.key")
    assert config.admin_keys == frozenset({ADMIN_KEY})
    assert dict(config.tenant_keys) == {ACME_KEY: "acme", "globex-key-0123": "globex"}
    assert config.auth_enabled


def test_key_env_reads_the_given_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[[keys]]\nkey_env = "VECDB_TEST_ONLY_KEY"\nrole = "admin"\n')
    config = load_config(path, environ={"VECDB_TEST_ONLY_KEY": ADMIN_KEY})
    assert config.admin_keys == frozenset({ADMIN_KEY})


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 6001\n")
    assert load_config(environ={"VECDB_CONFIG": str(path)}).port == 6001


def test_unknown_settings_are_refused_listing_the_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, 'hostname = "0.0.0.0"\nmax_kk = 3\n')
    with pytest.raises(
        InvalidArgument, match=re.escape("config: unknown settings ['hostname', 'max_kk']")
    ) as raised:
        load_config(path, environ={})
    assert "'host'" in str(raised.value)
    assert "tls, keys" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('keys = "x"', "config: keys must be an array of tables ([[keys]])"),
        ("keys = [1]", "config: keys entry 1 is not a table"),
        (
            '[[keys]]\nkey = "short"\nrole = "admin"',
            "config: keys entry 1 needs a key of 8+ characters",
        ),
        ('[[keys]]\nrole = "admin"', "config: keys entry 1 needs a key of 8+ characters"),
        ('[[keys]]\nkey = 123456789\nrole = "admin"', "keys entry 1 needs a key of 8+ characters"),
        (
            f'[[keys]]\nkey = "{ADMIN_KEY}"\nrole = "admin"\n[[keys]]\nkey = "{ACME_KEY}"\nrole = "reader"',
            'config: keys entry 2 needs role = "admin" or tenant = "<name>"',
        ),
        (f'[[keys]]\nkey = "{ACME_KEY}"\ntenant = 5', "keys entry 1 needs role"),
        (
            '[[keys]]\nkey_env = "NOT_SET_ANYWHERE"\nrole = "admin"',
            "config: keys entry 1 reads $NOT_SET_ANYWHERE, which is not set",
        ),
        (
            f'[[keys]]\nkey = "{ACME_KEY}"\ntenant = "bad tenant"',
            "invalid tenant name 'bad tenant'",
        ),
        (
            f'[[keys]]\nkey = "{ADMIN_KEY}"\nrole = "admin"\n[[keys]]\nkey = "{ADMIN_KEY}"\ntenant = "acme"',
            "a key is configured both as admin and for tenant 'acme'",
        ),
        ('[tls]\ncert_file = "server.crt"', "TLS needs both cert_file and key_file"),
        ('[tls]\nkey_file = "server.key"', "TLS needs both cert_file and key_file"),
        ("port = 70000", "port 70000 is not in 0..65535"),
        ("max_k = 0", "max_k 0 must be at least 1"),
    ],
)
def test_bad_config_files_are_refused_saying_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        load_config(write(tmp_path, text), environ={})


def test_unreadable_or_invalid_toml_names_the_file(tmp_path: Path) -> None:
    broken = write(tmp_path, "port = = 3")
    with pytest.raises(
        InvalidArgument, match=re.escape(f"cannot read config file {str(broken)!r}")
    ):
        load_config(broken, environ={})
    missing = tmp_path / "absent.toml"
    with pytest.raises(
        InvalidArgument, match=re.escape(f"cannot read config file {str(missing)!r}")
    ):
        load_config(missing, environ={})


def test_a_misspelt_tls_setting_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[tls]\ncert = "server.crt"\nkey = "server.key"\n')
    with pytest.raises(InvalidArgument, match="cert"):
        load_config(path, environ={})


def test_one_key_for_two_tenants_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'[[keys]]\nkey = "{ACME_KEY}"\ntenant = "acme"\n'
        f'[[keys]]\nkey = "{ACME_KEY}"\ntenant = "globex"\n',
    )
    with pytest.raises(InvalidArgument, match=r"acme|globex"):
        load_config(path, environ={})


def test_a_setting_of_the_wrong_type_is_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="port"):
        load_config(write(tmp_path, 'port = "6000"\n'), environ={})


# --- environment and overrides ---------------------------------------------------------------


def test_keys_from_the_environment() -> None:
    config = load_config(
        environ={
            "VECDB_ADMIN_KEYS": f" {ADMIN_KEY} , second-admin-key,,",
            "VECDB_TENANT_KEYS": f"acme={ACME_KEY}, globex=globex-key-0123 ,",
        }
    )
    assert config.admin_keys == frozenset({ADMIN_KEY, "second-admin-key"})
    assert dict(config.tenant_keys) == {ACME_KEY: "acme", "globex-key-0123": "globex"}


def test_environment_keys_add_to_the_file_keys(tmp_path: Path) -> None:
    path = write(tmp_path, f'[[keys]]\nkey = "{ACME_KEY}"\ntenant = "acme"\n')
    config = load_config(path, environ={"VECDB_ADMIN_KEYS": ADMIN_KEY})
    assert config.admin_keys == frozenset({ADMIN_KEY})
    assert dict(config.tenant_keys) == {ACME_KEY: "acme"}


@pytest.mark.parametrize("pairs", ["acme", "acme=", f"acme={ACME_KEY},globex"])
def test_malformed_tenant_key_pairs_are_refused(pairs: str) -> None:
    with pytest.raises(
        InvalidArgument, match="VECDB_TENANT_KEYS takes comma-separated tenant=key pairs"
    ):
        load_config(environ={"VECDB_TENANT_KEYS": pairs})


def test_tenant_names_from_the_environment_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="invalid tenant name 'bad tenant'"):
        load_config(environ={"VECDB_TENANT_KEYS": f"bad tenant={ACME_KEY}"})


def test_host_port_and_data_dir_from_the_environment(tmp_path: Path) -> None:
    config = load_config(
        environ={
            "VECDB_HOST": "::1",
            "VECDB_PORT": "6100",
            "VECDB_DATA_DIR": str(tmp_path / "d"),
        }
    )
    assert (config.host, config.port, config.data_dir) == ("::1", 6100, tmp_path / "d")


def test_empty_environment_values_are_ignored() -> None:
    config = load_config(environ={"VECDB_HOST": "", "VECDB_PORT": "", "VECDB_ADMIN_KEYS": ""})
    assert config == ServerConfig()


def test_precedence_is_file_then_environment_then_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 6000\nhost = "127.0.0.2"\nmax_k = 7\n')
    config = load_config(path, environ={"VECDB_PORT": "6001"}, port=6002, host=None)
    assert config.port == 6002  # override beats environment
    assert config.host == "127.0.0.2"  # None overrides are ignored
    assert config.max_k == 7
    assert load_config(path, environ={"VECDB_PORT": "6001"}).port == 6001


def test_short_keys_from_the_environment_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="8"):
        load_config(environ={"VECDB_ADMIN_KEYS": "abc"})


# --- check() on a hand-built config ----------------------------------------------------------


@pytest.mark.parametrize("port", [-1, 65536])
def test_check_refuses_ports_out_of_range(port: int) -> None:
    with pytest.raises(InvalidArgument, match=f"port {port} is not in 0..65535"):
        ServerConfig(port=port).check()


def test_check_accepts_port_zero_and_a_complete_tls_pair() -> None:
    ServerConfig(port=0).check()
    ServerConfig(tls_cert_file=Path("c"), tls_key_file=Path("k")).check()


def test_auth_is_enabled_by_any_key() -> None:
    assert ServerConfig(admin_keys=frozenset({ADMIN_KEY})).auth_enabled
    assert ServerConfig(tenant_keys={ACME_KEY: "acme"}).auth_enabled
    assert not ServerConfig().auth_enabled
