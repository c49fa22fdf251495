"""Sensitive-data detection and redact-and-restore (used by `strategy: privacy`)."""

from llmswitch.privacy.detectors import KINDS, Finding, counts, detect, iban_ok, luhn_ok
from llmswitch.privacy.redact import Redactor

__all__ = ["KINDS", "Finding", "Redactor", "counts", "detect", "iban_ok", "luhn_ok"]
