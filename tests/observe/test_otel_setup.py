"""How OpenTelemetry export is wired: the config's choices, and that a process without
OpenTelemetry (or with only its API) never imports or breaks on it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from llmswitch import ConfigError, Switch
from llmswitch.observe.otel import OtelObserver
from llmswitch.testing import FakeModel


def otel_observers(observe: dict[str, object]) -> list[OtelObserver]:
    switch = Switch({"observe": {"ledger": False, **observe}},
                    models={"m": FakeModel("m", ["x"])})
    return [o for o in switch.observers if isinstance(o, OtelObserver)]


def test_by_default_the_global_providers_are_used() -> None:
    [observer] = otel_observers({})
    assert observer.provider is None  # no provider of our own
    [explicit] = otel_observers({"otel": {"exporter": "global"}})
    assert explicit.provider is None


def test_otel_false_turns_export_off() -> None:
    assert otel_observers({"otel": False}) == []


def test_an_unknown_exporter_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="'otlp', 'console' or 'global'"):
        otel_observers({"otel": {"exporter": "zipkin"}})


def run_python(*pieces: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["LLMSWITCH_LEDGER"] = "off"
    code = "\n".join(textwrap.dedent(p) for p in pieces)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env, check=False)


CALL = """
    from llmswitch import Switch
    from llmswitch.testing import FakeModel
    switch = Switch({}, models={"m": FakeModel("m", ["x"])})
    assert switch.complete_sync("m", "hi").text == "x"
    switch.close()
"""


def test_a_process_without_opentelemetry_never_imports_it() -> None:
    done = run_python("""
        import sys
        import llmswitch
        assert not [m for m in sys.modules if m.startswith("opentelemetry")], "at import"
    """, CALL, """
        loaded = [m for m in sys.modules if m.startswith("opentelemetry")]
        assert not loaded, loaded
    """)
    assert done.returncode == 0, done.stderr


def test_with_only_the_api_and_no_provider_nothing_breaks_or_is_exported() -> None:
    # The application imported the API but set no provider; the SDK and the semantic
    # conventions are made unimportable, as in an install of opentelemetry-api alone.
    done = run_python("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.startswith(("opentelemetry.sdk", "opentelemetry.semconv")):
                    raise ImportError(f"blocked: {name}")
        sys.meta_path.insert(0, Block())
        import opentelemetry.trace, opentelemetry.metrics
    """, CALL, """
        assert "opentelemetry.sdk" not in sys.modules
        print("ok")
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "OpenTelemetry" not in done.stderr  # no warning: nobody asked for telemetry


def test_with_the_api_and_no_provider_the_noop_path_is_taken() -> None:
    done = run_python("""
        import sys
        import opentelemetry.trace, opentelemetry.metrics
    """, CALL, """
        assert "opentelemetry.sdk.trace" not in sys.modules  # nothing of ours pulls the SDK in
        print("ok")
    """)
    assert done.returncode == 0, done.stderr
    assert "OpenTelemetry" not in done.stderr


def test_a_provider_set_after_the_first_call_is_picked_up() -> None:
    done = run_python("""
        import opentelemetry.trace as api
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from llmswitch import Switch
        from llmswitch.observe.otel import SpanExport
        from llmswitch.testing import FakeModel
        SpanExport.RECHECK_S = 0.0
        switch = Switch({}, models={"m": FakeModel("m", ["x"])})
        switch.complete_sync("m", "before")
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        api.set_tracer_provider(provider)
        switch.complete_sync("m", "after")
        switch.close()
        print(len(exporter.get_finished_spans()))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
