"""The catalog: each scenario declared once, and from it its asset, its command line, its
docs entry and its nightly job. A scenario module added to the package appears in all
four with no edit anywhere else."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deliverydags.cli.main import main
from deliverydags.cli.scenarios import catalog_markdown
from deliverydags.run.scenario import CHAOS, DELIVERY
from deliverydags.run.settings import ConfigError
from deliverydags.scenarios import catalog, get
from tests.conftest import ROOT

EXPECTED = {
    "message_soak": DELIVERY,
    "throughput_ladder": DELIVERY,
    "idempotency": DELIVERY,
    "payload_integrity": DELIVERY,
    "tenant_isolation": DELIVERY,
    "overload": DELIVERY,
    "chaos_consumer_kill": CHAOS,
    "chaos_memory": CHAOS,
    "chaos_pool_exhaustion": CHAOS,
    "chaos_redis_outage": CHAOS,
}


def test_the_catalog_holds_the_delivery_and_chaos_scenarios() -> None:
    assert {name: s.group for name, s in catalog().items()} == EXPECTED
    with pytest.raises(ConfigError, match="unknown scenario 'nope'; the catalog has"):
        get("nope")


def test_docs_scenarios_md_is_the_catalog() -> None:
    committed = (ROOT / "docs" / "scenarios.md").read_text()
    assert committed == catalog_markdown(), (
        "docs/scenarios.md is stale: .venv/bin/deliverydags scenarios > docs/scenarios.md"
    )


def _help(capsys: pytest.CaptureFixture, name: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["run", name, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_every_knob_is_an_option_of_its_command(capsys: pytest.CaptureFixture) -> None:
    for name in catalog():
        text = _help(capsys, name)
        for option in ("--deadlines", "--target-arg", "--target-url", "--json", "--work-dir"):
            assert option in text, (name, option)
        if name != "throughput_ladder":  # steps of rates instead
            assert "--rate" in text and "--duration" in text, name
    soak = _help(capsys, "message_soak")
    assert "--p95-ms" in soak and "--max-error-rate" in soak and "--script" in soak
    ladder = _help(capsys, "throughput_ladder")
    assert "--steps" in ladder and "--step-duration" in ladder and "--batch" in ladder
    pool = _help(capsys, "chaos_pool_exhaustion")
    assert "--breaker, --no-breaker" in pool and "--pool-size" in pool


def test_a_bad_knob_is_one_line_and_exit_2(capsys: pytest.CaptureFixture) -> None:
    # Refused before anything starts: no process, no port.
    args = ["run", "chaos_consumer_kill", "--inject-after", "100", "--duration", "10"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "inject_after_s (100) must be less than duration_s (10)" in err
    assert main(["run", "chaos_memory", "--target-url", "http://127.0.0.1:9"]) == 2
    assert "cannot run against a target URL" in capsys.readouterr().err


PROBE = '''
"""A probe scenario the test adds: one module, nothing else."""
from deliverydags.run.scenario import CheckSpec, Scenario, ScenarioConfig

class ProbeConfig(ScenarioConfig):
    rate: float = 7.0
    step_duration_s: float = 3.0

SCENARIO = Scenario(
    name="probe_added",
    description="A scenario added as one module.",
    config=ProbeConfig,
    checks=(CheckSpec("zero_loss", "nothing lost"),),
    setup=lambda config, env, stack: (env.settings(rate=config.rate), []),
)
'''


@pytest.mark.integration  # a fresh interpreter: the wiring is built at import
def test_a_scenario_added_as_one_module_gets_asset_command_docs_and_job(
    tmp_path: Path,
) -> None:
    (tmp_path / "probe_added.py").write_text(PROBE)
    script = textwrap.dedent(
        f"""
        import deliverydags.scenarios as scenarios
        scenarios.__path__.append({str(tmp_path)!r})
        from deliverydags.definitions import defs
        asset = defs.resolve_assets_def("probe_added")
        assert [k.name for k in asset.check_keys] == ["zero_loss"]
        assert asset.partitions_def is not None
        fields = asset.op.config_schema.config_type.fields
        assert set(fields) == {{"rate", "step_duration_s"}}
        job = defs.resolve_job_def("nightly_soak")
        assert "probe_added" in {{k.to_user_string() for k in job.asset_layer.selected_asset_keys}}
        from deliverydags.cli.scenarios import catalog_markdown
        assert "## probe_added" in catalog_markdown()
        from deliverydags.cli.main import main
        main(["run", "probe_added", "--help"])
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]  # --help exits 0
    assert "--step-duration" in proc.stdout and "--rate" in proc.stdout


def test_a_load_profile_replaces_rate_and_duration(tmp_path: Path) -> None:
    from contextlib import ExitStack

    from deliverydags.run.scenario import Environment
    from deliverydags.scenarios.message_soak import SoakConfig

    env = Environment(tmp_path, "r", None, "127.0.0.1:0", None, None, None, print)
    soak = get("message_soak")
    for profile, (rate, seconds) in {
        "1k_per_hour": (1000 / 3600, 3600.0),
        "10k_per_hour": (10_000 / 3600, 3600.0),
        "50k_per_hour": (50_000 / 3600, 3600.0),
        "soak": (500.0, 1800.0),
    }.items():
        with ExitStack() as stack:
            settings, hooks = soak.setup(SoakConfig(profile=profile, rate=1.0), env, stack)
        assert (settings.rate, settings.duration_s) == (rate, seconds) and hooks == []


def test_the_command_line_takes_a_profile_instead_of_rate_and_duration(
    capsys: pytest.CaptureFixture,
) -> None:
    assert main(["run", "message_soak", "--duration", "2"]) == 2
    assert "required: --rate (or --profile)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["run", "message_soak", "--profile", "nope"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
