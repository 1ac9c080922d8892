"""The code location: the soak, review and chaos domains' Definitions merged, with
resources chosen from the environment (no target URL set: the bundled reference target)."""

import dagster as dg

from deliverydags import config
from deliverydags.defs import chaos, review, soak
from deliverydags.defs.resources import (
    ActionWebhookResource,
    DeliveryTargetResource,
    K6Resource,
    PagerDutyResource,
    PrometheusResource,
    ResultsStoreResource,
    SlackResource,
)


def _env(name: str) -> dg.EnvVar | None:
    """EnvVar for a setting the user chose to set; None keeps the resource's default.
    By name, not value: Dagster resolves it at run time and never shows a secret."""
    return dg.EnvVar(name) if config.is_set(name) else None


def _set(**fields: dg.EnvVar | None) -> dict:
    """The fields that are set; the others keep the resource's default."""
    return {k: v for k, v in fields.items() if v is not None}


def _target() -> DeliveryTargetResource:
    return DeliveryTargetResource(
        **_set(
            url=_env(config.TARGET_URL),
            token=_env(config.TARGET_TOKEN),
            callback_secret=_env(config.CALLBACK_SECRET),
            tenant_tokens=_env(config.TENANT_TOKENS),
            collector_addr=_env(config.COLLECTOR_ADDR),
            collector_url=_env(config.COLLECTOR_URL),
            redis_url=_env(config.REDIS_URL),
        )
    )


def _prometheus() -> PrometheusResource:
    """An existing Prometheus when DELIVERYDAGS_PROMETHEUS_URL is set (it must scrape the
    target; DELIVERYDAGS_PROMETHEUS_SELECTOR picks its series), else one per run."""
    return PrometheusResource(
        **_set(
            url=_env(config.PROMETHEUS_URL),
            selector=_env(config.PROMETHEUS_SELECTOR),
            metrics_url=_env(config.METRICS_URL),
        )
    )


def _results() -> ResultsStoreResource:
    return ResultsStoreResource(**_set(data_dir=_env(config.DATA_DIR)))


def _notify() -> dict:
    """Slack, PagerDuty and the gate's action webhook; each unconfigured (sends nothing,
    says so) until its secret is set."""
    return {
        "slack": SlackResource(
            **_set(
                token=_env(config.SLACK_TOKEN),
                channel=_env(config.SLACK_CHANNEL),
                base_url=_env(config.SLACK_BASE_URL),
            )
        ),
        "pagerduty": PagerDutyResource(
            **_set(
                routing_key=_env(config.PAGERDUTY_ROUTING_KEY),
                url=_env(config.PAGERDUTY_URL),
            )
        ),
        "action_webhook": ActionWebhookResource(**_set(secret=_env(config.ACTION_SECRET))),
    }


defs = dg.Definitions.merge(
    soak.defs,
    review.defs,
    chaos.defs,
    dg.Definitions(
        resources={
            "k6": K6Resource(),
            "target": _target(),
            "results": _results(),
            "prometheus": _prometheus(),
            **_notify(),
        }
    ),
)
