from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from webinar.config import (
    Config,
    ConfigError,
    HttpConfig,
    IceConfig,
    IceServer,
    config_keys,
    load_config,
)

GOOD_TOML = """
data_dir = "/var/lib/webinar"

[http]
host = "127.0.0.1"
port = 9000
public_url = "https://webinar.example.org/"

[ice]
host_addresses = ["192.0.2.10"]
announced_ip = "203.0.113.7"
udp_port_min = 40000
udp_port_max = 40100
servers = [
  { urls = ["turn:turn.example.org:3478?transport=udp"], username = "u", credential = "p" },
  { urls = ["stun:stun.example.org:3478"] },
]

[rooms]
max_cameras = 7
max_participants = 1000

[signalling]
max_message_bytes = 131072
heartbeat_seconds = 5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "webinar.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = load_config(None, {})
    assert config == Config()
    assert config.http.host == "0.0.0.0"
    assert config.http.port == 8080
    assert config.http.base_url == "http://localhost:8080"
    assert config.data_dir == Path("data")
    assert config.ice.servers == ()  # never a public STUN server by default
    assert config.ice.host_addresses == ()
    assert config.ice.udp_port_min is None and config.ice.udp_port_max is None
    assert config.rooms.max_cameras == 4
    assert config.rooms.max_participants == 500
    assert config.signalling.max_message_bytes == 65536
    assert config.signalling.heartbeat_seconds == 20.0


def test_good_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD_TOML), {})
    assert config.data_dir == Path("/var/lib/webinar")
    assert config.http == HttpConfig(
        host="127.0.0.1", port=9000, public_url="https://webinar.example.org"
    )
    assert config.http.base_url == "https://webinar.example.org"
    assert config.ice == IceConfig(
        servers=(
            IceServer(
                urls=("turn:turn.example.org:3478?transport=udp",), username="u", credential="p"
            ),
            IceServer(urls=("stun:stun.example.org:3478",)),
        ),
        host_addresses=("192.0.2.10",),
        announced_ip="203.0.113.7",
        udp_port_min=40000,
        udp_port_max=40100,
    )
    assert config.rooms.max_cameras == 7
    assert config.rooms.max_participants == 1000
    assert config.signalling.max_message_bytes == 131072
    assert config.signalling.heartbeat_seconds == 5.0
    assert isinstance(config.signalling.heartbeat_seconds, float)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        # unknown keys
        ("[ice]\nfoo = 1", "unknown key 'ice.foo'"),
        ("colour = 'red'", "unknown key 'colour'"),
        ("[database]\nurl = 'x'", "unknown key 'database'"),
        (
            "[[ice.servers]]\nurls = ['stun:a']\npassword = 'x'",
            "unknown key 'ice.servers[0].password'",
        ),
        # wrong types
        ("[http]\nport = '9000'", "http.port: expected an integer, got string '9000'"),
        ("[http]\nport = true", "http.port: expected an integer, got boolean True"),
        ("[http]\nport = 80.5", "http.port: expected an integer"),
        ("[http]\nhost = 1", "http.host: expected a string"),
        ("http = 1", "http: expected a table"),
        ("data_dir = 5", "data_dir: expected a path"),
        ("[ice]\nhost_addresses = '127.0.0.1'", "ice.host_addresses: expected a list of strings"),
        ("[ice]\nservers = [1]", "ice.servers[0]: expected a table"),
        ("[ice]\nservers = [{}]", "ice.servers[0].urls: missing"),
        (
            "[signalling]\nheartbeat_seconds = 'soon'",
            "signalling.heartbeat_seconds: expected a number",
        ),
        # bad values and ranges
        ("[http]\nport = 0", "http.port: must be between 1 and 65535, got 0"),
        ("[http]\nport = 70000", "http.port: must be between 1 and 65535"),
        ("[http]\npublic_url = 'example.org'", "http.public_url: must be an absolute"),
        ("[http]\nhost = ''", "http.host: must be a host name"),
        ("[rooms]\nmax_cameras = 0", "rooms.max_cameras: must be between 1 and 7, got 0"),
        ("[rooms]\nmax_cameras = 8", "rooms.max_cameras: must be between 1 and 7, got 8"),
        ("[rooms]\nmax_participants = 0", "rooms.max_participants: must be between"),
        ("[signalling]\nmax_message_bytes = 10", "signalling.max_message_bytes: must be between"),
        (
            "[signalling]\nheartbeat_seconds = 0",
            "signalling.heartbeat_seconds: must be more than 0",
        ),
        ("[ice]\nannounced_ip = 'my.host'", "ice.announced_ip: not an IP address: 'my.host'"),
        ("[ice]\nhost_addresses = ['1.2.3']", "ice.host_addresses: not an IP address"),
        ("[ice]\nudp_port_min = 80\nudp_port_max = 90", "ice.udp_port_min: must be between 1024"),
        ("[ice]\nudp_port_min = 50000\nudp_port_max = 70000", "ice.udp_port_max: must be between"),
        ("[ice]\nudp_port_min = 50001\nudp_port_max = 50000", "ice.udp_port_min: must not exceed"),
        ("[[ice.servers]]\nurls = ['http://x']", "ice.servers[0].urls: must start with stun:"),
        ("[[ice.servers]]\nurls = []", "ice.servers[0].urls: must list at least one URL"),
        ("[[ice.servers]]\nurls = ['turn:x']", "ice.servers[0]: TURN servers need a username"),
        ("[[ice.servers]]\nurls = ['stun:x']\nusername = 'u'", "must be set together"),
        # port range half-set
        (
            "[ice]\nudp_port_min = 40000",
            "ice.udp_port_min: udp_port_min and udp_port_max must be set",
        ),
        (
            "[ice]\nudp_port_max = 40000",
            "ice.udp_port_min: udp_port_min and udp_port_max must be set",
        ),
        # not TOML at all
        ("[http\nport = 1", "invalid TOML"),
    ],
)
def test_bad_file(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, toml), {})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml", {})


def test_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[ice]\nfoo = 1")
    with pytest.raises(ConfigError, match=re.escape(f"config file {path}: unknown key 'ice.foo'")):
        load_config(path, {})


@pytest.mark.parametrize(
    ("env", "check"),
    [
        ({"WEBINAR_HTTP_PORT": "9000"}, lambda c: c.http.port == 9000),
        ({"WEBINAR_HTTP_HOST": "::1"}, lambda c: c.http.base_url == "http://[::1]:8080"),
        (
            {"WEBINAR_HTTP_PUBLIC_URL": "https://w.example/x/"},
            lambda c: c.http.base_url == "https://w.example/x",
        ),
        ({"WEBINAR_DATA_DIR": "/x"}, lambda c: c.data_dir == Path("/x")),
        (
            {"WEBINAR_ICE_HOST_ADDRESSES": "127.0.0.1, 127.0.0.2"},
            lambda c: c.ice.host_addresses == ("127.0.0.1", "127.0.0.2"),
        ),
        ({"WEBINAR_ICE_HOST_ADDRESSES": ""}, lambda c: c.ice.host_addresses == ()),
        (
            {"WEBINAR_ICE_ANNOUNCED_IP": "203.0.113.9"},
            lambda c: c.ice.announced_ip == "203.0.113.9",
        ),
        (
            {"WEBINAR_ICE_UDP_PORT_MIN": "40000", "WEBINAR_ICE_UDP_PORT_MAX": "40010"},
            lambda c: (c.ice.udp_port_min, c.ice.udp_port_max) == (40000, 40010),
        ),
        (
            {
                "WEBINAR_ICE_SERVERS": '[{"urls": ["turn:t.example"], "username": "u",'
                ' "credential": "p"}]'
            },
            lambda c: (
                c.ice.servers
                == (IceServer(urls=("turn:t.example",), username="u", credential="p"),)
            ),
        ),
        ({"WEBINAR_ROOMS_MAX_CAMERAS": "7"}, lambda c: c.rooms.max_cameras == 7),
        ({"WEBINAR_ROOMS_MAX_PARTICIPANTS": "42"}, lambda c: c.rooms.max_participants == 42),
        (
            {"WEBINAR_SIGNALLING_MAX_MESSAGE_BYTES": "2048"},
            lambda c: c.signalling.max_message_bytes == 2048,
        ),
        (
            {"WEBINAR_SIGNALLING_HEARTBEAT_SECONDS": "0.5"},
            lambda c: c.signalling.heartbeat_seconds == 0.5,
        ),
        # Unrelated variables, including other WEBINAR_* ones, are ignored.
        ({"WEBINAR_TEST_SKIP_INSTALL": "1", "HOME": "/root"}, lambda c: c == Config()),
    ],
)
def test_env_override(env: dict[str, str], check: Callable[[Config], bool]) -> None:
    assert check(load_config(None, env))


def test_env_overrides_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD_TOML), {"WEBINAR_HTTP_PORT": "9100"})
    assert config.http.port == 9100
    assert config.http.host == "127.0.0.1"  # from the file


def test_empty_env_unsets_optional_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD_TOML), {"WEBINAR_HTTP_PUBLIC_URL": ""})
    assert config.http.public_url is None
    assert config.http.base_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEBINAR_HTTP_PORT": "nine"}, "WEBINAR_HTTP_PORT (http.port): expected an integer"),
        ({"WEBINAR_HTTP_PORT": "0"}, "http.port: must be between 1 and 65535"),
        ({"WEBINAR_HTTP_PROT": "9000"}, "unknown environment variable WEBINAR_HTTP_PROT"),
        (
            {"WEBINAR_SIGNALLING_HEARTBEAT_SECONDS": "nan"},
            "WEBINAR_SIGNALLING_HEARTBEAT_SECONDS (signalling.heartbeat_seconds): expected",
        ),
        ({"WEBINAR_ICE_SERVERS": "[{"}, "WEBINAR_ICE_SERVERS (ice.servers): invalid JSON"),
        ({"WEBINAR_ICE_SERVERS": '{"urls": []}'}, "expected a list of ICE server tables"),
        ({"WEBINAR_ICE_UDP_PORT_MIN": "40000"}, "must be set together"),
        ({"WEBINAR_DATA_DIR": " "}, "WEBINAR_DATA_DIR (data_dir): expected a path"),
    ],
)
def test_bad_env(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, env)


def test_cli_overrides_win(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD_TOML), {"WEBINAR_HTTP_PORT": "9100"})
    overridden = config.with_overrides(host="127.0.0.2", port=9200, data_dir=tmp_path / "d")
    assert overridden.http.host == "127.0.0.2"
    assert overridden.http.port == 9200
    assert overridden.data_dir == tmp_path / "d"
    assert overridden.ice == config.ice
    assert config.with_overrides() == config
    with pytest.raises(ConfigError, match=r"http\.port"):
        config.with_overrides(port=0)


def test_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.http.port = 1  # type: ignore[misc]


def test_every_key_has_an_env_var() -> None:
    assert config_keys() == [
        ("data_dir", "WEBINAR_DATA_DIR"),
        ("http.host", "WEBINAR_HTTP_HOST"),
        ("http.port", "WEBINAR_HTTP_PORT"),
        ("http.public_url", "WEBINAR_HTTP_PUBLIC_URL"),
        ("http.trusted_proxies", "WEBINAR_HTTP_TRUSTED_PROXIES"),
        ("http.header_timeout_seconds", "WEBINAR_HTTP_HEADER_TIMEOUT_SECONDS"),
        ("http.embed_origins", "WEBINAR_HTTP_EMBED_ORIGINS"),
        ("ice.servers", "WEBINAR_ICE_SERVERS"),
        ("ice.host_addresses", "WEBINAR_ICE_HOST_ADDRESSES"),
        ("ice.announced_ip", "WEBINAR_ICE_ANNOUNCED_IP"),
        ("ice.udp_port_min", "WEBINAR_ICE_UDP_PORT_MIN"),
        ("ice.udp_port_max", "WEBINAR_ICE_UDP_PORT_MAX"),
        ("rooms.max_cameras", "WEBINAR_ROOMS_MAX_CAMERAS"),
        ("rooms.max_participants", "WEBINAR_ROOMS_MAX_PARTICIPANTS"),
        ("rooms.max_rooms", "WEBINAR_ROOMS_MAX_ROOMS"),
        ("signalling.max_message_bytes", "WEBINAR_SIGNALLING_MAX_MESSAGE_BYTES"),
        ("signalling.heartbeat_seconds", "WEBINAR_SIGNALLING_HEARTBEAT_SECONDS"),
        ("signalling.hello_timeout_seconds", "WEBINAR_SIGNALLING_HELLO_TIMEOUT_SECONDS"),
        ("signalling.max_sockets_per_address", "WEBINAR_SIGNALLING_MAX_SOCKETS_PER_ADDRESS"),
        ("turn.urls", "WEBINAR_TURN_URLS"),
        ("turn.secret", "WEBINAR_TURN_SECRET"),
        ("turn.ttl_seconds", "WEBINAR_TURN_TTL_SECONDS"),
        ("admin.token", "WEBINAR_ADMIN_TOKEN"),
        ("recording.quota_mb", "WEBINAR_RECORDING_QUOTA_MB"),
        ("recording.composed", "WEBINAR_RECORDING_COMPOSED"),
        ("recording.composed_height", "WEBINAR_RECORDING_COMPOSED_HEIGHT"),
        ("recording.composed_preset", "WEBINAR_RECORDING_COMPOSED_PRESET"),
        ("recording.composed_video_kbit", "WEBINAR_RECORDING_COMPOSED_VIDEO_KBIT"),
        ("uploads.max_file_mb", "WEBINAR_UPLOADS_MAX_FILE_MB"),
        ("uploads.quota_mb", "WEBINAR_UPLOADS_QUOTA_MB"),
        ("uploads.clamd_socket", "WEBINAR_UPLOADS_CLAMD_SOCKET"),
        ("uploads.require_scan", "WEBINAR_UPLOADS_REQUIRE_SCAN"),
        ("uploads.scan_timeout_seconds", "WEBINAR_UPLOADS_SCAN_TIMEOUT_SECONDS"),
        ("uploads.max_pages", "WEBINAR_UPLOADS_MAX_PAGES"),
        ("content.external_providers", "WEBINAR_CONTENT_EXTERNAL_PROVIDERS"),
        ("ticketing.min_lead_minutes", "WEBINAR_TICKETING_MIN_LEAD_MINUTES"),
        ("ticketing.max_lead_days", "WEBINAR_TICKETING_MAX_LEAD_DAYS"),
        ("ticketing.max_active_events", "WEBINAR_TICKETING_MAX_ACTIVE_EVENTS"),
        ("ticketing.usable_days", "WEBINAR_TICKETING_USABLE_DAYS"),
        ("ticketing.code_early_minutes", "WEBINAR_TICKETING_CODE_EARLY_MINUTES"),
        ("ticketing.code_late_minutes", "WEBINAR_TICKETING_CODE_LATE_MINUTES"),
        ("ticketing.wrong_entries_per_address", "WEBINAR_TICKETING_WRONG_ENTRIES_PER_ADDRESS"),
        ("ticketing.wrong_entries_per_event", "WEBINAR_TICKETING_WRONG_ENTRIES_PER_EVENT"),
        ("mail.smtp_host", "WEBINAR_MAIL_SMTP_HOST"),
        ("mail.smtp_port", "WEBINAR_MAIL_SMTP_PORT"),
        ("mail.smtp_security", "WEBINAR_MAIL_SMTP_SECURITY"),
        ("mail.smtp_username", "WEBINAR_MAIL_SMTP_USERNAME"),
        ("mail.smtp_password", "WEBINAR_MAIL_SMTP_PASSWORD"),
        ("mail.from_address", "WEBINAR_MAIL_FROM_ADDRESS"),
        ("mail.outbox_dir", "WEBINAR_MAIL_OUTBOX_DIR"),
        ("payments.stripe_secret_key", "WEBINAR_PAYMENTS_STRIPE_SECRET_KEY"),
        ("payments.stripe_webhook_secret", "WEBINAR_PAYMENTS_STRIPE_WEBHOOK_SECRET"),
        ("payments.stripe_api_url", "WEBINAR_PAYMENTS_STRIPE_API_URL"),
        ("payments.webhook_tolerance_seconds", "WEBINAR_PAYMENTS_WEBHOOK_TOLERANCE_SECONDS"),
        ("tls.cert_file", "WEBINAR_TLS_CERT_FILE"),
        ("tls.key_file", "WEBINAR_TLS_KEY_FILE"),
        ("lifecycle.drain_seconds", "WEBINAR_LIFECYCLE_DRAIN_SECONDS"),
        ("log.format", "WEBINAR_LOG_FORMAT"),
        ("log.level", "WEBINAR_LOG_LEVEL"),
        ("webhooks.timeout_seconds", "WEBINAR_WEBHOOKS_TIMEOUT_SECONDS"),
        ("webhooks.max_attempts", "WEBINAR_WEBHOOKS_MAX_ATTEMPTS"),
        ("webhooks.retry_base_seconds", "WEBINAR_WEBHOOKS_RETRY_BASE_SECONDS"),
        ("webhooks.allow_private_addresses", "WEBINAR_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES"),
        ("webhooks.log_retention_days", "WEBINAR_WEBHOOKS_LOG_RETENTION_DAYS"),
        ("server.workers", "WEBINAR_SERVER_WORKERS"),
        ("server.worker_port_base", "WEBINAR_SERVER_WORKER_PORT_BASE"),
        ("cluster.redis_url", "WEBINAR_CLUSTER_REDIS_URL"),
        ("cluster.pipe_host", "WEBINAR_CLUSTER_PIPE_HOST"),
        ("cluster.node_address", "WEBINAR_CLUSTER_NODE_ADDRESS"),
        ("cluster.node_capacity", "WEBINAR_CLUSTER_NODE_CAPACITY"),
        ("cluster.node_cpu_limit", "WEBINAR_CLUSTER_NODE_CPU_LIMIT"),
        ("cluster.node_url", "WEBINAR_CLUSTER_NODE_URL"),
        ("cluster.shared_dir", "WEBINAR_CLUSTER_SHARED_DIR"),
        ("cluster.database_url", "WEBINAR_CLUSTER_DATABASE_URL"),
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEBINAR_HTTP_TRUSTED_PROXIES": "10.0.0.0/8,nope"}, "http.trusted_proxies: not an IP"),
        ({"WEBINAR_TLS_CERT_FILE": "/etc/cert.pem"}, "cert_file and key_file must be set"),
        ({"WEBINAR_LIFECYCLE_DRAIN_SECONDS": "-1"}, "lifecycle.drain_seconds: must be between"),
        ({"WEBINAR_LOG_FORMAT": "xml"}, "log.format: must be one of text, json"),
        ({"WEBINAR_LOG_LEVEL": "loud"}, "log.level: must be one of"),
        ({"WEBINAR_WEBHOOKS_MAX_ATTEMPTS": "0"}, "webhooks.max_attempts: must be between 1"),
        ({"WEBINAR_WEBHOOKS_TIMEOUT_SECONDS": "0"}, "webhooks.timeout_seconds: must be"),
        ({"WEBINAR_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "maybe"}, "expected a boolean"),
        ({"WEBINAR_TLS_BOGUS": "1"}, "unknown environment variable WEBINAR_TLS_BOGUS"),
    ],
)
def test_bad_operations_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, env)


def test_operations_settings_from_file_and_env(tmp_path: Path) -> None:
    text = """
[http]
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
[tls]
cert_file = "/etc/letsencrypt/live/w/fullchain.pem"
key_file = "/etc/letsencrypt/live/w/privkey.pem"
[lifecycle]
drain_seconds = 120
[log]
format = "json"
[webhooks]
max_attempts = 3
"""
    config = load_config(write(tmp_path, text), {"WEBINAR_LOG_LEVEL": "debug"})
    assert config.http.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert config.tls.enabled and config.tls.key_file == Path("/etc/letsencrypt/live/w/privkey.pem")
    assert config.lifecycle.drain_seconds == 120.0
    assert (config.log.format, config.log.level) == ("json", "debug")
    assert config.webhooks.max_attempts == 3
    assert config.base_url == "https://localhost:8080"  # TLS on, no public_url


def test_docs_mention_every_key() -> None:
    docs = Path(__file__).parents[2] / "docs" / "configuration.md"
    text = docs.read_text(encoding="utf-8")
    for dotted, env_var in config_keys():
        name = dotted.rsplit(".", 1)[-1]
        assert f"`{name}`" in text, dotted
        assert env_var in text, env_var


def test_docs_example_loads(tmp_path: Path) -> None:
    docs = Path(__file__).parents[2] / "docs" / "configuration.md"
    match = re.search(r"```toml\n(.*?)```", docs.read_text(encoding="utf-8"), re.DOTALL)
    assert match is not None
    config = load_config(write(tmp_path, match.group(1)), {})
    assert config.http.public_url == "https://webinar.example.org"
    assert (config.ice.udp_port_min, config.ice.udp_port_max) == (40000, 40999)


def test_workers_from_file_env_and_auto(tmp_path: Path) -> None:
    assert load_config(None, {}).server.worker_count == 1
    config = load_config(write(tmp_path, "[server]\nworkers = 3\n"), {})
    assert config.server.worker_count == 3
    auto = load_config(write(tmp_path, '[server]\nworkers = "auto"\n'), {})
    assert auto.server.worker_count == len(os.sched_getaffinity(0))
    assert load_config(None, {"WEBINAR_SERVER_WORKERS": "2"}).server.worker_count == 2
    assert load_config(None, {"WEBINAR_SERVER_WORKERS": "auto"}).server.workers == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nworkers = 0\n", "server.workers: must be between 1 and 256 or auto, got 0"),
        ('[server]\nworkers = "many"\n', "expected a number of workers or auto, got 'many'"),
        ("[server]\nworkers = true\n", "server.workers: expected a number of workers"),
        ("[server]\nworker_port_base = 80\n", "server.worker_port_base: must be between"),
        ('[cluster]\nredis_url = "http://x"\n', "cluster.redis_url: must be a redis://"),
        ('[cluster]\npipe_host = "nope"\n', "cluster.pipe_host: not an IP address"),
        (
            '[cluster]\ndatabase_url = "mysql://db/webinar"\n',
            "cluster.database_url: must be a postgresql:// or postgres:// URL",
        ),
        ('[cluster]\ndatabase_url = "postgresql://"\n', "cluster.database_url: names no server"),
    ],
)
def test_bad_worker_settings(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, text), {})


def test_redis_urls_accepted() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://h:6380", "unix:///run/redis.sock"):
        assert load_config(None, {"WEBINAR_CLUSTER_REDIS_URL": url}).cluster.redis_url == url


def test_a_node_needs_shared_redis_and_checks_its_keys(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"cluster\.node_address: a node needs cluster\.redis_url"
    ):
        load_config(None, {"WEBINAR_CLUSTER_NODE_ADDRESS": "10.0.0.5"})
    with pytest.raises(ConfigError, match=r"cluster\.node_address: not an IP address"):
        load_config(None, {"WEBINAR_CLUSTER_NODE_ADDRESS": "node-a"})
    with pytest.raises(ConfigError, match=r"cluster\.node_address: must be an address other"):
        load_config(None, {"WEBINAR_CLUSTER_NODE_ADDRESS": "0.0.0.0"})
    with pytest.raises(ConfigError, match=r"cluster\.node_url"):
        load_config(None, {"WEBINAR_CLUSTER_NODE_URL": "ftp://x"})
    with pytest.raises(ConfigError, match=r"a node needs cluster\.database_url"):
        load_config(
            None,
            {
                "WEBINAR_CLUSTER_NODE_ADDRESS": "10.0.0.5",
                "WEBINAR_CLUSTER_REDIS_URL": "redis://10.0.0.1:6379/0",
            },
        )
    env = {
        "WEBINAR_CLUSTER_NODE_ADDRESS": "10.0.0.5",
        "WEBINAR_CLUSTER_REDIS_URL": "redis://10.0.0.1:6379/0",
        "WEBINAR_CLUSTER_DATABASE_URL": "postgresql://w:p@10.0.0.1/webinar",
        "WEBINAR_HTTP_PORT": "8443",
        "WEBINAR_SERVER_WORKERS": "3",
    }
    config = load_config(None, env)
    assert config.cluster.is_node
    assert config.node_url == "http://10.0.0.5:8443"
    assert config.node_capacity == 3 * 250
    assert config.shared_dir == config.data_dir
    config = load_config(
        None,
        {
            **env,
            "WEBINAR_CLUSTER_NODE_URL": "https://b.example.org/",
            "WEBINAR_CLUSTER_NODE_CAPACITY": "40",
            "WEBINAR_CLUSTER_SHARED_DIR": str(tmp_path),
        },
    )
    assert config.node_url == "https://b.example.org"
    assert config.node_capacity == 40
    assert config.shared_dir == tmp_path
    assert not Config().cluster.is_node
