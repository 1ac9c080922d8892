"""`ab_comparison`: tonight's variants compared on delivery rate, verdict in plain words."""

import dagster as dg

from deliverydags.config import SOAK_SCENARIO
from deliverydags.defs.assets.catalog import message_soak
from deliverydags.defs.partitions import nightly_partitions
from deliverydags.defs.resources import ResultsStoreResource
from deliverydags.review.ab import KIND, ab_report
from deliverydags.review.tables import table


class ABConfig(dg.Config):
    scenario: str = SOAK_SCENARIO
    control: str = ""  # the A arm; default: the first variant in the result
    split: str = ""  # planned shares as in the soak's variants (llm:0.5,template:0.5)
    alpha: float = 0.05
    mde: float = 0.01  # smallest drop in delivery rate worth detecting (absolute)
    power: float = 0.8


@dg.asset(
    partitions_def=nightly_partitions,
    deps=[message_soak],
    group_name="review",
    kinds={"duckdb"},
    description="A/B: delivery rate per variant (by_variant), difference, p, SRM, verdict.",
)
def ab_comparison(
    context: dg.AssetExecutionContext, config: ABConfig, results: ResultsStoreResource
) -> dg.MaterializeResult:
    night = context.partition_key
    store = results.store
    result = store.load(night, config.scenario)
    if result is None:
        report = {"variants": [], "comparisons": [], "verdict": f"No result stored for {night}."}
    else:
        try:
            report = ab_report(
                result, config.control, config.split, config.alpha, config.mde, config.power
            )
        except ValueError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None
    store.save_report(night, config.scenario, KIND, report)
    context.log.info(report["verdict"])
    meta: dict = {
        "verdict": report["verdict"],
        "variants": len(report["variants"]),
        "report": dg.MetadataValue.json(report),
    }
    rows = []
    for c in report["comparisons"]:
        rows += [
            (c["control"], c["a"]["sent"], c["a"]["delivered"], c["a"]["rate"], "", ""),
            (c["variant"], c["b"]["sent"], c["b"]["delivered"], c["b"]["rate"], c["diff"],
             c["p_value"]),
        ]  # fmt: skip
        key = c["variant"]
        meta[f"{key}_diff"] = float(c["diff"]) if c["diff"] is not None else None
        meta[f"{key}_p_value"] = float(c["p_value"]) if c["p_value"] is not None else None
        meta[f"{key}_srm"] = bool(c["srm"])
    if rows:
        meta["arms"] = dg.MetadataValue.md(
            table(("variant", "accepted", "delivered", "rate", "diff vs A", "p"), rows)
        )
    return dg.MaterializeResult(metadata={k: v for k, v in meta.items() if v is not None})
