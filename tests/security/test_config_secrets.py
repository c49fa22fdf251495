"""Secrets in the observe configuration: a PostgreSQL ledger DSN's password never appears in
`report` / `traces` errors, and OpenTelemetry exporter headers never appear in `repr` or dumps
of the configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llmswitch.cli.main import cli

PASSWORD = "Sup3rS3cretPw"


@pytest.mark.parametrize("dsn", [
    f"postgresql://app:{PASSWORD}@127.0.0.1:1/ledger",
    f"postgresql://app:{PASSWORD}%zz@127.0.0.1:1/ledger",  # libpq quotes the bad token
    f"postgres://127.0.0.1:1/ledger?password={PASSWORD}%zz",
    f"postgresql://app:{PASSWORD}@[::1/ledger",  # no URL parser reads it; libpq quotes it
])
@pytest.mark.parametrize("command", [["report"], ["report", "--json"], ["traces"],
                                     ["traces", "--json"], ["traces", "abc123"],
                                     ["keys", "list", "--json"], ["keys", "revoke", "k1"]])
def test_report_and_traces_errors_hide_the_dsn_password(dsn: str, command: list[str],
                                                         tmp_path: Path) -> None:
    pytest.importorskip("psycopg", reason="psycopg not installed (extra postgres)")
    config = tmp_path / "llmswitch.yaml"
    config.write_text(f"observe:\n  ledger: '{dsn}'\n", encoding="utf-8")
    result = CliRunner().invoke(cli, [*command, "--config", str(config)])
    assert result.exit_code == 1
    assert "ledger" in result.output
    assert PASSWORD not in result.output, result.output


def test_unreadable_postgres_ledger_error_hides_the_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger that connects but cannot be read (no tables, no rights) names it without
    its password."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg not installed (extra postgres)")
    from llmswitch.observe import store

    class Unreadable:
        def __init__(self, url: str) -> None:
            self.url = url

        def __enter__(self) -> Unreadable:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def attempts(self, since: Any = None, **kw: Any) -> Any:
            raise psycopg.errors.InsufficientPrivilege(
                f"permission denied for table attempts (connecting as {self.url})")

        requests = attempts

    monkeypatch.setattr(store, "LedgerStore", Unreadable)
    config = tmp_path / "llmswitch.yaml"
    config.write_text(f"observe:\n  ledger: postgresql://app:{PASSWORD}@db.internal/ledger\n",
                      encoding="utf-8")
    for command in (["report"], ["traces", "--json"]):
        result = CliRunner().invoke(cli, [*command, "--config", str(config)])
        assert result.exit_code == 1
        assert "db.internal" in result.output  # still says which ledger
        assert PASSWORD not in result.output, result.output


def test_otel_exporter_headers_stay_out_of_repr_and_dumps() -> None:
    from llmswitch.config.loader import config_from_dict
    from llmswitch.observe.config import parse_observe

    token = "otlp-Bearer-9f8e7d6c5b4a"
    data = {"observe": {"otel": {"endpoint": "http://127.0.0.1:4318/v1/traces",
                                 "headers": {"authorization": f"Bearer {token}",
                                             "x-honeycomb-team": token}}}}
    config = config_from_dict(data)
    observe = parse_observe(config.observe, {}, config.source)
    assert observe.otel is not None
    assert observe.otel.headers["x-honeycomb-team"] == token  # still sent to the exporter
    shown = {
        "repr(config)": repr(config), "str(config)": str(config),
        "model_dump": json.dumps(config.model_dump(), default=str),
        "model_dump_json": config.model_dump_json(),
        "repr(observe)": repr(observe), "repr(otel)": repr(observe.otel),
    }
    for where, text in shown.items():
        assert token not in text, f"{where}: {text}"


def test_provider_base_url_and_gateway_state_secrets_stay_out_of_repr_and_dumps() -> None:
    from llmswitch.config.loader import config_from_dict

    secrets = ("basePw-7Yx2Kq9", "qKey-4Rt8Lm3Vn6", "redisPw-5Hd2Zs8")
    config = config_from_dict({
        "providers": {"proxy": {"base_url": f"https://u:{secrets[0]}@gw.test/v1?key={secrets[1]}"},
                      "plain": {"base_url": "http://127.0.0.1:8000/v1"}},
        "gateway": {"state": f"redis://:{secrets[2]}@127.0.0.1:6379/0"}})
    assert config.providers["proxy"].base_url is not None
    assert secrets[0] in config.providers["proxy"].base_url  # still used to connect
    assert config.gateway["state"].startswith("redis://:redisPw")
    shown = {
        "repr(config)": repr(config), "str(config)": str(config),
        "model_dump": json.dumps(config.model_dump(), default=str),
        "model_dump_json": config.model_dump_json(),
        "repr(provider)": repr(config.providers["proxy"]),
    }
    for where, text in shown.items():
        assert "gw.test" in text, where  # still says where
        for secret in secrets:
            assert secret not in text, f"{where}: {text}"
