"""Privacy: detectors with checksums, redact-and-restore, and the privacy route."""

from __future__ import annotations

import json

import pytest

from llmswitch import Switch
from llmswitch.errors import BadRequestError, ConfigError
from llmswitch.privacy import Redactor, counts, detect, iban_ok, luhn_ok
from llmswitch.testing import FakeModel

TEXT = ("Mail bob@example.com or call +44 20 7946 0958. Card 4111 1111 1111 1111, "
        "IBAN GB82 WEST 1234 5698 7654 32, SSN 123-45-6789, NINO AB123456C, "
        "key sk-proj-abcdefghijklmnopqrstuvwx, AWS AKIAIOSFODNN7EXAMPLE, "
        "hosts 192.168.1.20 and 2001:db8::1.")


def test_detects_every_kind_with_checksums() -> None:
    assert counts(detect(TEXT)) == {"email": 1, "phone": 1, "card": 1, "iban": 1,
                                    "national_id": 2, "secret": 2, "ip": 2}


@pytest.mark.parametrize("clean", [
    "order 12345 shipped on 2024-01-15 for 3.50 EUR",
    "card 4111 1111 1111 1112",            # fails Luhn
    "IBAN GB82 WEST 1234 5698 7654 33",    # fails mod-97
    "SSN 000-12-3456 is invalid",          # area 000
    "version 1.2.3.4000 of the tool",      # not an IP
    "call me at 1234",                     # too short for a phone
])
def test_no_false_positives_on_near_misses(clean: str) -> None:
    assert detect(clean) == []


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE89 3704 0044 0532 0130 01")


def test_redact_and_restore_round_trip_with_stable_placeholders() -> None:
    r = Redactor()
    first = r.redact("write to bob@example.com")
    second = r.redact("cc bob@example.com and ann@example.org")
    assert first == "write to [EMAIL_1]" and second == "cc [EMAIL_1] and [EMAIL_2]"
    assert r.restore("Sent to [EMAIL_2], [UNKNOWN_9]") == "Sent to ann@example.org, [UNKNOWN_9]"
    assert r.restore(r.redact(TEXT)) == TEXT


def route(action: str, **extra: object) -> dict[str, object]:
    return {"routes": {"p": {"strategy": "privacy", "targets": ["cloud"], "action": action,
                             **extra}}}


async def test_redact_hides_values_from_the_model_and_the_trace() -> None:
    cloud = FakeModel("cloud", [lambda r: "Emailed " + r.messages[-1].text.split()[-1]])
    s = Switch(route("redact"), models={"cloud": cloud})
    out = await s.complete("p", "Please email bob@example.com")
    assert cloud.calls[0].messages[-1].text == "Please email [EMAIL_1]"
    assert out.text == "Emailed bob@example.com"
    assert out.trace is not None
    dumped = json.dumps(out.trace.to_dict())
    assert "bob@example.com" not in dumped
    assert out.trace.attributes["llmswitch.privacy.detected"] == {"email": 1}


async def test_local_action_keeps_sensitive_requests_local() -> None:
    cloud, local = FakeModel("cloud", ["cloud"]), FakeModel("local", ["local"])
    s = Switch(route("local", local="local"), models={"cloud": cloud, "local": local})
    assert (await s.complete("p", "my card is 4111 1111 1111 1111")).text == "local"
    assert (await s.complete("p", "what is 2+2")).text == "cloud"
    assert cloud.call_count == 1 and local.call_count == 1


async def test_block_action_lists_kinds_not_values() -> None:
    s = Switch(route("block"), models={"cloud": FakeModel("cloud")})
    with pytest.raises(BadRequestError, match=r"routes\.p: .*sensitive data \(secret×1\)") as info:
        await s.complete("p", "token=abcdefghijklmnop")
    assert "abcdefghijklmnop" not in str(info.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"action": "local"}, "needs 'local'"),
    ({"action": "shred"}, "action must be one of"),
    ({"action": "redact", "detect": ["names"]}, "unknown kind"),
])
def test_bad_privacy_config(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):  # rejected when the config loads
        Switch(route(**options), models={"cloud": FakeModel("cloud")})  # type: ignore[arg-type]
