"""Chaos scenarios: a real fault injected mid-load into the reference target, recovery
measured with the exact ledger.

Adding a scenario (see chaos/consumer_kill.py and scenarios/chaos_consumer_kill.py for a
complete one): the fault goes in ``chaos/<fault>.py``, its declaration in
``scenarios/chaos_<fault>.py`` (both plain Python; the asset, the CLI command and the
place in ``nightly_chaos`` follow from the declaration).

1. In ``chaos/<fault>.py``, subclass :class:`ChaosHook` with a ``fault`` name and
   ``inject(ctx)`` (called on a timer thread ``inject_after_s`` into the load; do the real
   thing: a signal, a server stopped); ``release(ctx)`` undoes it ``hold_s`` later (skip
   it for an instantaneous fault); ``observe(ctx)`` returns figures read while the target
   is still up (put the DLQ count under ``"dlq"``, see :func:`dlq_depth`);
   ``extra(ctx, ledger)`` returns figures computed from the run's files after the ledger;
   ``gates(figures, ledger)`` returns the scenario's gates (build them with :func:`gate`,
   :func:`recovered_gate`). ``ctx.target`` is the reference target's process
   (``procs.Service``). Its constructor takes plain values, never the config.
2. In ``scenarios/chaos_<fault>.py``, declare
   ``SCENARIO = chaos_scenario(name="chaos_<fault>", description=..., checks={gate name:
   description}, fault=lambda config, env: MyHook(config.timing(), ...),
   config=MyConfig, broker="own_redis" | "target")`` (:mod:`deliverydags.chaos.scenario`).
   ``MyConfig`` subclasses :class:`~deliverydags.chaos.scenario.ChaosConfig` to change
   defaults (``recover_within_s``, ``hold_s``, ``target_args`` ...) or add knobs. With
   ``broker="own_redis"`` the run gets its own redis-server on a free loopback port
   (``env.redis``: stop()/start() it for real).

The result follows the CHAOS RESULT CONVENTION: ``result["scenario"]`` is the asset
name; ``result["chaos"]`` holds fault, injected_at, released_at, time_to_detect_s,
time_to_recover_s (definitions in :mod:`deliverydags.chaos.recovery`), lost, duplicates,
dlq and the fault's own figures; the asset's metadata repeats them as top-level entries
and its blocking checks come from the gates named in ``checks``.
"""

from deliverydags.chaos.hook import ChaosHook, ChaosTiming, gate, iso, recovered_gate
from deliverydags.chaos.probes import (
    ProcessGone,
    consumer_processes,
    dlq_depth,
    send_signal,
    stream_prefix,
)
from deliverydags.chaos.recovery import Recovery, measure
from deliverydags.chaos.redis_server import RedisServer, RedisServerError, free_port

__all__ = [
    "ChaosHook",
    "ChaosTiming",
    "ProcessGone",
    "Recovery",
    "RedisServer",
    "RedisServerError",
    "consumer_processes",
    "dlq_depth",
    "free_port",
    "gate",
    "iso",
    "measure",
    "recovered_gate",
    "send_signal",
    "stream_prefix",
]
