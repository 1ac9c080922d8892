"""`deliverydags run NAME`: one catalog scenario from a terminal, its options made from
the scenario's config (``duration_s`` is ``--duration``: a trailing ``_s`` is the unit).

A NAME outside the catalog is a k6 script (under k6/, or a path to your .js) carried by
the soak: ``deliverydags run my.js`` is ``deliverydags run message_soak --script my.js``.
"""

from __future__ import annotations

import argparse
import sys
import typing
from functools import partial
from pathlib import Path

import orjson
import pydantic

from deliverydags import config
from deliverydags.config import SOAK_SCENARIO
from deliverydags.run.runner import Secrets, new_run_id
from deliverydags.run.scenario import Environment, Scenario, run_scenario
from deliverydags.run.settings import ConfigError
from deliverydags.run.summary import markdown
from deliverydags.scenarios import catalog

EXIT_PASSED, EXIT_CHECK_FAILED, EXIT_ABORTED = 0, 1, 130
KNOB = "knob:"  # the knobs' argparse names: a knob may be called like a common option


def add_parser(sub: argparse._SubParsersAction, parser_class: type) -> None:
    run = sub.add_parser("run", help="run one scenario against a target and judge it")
    names = run.add_subparsers(
        dest="scenario", required=True, metavar="SCENARIO", parser_class=parser_class
    )
    for name, scenario in catalog().items():
        p = names.add_parser(name, help=scenario.description, description=scenario.description)
        _add_common(p)
        fields = scenario.config.model_fields
        for field_name, field in fields.items():
            text = description(scenario.config, field_name)
            # A profile stands in for the required knobs: checked in run().
            required = field_name in scenario.cli_required and "profile" not in fields
            _add_knob(p, field_name, field, text, required)


def script_as_soak(argv: list[str]) -> list[str]:
    """``run SCRIPT ...`` (a NAME outside the catalog) as ``run message_soak --script SCRIPT``."""
    if len(argv) > 1 and argv[0] == "run" and argv[1][:1] != "-" and argv[1] not in catalog():
        return ["run", SOAK_SCENARIO, "--script", argv[1], *argv[2:]]
    return argv


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target-url", help="the service under test; default: start the reference target"
    )
    p.add_argument("--json", type=Path, help="write the result JSON here")
    p.add_argument(
        "--work-dir",
        type=Path,
        help="run files go below here (default: $DELIVERYDAGS_DATA_DIR/runs, else data/runs)",
    )
    p.add_argument(
        "--redis-url", help="reference target only: use this Redis instead of the embedded queue"
    )


def flag(name: str, field: pydantic.fields.FieldInfo) -> str:
    """``duration_s`` -> ``--duration``; a list of strings is given once per item, so
    ``target_args`` -> ``--target-arg``; ``json_schema_extra={"flag": ...}`` overrides."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if extra.get("flag"):
        return str(extra["flag"])
    if typing.get_args(field.annotation) == (str,):
        name = name.removesuffix("s")
    return "--" + name.removesuffix("_s").replace("_", "-")


def description(model: type[pydantic.BaseModel], name: str) -> str:
    """The field's description, else that of the field it overrides (a subclass that
    changes a default keeps its base's words)."""
    for cls in model.__mro__:
        field = getattr(cls, "model_fields", {}).get(name)
        if field is not None and field.description:
            return field.description
    return ""


def _add_knob(
    p: argparse.ArgumentParser,
    name: str,
    field: pydantic.fields.FieldInfo,
    text: str,
    required: bool,
) -> None:
    option = flag(name, field)
    default = field.get_default(call_default_factory=True)
    if isinstance(default, list):
        default = ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in default)
    shown = default if default not in ("", None) else "none"
    help_text = f"{text.rstrip('.')} (default {shown})" if text else f"default {shown}"
    kind = field.annotation
    help_text = help_text.replace("%", "%%")  # argparse formats help with %
    metavar = option.lstrip("-").upper().replace("-", "_")
    common = {"dest": KNOB + name, "default": None, "help": help_text, "required": required}
    if kind is bool:
        p.add_argument(option, action=argparse.BooleanOptionalAction, **common)
    elif kind in (int, float, str):
        p.add_argument(option, type=kind, metavar=metavar, **common)
    elif typing.get_origin(kind) is typing.Literal:
        choices = [c for c in typing.get_args(kind) if c]
        p.add_argument(option, choices=choices, **common)
    elif typing.get_origin(kind) is list and typing.get_args(kind) == (str,):
        p.add_argument(option, action="append", metavar="VALUE", **common)
    elif typing.get_origin(kind) is list:
        p.add_argument(option, type=partial(_numbers, option), metavar="A,B,...", **common)
    else:  # a declaration error, found by the catalog's tests
        raise TypeError(f"{name}: no command-line form for {kind}")


def _numbers(option: str, text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{option.lstrip('-')} must be comma-separated numbers, e.g. 30,300,900"
        ) from None


def run(args: argparse.Namespace) -> int:
    scenario = catalog()[args.scenario]
    given = {
        name: getattr(args, KNOB + name)
        for name in scenario.config.model_fields
        if getattr(args, KNOB + name) is not None
    }
    missing = [k for k in scenario.cli_required if k not in given and "profile" not in given]
    if missing and "profile" in scenario.config.model_fields:
        fields = scenario.config.model_fields
        flags = ", ".join(flag(k, fields[k]) for k in missing)
        raise ConfigError(f"the following arguments are required: {flags} (or --profile)")
    try:
        knobs = scenario.config(**given)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(f"{'.'.join(map(str, error['loc']))}: {error['msg']}") from None
    run_id = new_run_id()
    run_dir = (args.work_dir or config.data_dir() / "runs").resolve() / run_id
    log = partial(print, file=sys.stderr, flush=True)
    env = Environment(
        run_dir=run_dir,
        run_id=run_id,
        target_url=args.target_url,
        collector_addr=config.env(config.COLLECTOR_ADDR) or config.DEFAULT_COLLECTOR_ADDR,
        collector_url=config.env(config.COLLECTOR_URL),
        redis_url=args.redis_url or config.env(config.REDIS_URL),
        k6_binary=None,
        log=log,
        prometheus=_prometheus(scenario, run_dir, run_id),
    )
    creds = Secrets(
        config.env(config.TARGET_TOKEN),
        config.env(config.CALLBACK_SECRET),
        config.env(config.TENANT_TOKENS),
    )
    result = run_scenario(scenario, knobs, env, creds)
    doc = result.to_json()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(markdown(doc))
    print(f"\nfull result: {run_dir / 'result.json'}")
    if result.status == "aborted":
        return EXIT_ABORTED
    return EXIT_PASSED if result.status == "passed" else EXIT_CHECK_FAILED


def _prometheus(scenario: Scenario, run_dir: Path, run_id: str):
    """The service's metrics: from DELIVERYDAGS_PROMETHEUS_URL when set, else (only for a
    scenario that needs them) a private Prometheus for this run; run_scenario leaves it
    unused by a scenario that reads none."""
    url = config.env(config.PROMETHEUS_URL)
    if not url and scenario.prometheus != "required":
        return None
    from deliverydags.prometheus import PrometheusHook

    return partial(
        PrometheusHook,
        run_dir / "prometheus",
        url=url,
        selector=config.env(config.PROMETHEUS_SELECTOR),
        metrics_url=config.env(config.METRICS_URL),
        run_id=run_id,
    )
