"""The scrubber itself: which forms of a secret it finds, what it leaves, and what a provider
says its secrets are."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from llmswitch.config.schema import ProviderConfig
from llmswitch.errors import AllAttemptsFailedError, AuthenticationError
from llmswitch.providers.provider import Provider
from llmswitch.scrub import NO_SECRETS, Scrubber, marker, redact_url, url_secrets

KEY = "sk-proj-Zq9LmX2vB7nR4tY8wK1pD6sF3hJ0aC5eG9iU2oQ7xV4bN8mE1rT6yW3zA5sD0fH"
AWS = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLEKEY"


@pytest.mark.parametrize("form", [
    KEY, f"Bearer {KEY}", quote(AWS, safe=""),
    re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(AWS, safe="")),
    json.dumps(AWS)[1:-1].replace("/", "\\/"), AWS, KEY[:30] + "…",
])
def test_every_form_of_a_secret_is_replaced(form: str) -> None:
    scrubber = Scrubber([KEY, AWS])
    out = scrubber.text(f"header said: {form} (end)")
    assert KEY[:16] not in out and AWS[:16] not in out and "[redacted]" in out
    assert out.startswith("header said: ") and out.endswith(" (end)")


def _entities(text: str, chars: str = "-_/+=") -> str:
    return "".join(f"&#{ord(c)};" if c in chars else c for c in text)


@pytest.mark.parametrize("form", [
    _entities(KEY), _entities(AWS), _entities(KEY).replace("&#45;", "&#x2D;", 1),
    AWS.replace("/", "&sol;").replace("+", "&plus;"), AWS.replace("/", "\\u002f"),
    AWS.replace("/", "%2F", 1),  # one character encoded, the other as sent
    _entities(KEY)[:40] + "…",  # cut after 16+ characters, in entities
    f"Bearer+{KEY}",  # form-encoded blank
])
def test_html_references_and_mixed_encodings_are_replaced(form: str) -> None:
    out = Scrubber([KEY, AWS]).text(f"<p>{form}</p>")
    assert "[redacted]" in out and out.startswith("<p>") and out.endswith("</p>"), out
    for secret in (KEY, AWS):
        assert secret[:16] not in out and _entities(secret)[:16] not in out, out


def test_markers_keep_only_a_vendor_prefix() -> None:
    assert marker(KEY) == "sk-...[redacted]"
    assert marker("AIzaSyD4kP9xQ2mL7vN3bR8tW1cY6hJ0fG5sA2e") == "[redacted]"
    assert marker(AWS) == "[redacted]"
    scrubber = Scrubber([KEY])
    assert scrubber.text(scrubber.text(KEY)) == "sk-...[redacted]"  # idempotent


def test_short_values_and_ordinary_text_are_left_alone() -> None:
    scrubber = Scrubber(["abc", "", None, "sk-ant-api03-" + "x" * 40])
    text = "keys look like sk-ant-api03-…; abc is fine"
    assert scrubber.text(text) == text
    assert not NO_SECRETS and NO_SECRETS.text(text) is text


def test_values_and_errors_are_scrubbed_in_place() -> None:
    scrubber = Scrubber([KEY])
    inner = AuthenticationError(f"bad key {KEY}", hint=f"not {KEY}",
                                body={"error": {"echo": [KEY, 1, None]}})
    group = AllAttemptsFailedError("all failed", [inner])
    cause = ValueError(f"at https://x.test/?key={KEY}")
    group.__cause__ = cause
    scrubber.error(group)
    dumped = json.dumps([str(group), group.args, str(inner), inner.hint, inner.body,
                         str(cause)], default=str)
    assert KEY not in dumped and KEY[:16] not in dumped
    assert inner.body == {"error": {"echo": ["sk-...[redacted]", 1, None]}}


def test_urls() -> None:
    assert redact_url("postgresql://app:pw%40x@db:5432/l?sslmode=require&password=abc") == \
        "postgresql://app:[redacted]@db:5432/l?sslmode=require&password=[redacted]"
    assert redact_url("postgresql://db/ledger") == "postgresql://db/ledger"
    assert redact_url("/var/lib/ledger.sqlite") == "/var/lib/ledger.sqlite"
    assert url_secrets("https://u:p4ssw0rd!@h/v1?key=AIza123456&alt=sse") == [
        "p4ssw0rd!", "AIza123456"]
    # A URL no parser accepts (drivers quote it whole in their errors) still gives its secrets.
    assert url_secrets("postgresql://app:hunter2pw@[::1/db?password=abcd1234") == [
        "hunter2pw", "abcd1234"]
    assert redact_url("postgresql://app:hunter2pw@[::1/db") == "postgresql://app:[redacted]@[::1/db"


def test_provider_secrets_are_computed_once_per_key() -> None:
    env = {"OPENAI_API_KEY": KEY}
    provider = Provider("openai", ProviderConfig(headers={"OpenAI-Organization": "org-1234567890",
                                                          "X-Auth": "Token tok-abcdefgh1234"}),
                        env)
    secrets = provider.secrets()
    assert set(secrets) >= {KEY, "org-1234567890", "Token tok-abcdefgh1234", "tok-abcdefgh1234"}
    first = provider.scrubber()
    assert provider.secrets() is secrets and provider.scrubber() is first
    env["OPENAI_API_KEY"] = KEY + "-rotated"
    assert provider.scrubber() is not first and KEY + "-rotated" in provider.secrets()


def test_provider_without_a_key_still_scrubs_its_headers() -> None:
    provider = Provider("openai", ProviderConfig(headers={"x-proxy-token": "proxy-secret-1"}), {})
    error = AuthenticationError("echo proxy-secret-1")
    provider.scrub(error)
    assert "proxy-secret-1" not in str(error)
