"""One check run, end to end: the code path shared by `deliverydags run` and the asset.

collector (+ reference target) up -> target health -> k6 -> wait for receipts ->
close the books -> ledger -> gates -> result (contract v1 JSON).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from deliverydags import collector, config, procs, target
from deliverydags.formats import RECEIPTS_FILE, SENDS_FILE
from deliverydags.formats.send_columns import SendCopier
from deliverydags.formats.send_records import read_sends
from deliverydags.ledger import reconcile
from deliverydags.procs import ServiceError
from deliverydags.run.checks import Check, evaluate_gates
from deliverydags.run.hooks import HookReport, RunContext, RunHook
from deliverydags.run.k6 import K6Error, K6Outcome, run_k6
from deliverydags.run.settings import ConfigError, RunSettings
from deliverydags.target.allowlist import callback_args

Log = Callable[[str], None]
SETTLE_S = 2.0  # after the last expected receipt, listen this long for trailing duplicates
WAIT_LOG_EVERY_S = 10.0


class SetupError(RuntimeError):
    """The run could not start or finish for a reason outside the target's delivery."""


class HarnessError(SetupError):
    """The harness itself (the collector) failed mid-run: the run is void, and its missing
    receipts say nothing about the target."""


# No result to judge: a bad setting, missing k6, an unreachable service, a harness failure.
SETUP_ERRORS = (ConfigError, SetupError, K6Error, ServiceError)


@dataclass(frozen=True)
class Secrets:
    target_token: str | None
    callback_secret: str | None
    # "tenant:token,..." (contract v1.1 tenants), for the runs of a scenario with tenants.
    tenant_tokens: str | None = None


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def run_check(
    settings: RunSettings,
    creds: Secrets,
    run_dir: Path,
    log: Log,
    stop: threading.Event | None = None,
    interrupts: tuple[type[BaseException], ...] = (KeyboardInterrupt,),
    hooks: Sequence[RunHook] = (),
) -> dict:
    """Run ``settings`` and return the result dict, also written to ``run_dir/result.json``.

    Raises ConfigError / SetupError / K6Error (one-line messages) when there is no result
    to judge. An interrupt (``interrupts``, or ``stop`` set) stops the load, counts the
    receipts already in, and returns a result with ``"status": "aborted"``. ``hooks`` act
    alongside the load (see hooks.py); their reports and gates join the result.
    """
    settings.validate()
    creds = _complete_secrets(settings, creds)
    # Absolute: k6 runs in run_dir, and the paths given to it must not depend on the cwd.
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    procs.sweep_leftovers(log)  # a killed run's children must not load the target with ours
    run_id = run_dir.name
    started_at = _now_iso()
    aborted = False
    outcome: K6Outcome | None = None
    with ExitStack() as services:
        coll = collector.start(
            out_dir=run_dir,
            listen=settings.collector_addr,
            env=_collector_env(creds),
        )
        services.callback(coll.stop)
        log(f"collector listening on {coll.url}")
        # Stops the load when the collector dies or stops recording (or ``stop`` is set).
        watch = CollectorWatch(coll, stop)
        services.callback(watch.close)
        halt = watch.halt
        target_url = settings.target_url
        ref = None
        if target_url is None:
            ref = target.start(
                out_dir=run_dir,
                redis_url=settings.redis_url,
                extra_args=[
                    *settings.target_args,
                    *callback_args(settings.collector_url or coll.url),  # its only callback
                ],
                env=_target_env(creds, settings.target_args),
            )
            services.callback(ref.stop)
            target_url = ref.url
            broker = (
                "Redis " + _redact_url(settings.redis_url)
                if settings.redis_url
                else "embedded queue"
            )
            log(f"reference target on {target_url} ({broker})")
        version = check_target(target_url)
        log(f"target {target_url} is up (version {version})")
        ctx = RunContext(settings, run_dir, target_url, log, target=ref)
        k6_env = _k6_env(settings, creds, run_id, target_url, settings.collector_url or coll.url)
        for hook in hooks:
            k6_env.update(hook.k6_env())
        # The ledger's columns of sends.ndjson, kept while k6 writes it (send_columns).
        copier = SendCopier(run_dir, prefix=f"{run_id}-")
        services.callback(copier.close)
        try:
            ctx.load_started_ns = time.time_ns()
            for hook in hooks:
                hook.before_load(ctx)
            outcome = run_k6(
                settings.script_path(),
                env=k6_env,
                extra_args=[arg for hook in hooks for arg in hook.k6_args()],
                work_dir=run_dir,
                timeout_s=settings.duration_s + settings.request_timeout_s + 120,
                log=log,
                binary=settings.k6_binary,
                console_output=run_dir / SENDS_FILE,
                stop=halt,
            )
            ctx.load_ended_ns = time.time_ns()
            if not copier.finish():
                log(f"no columnar copy of the sends ({copier.error}): the ledger parses them")
            watch.raise_if_failed()
            aborted = outcome.interrupted or bool(stop and stop.is_set())
            if not aborted:
                _wait_for_receipts(run_dir, settings.deadlines_s, log, halt)
                watch.raise_if_failed()
                aborted = bool(stop and stop.is_set())
        except interrupts:
            log("interrupted: load stopped, counting the receipts already in")
            aborted = True
            outcome = outcome or K6Outcome(105, None, 0.0)
        close_ns = time.time_ns()
        watch.check_now()  # a failure in the last moments voids the books too
        ctx.load_ended_ns = ctx.load_ended_ns or close_ns
        for hook in hooks:
            hook.after_load(ctx)
    # Services are stopped here: nothing after close_ns is counted anyway.
    ledger = reconcile(run_dir, settings.deadlines_s, close_ns=close_ns).to_dict()
    # Where the proof is: per-message files for later analysis (delivery windows, A/B).
    ledger["files"] = {"run_dir": str(run_dir.resolve()), "closed_at_ns": close_ns}
    extra_gates = []
    for hook in hooks:
        report = _hook_report(hook, ctx, ledger)
        ledger[hook.name] = report.data
        extra_gates += report.gates
    result = _result(
        settings, run_id, target_url, started_at, ledger, outcome, aborted, version, extra_gates
    )
    (run_dir / "result.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return result


class CollectorWatch:
    """Asks the collector, every ``every_s``, whether it is alive and recording
    (``/healthz``: 503 once a journal write failed). On the first failure it says why and
    sets ``halt``, which stops k6 and the wait for receipts; ``halt`` is also set when
    ``stop`` is. Without it, a dead collector's missing receipts would read as lost.
    An exit or a 503 is a failure at once; an unanswered /healthz only ``MISSES`` times in
    a row (a busy machine may be slow to answer)."""

    MISSES = 4

    def __init__(
        self, service: procs.Service, stop: threading.Event | None, every_s: float = 0.5
    ) -> None:
        self._service = service
        self._stop = stop
        self._every_s = every_s
        self.halt = threading.Event()
        self.failure: str | None = None
        self._misses = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="collector-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._closed.wait(self._every_s):
            if self._stop is not None and self._stop.is_set():
                self.halt.set()
            if self._failing() is not None:
                self.halt.set()

    def _failing(self) -> str | None:
        if self.failure is None:
            problem, certain = collector_failure(self._service)
            self._misses = self._misses + 1 if problem and not certain else 0
            if problem is not None and (certain or self._misses >= self.MISSES):
                self.failure = problem
        return self.failure

    def check_now(self) -> None:
        self._failing()
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        if self.failure is not None:
            raise HarnessError(
                f"collector failed mid-run ({self.failure}): the run is void, "
                "not a verdict on the target"
            )

    def close(self) -> None:
        self._closed.set()
        self._thread.join()


def collector_failure(service: procs.Service, timeout_s: float = 2.0) -> tuple[str | None, bool]:
    """(None, True) while the collector runs and records; else what is wrong, in a few
    words, and whether that is certain (an exit, a 503) or only an unanswered /healthz."""
    code = service.proc.poll()
    if code is not None:
        return f"it exited with status {code}", True
    try:
        with urllib.request.urlopen(service.url + "/healthz", timeout=timeout_s) as resp:
            resp.read(4096)
    except urllib.error.HTTPError as exc:
        return f"/healthz answered {exc.code}: it can no longer record receipts", True
    except (urllib.error.URLError, OSError) as exc:
        if service.proc.poll() is not None:
            return f"it exited with status {service.proc.returncode}", True
        return f"/healthz unanswered ({getattr(exc, 'reason', exc)})", False
    return None, True


def _hook_report(hook: RunHook, ctx: RunContext, result: dict) -> HookReport:
    """A hook that cannot report fails its own gate; the ledger's figures still stand."""
    try:
        return hook.report(ctx, result)
    except Exception as exc:
        ctx.log(f"{hook.name}: {exc}")
        gate = Check(hook.name, False, str(exc), "a report")
        return HookReport({"error": str(exc)}, [gate.to_json()])


def check_target(url: str, timeout_s: float = 5.0) -> str:
    """GET /healthz; return the reported version or raise SetupError with the reason."""
    health = url.rstrip("/") + "/healthz"
    try:
        with urllib.request.urlopen(health, timeout=timeout_s) as resp:
            body = resp.read(65536)
    except urllib.error.HTTPError as exc:
        raise SetupError(
            f"target {health} answered HTTP {exc.code}; is it a contract-v1 service?"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SetupError(f"target {health} is unreachable ({reason}); check --target-url") from None
    try:
        doc = json.loads(body)
        assert doc.get("status") == "ok"
    except Exception:
        raise SetupError(
            f'target {health} did not answer {{"status": "ok"}}; is it a contract-v1 service?'
        ) from None
    return str(doc.get("version", "unknown"))


def _complete_secrets(settings: RunSettings, creds: Secrets) -> Secrets:
    """The reference target gets fresh per-run secrets when none are configured; a
    user's service must be given the ones it was set up with."""
    tenants = creds.tenant_tokens if settings.tenants else None
    if settings.target_url is None:
        if settings.tenants and not tenants:
            tenants = ",".join(
                f"tenant-{i}:{secrets.token_urlsafe(24)}" for i in range(1, settings.tenants + 1)
            )
        return Secrets(
            creds.target_token or secrets.token_urlsafe(24),
            creds.callback_secret or secrets.token_urlsafe(24),
            tenants,
        )
    missing = [
        name
        for name, value in (
            (config.TARGET_TOKEN, creds.target_token),
            (config.CALLBACK_SECRET, creds.callback_secret),
            (config.TENANT_TOKENS, tenants if settings.tenants else "not needed"),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"set {' and '.join(missing)} for the target at {settings.target_url}")
    return Secrets(creds.target_token, creds.callback_secret, tenants)


# Each child gets only its own secrets (procs.child_env adds the allowlisted rest).
def _collector_env(creds: Secrets) -> dict[str, str]:
    return {config.CALLBACK_SECRET: creds.callback_secret or ""}


def _target_env(creds: Secrets, target_args: Sequence[str]) -> dict[str, str]:
    env = {
        config.TARGET_TOKEN: creds.target_token or "",
        config.CALLBACK_SECRET: creds.callback_secret or "",
    }
    if creds.tenant_tokens:
        env[config.TENANT_TOKENS] = creds.tenant_tokens
    password = os.environ.get("PGPASSWORD")
    if password is not None and any(a.startswith("--postgres-dsn") for a in target_args):
        env["PGPASSWORD"] = password
    return env


def _k6_env(
    s: RunSettings, creds: Secrets, run_id: str, target_url: str, collector_url: str
) -> dict[str, str]:
    # Only what k6 needs: the callback secret is the collector's, never k6's.
    env = procs.child_env()
    env[config.TARGET_TOKEN] = creds.target_token or ""
    env.update(
        DD_TARGET_URL=target_url,
        DD_RATE=f"{s.rate:g}",
        DD_DURATION_S=f"{s.duration_s:g}",
        DD_RUN_ID=run_id,
        DD_COLLECTOR_URL=collector_url,
        DD_PAYLOAD_BYTES=str(s.payload_bytes),
        DD_MAX_ERROR_RATE=f"{s.gates.max_error_rate:g}",
        DD_REQUEST_TIMEOUT_S=f"{s.request_timeout_s:g}",
        DD_VARIANTS=s.variants,
    )
    env.update(dict(s.k6_env))
    if creds.tenant_tokens:  # k6 sends as each tenant, with its token
        env["DD_TENANTS"] = creds.tenant_tokens
    return env


def _wait_for_receipts(
    run_dir: Path, deadlines_s: tuple[float, ...], log: Log, stop: threading.Event | None
) -> None:
    """Keep the books open until every accepted and indeterminate message has a receipt
    (then SETTLE_S more for trailing duplicates) or the last deadline of the last message
    sent has passed, whichever comes first (contract: "Deadlines")."""
    outstanding, last_sent_ms = _expected_ids(run_dir)
    tail = collector.ReceiptTail(run_dir / RECEIPTS_FILE)
    hard_stop = last_sent_ms / 1000 + deadlines_s[-1]
    next_log = 0.0
    while time.time() < hard_stop:
        if stop is not None and stop.is_set():
            return
        outstanding.difference_update(tail.read_new())
        if not outstanding:
            time.sleep(min(SETTLE_S, max(0.0, hard_stop - time.time())))
            return
        if time.monotonic() >= next_log:
            left = hard_stop - time.time()
            log(f"waiting for {len(outstanding)} receipts (books close in at most {left:.0f} s)")
            next_log = time.monotonic() + WAIT_LOG_EVERY_S
        time.sleep(0.2)
    log(f"last deadline passed with {len(outstanding)} messages still without a receipt")


def _expected_ids(run_dir: Path) -> tuple[set[str], float]:
    """Ids of accepted and indeterminate messages, and the last send time (ms)."""
    ids: set[str] = set()
    last = 0.0
    for rec in read_sends(run_dir):
        last = max(last, rec.sent_ms)
        if rec.send_class != "rejected":
            ids.add(rec.id)
    return ids, last or time.time() * 1000


def _result(
    s: RunSettings,
    run_id: str,
    target_url: str,
    started_at: str,
    ledger: dict,
    outcome: K6Outcome,
    aborted: bool,
    version: str,
    extra_gates: list[dict],
) -> dict:
    gates = evaluate_gates(ledger, s.gates, outcome.threshold_results(), outcome.thresholds_crossed)
    gates += extra_gates
    status = "aborted" if aborted else ("passed" if all(g["passed"] for g in gates) else "failed")
    k6_metrics = (outcome.summary or {}).get("metrics", {})
    dropped = k6_metrics.get("dropped_iterations", {}).get("values", {}).get("count", 0)
    return {
        "scenario": s.scenario,
        "target_url": target_url,
        "started_at": started_at,
        "finished_at": _now_iso(),
        "rate": s.rate,
        "duration_s": s.duration_s,
        "deadlines_s": list(s.deadlines_s),
        **ledger,
        "gates": gates,
        "status": status,
        "run_id": run_id,
        "target_version": version,
        "k6": {
            "exit_code": outcome.exit_code,
            "thresholds": outcome.threshold_results(),
            "dropped_iterations": int(dropped),
            "duration_s": round(outcome.duration_s, 3),
        },
    }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _redact_url(url: str | None) -> str:
    """redis://:password@host:port/0 -> redis://host:port/0 (for logs)."""
    if not url or "@" not in url:
        return url or ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


__all__ = [
    "SETUP_ERRORS",
    "ConfigError",
    "HarnessError",
    "K6Error",
    "Secrets",
    "ServiceError",
    "SetupError",
    "new_run_id",
    "run_check",
]
