"""The ledger: exact delivery accounting of one run (contract v1, "Accounting (one run)").

``reconcile(run_dir, deadlines_s, close_ns)`` reads ``sends.ndjson`` (k6 console output:
only JSON objects whose ``"dd"`` is the number 1 are send lines, anything else is
ignored), ``receipts.ndjson`` and ``rejected.ndjson`` (either may be missing: empty) and
returns a :class:`LedgerResult`; ``delivery_timeline`` gives the per-message columns that
time windows need. No dagster here: the CLI and the assets both call this. When the
collector or the runner left a sealed columnar copy of receipts.ndjson or sends.ndjson
that still matches it (deliverydags.formats.receipt_columns, .send_columns), the rows are
read from that copy: same rows, same books.

The team's reading of the contract, binding for every number:

- A *valid receipt* is a line of receipts.ndjson with ``recv_ns <= close_ns`` (the
  collector records valid ones only; later ones are not counted at all, nor are
  rejected POSTs after close). Arrival order is ``n`` (ties, which the format rules
  out, are broken by line order).
- A send line is a JSON object whose ``"dd"`` is 1 (DuckDB reads it as text, so the
  string "1" passes too; true, 2 or 1.5 do not). A "dd": 1 line without a readable id,
  stream, seq, sent_ms or class is skipped and counted in ``invalid_lines.sends``; values
  are cast the DuckDB way ("seq": "5" is 5). A receipt line that is not a receipt (a
  torn last line) is skipped and counted in ``invalid_lines.receipts``.
- A send id's first (valid) line wins; later lines with the same id are counted in
  ``repeated_send_ids`` and otherwise ignored.
- Latency of a receipt = ``recv_ns - sent``, with ``sent`` the decimal ``sent_ms`` spells,
  exactly, in ns; a receipt exactly at a deadline is within it.
- Fate of an accepted message: its first ``delivered`` receipt within the first deadline
  -> delivered; within a later one -> late, in the bucket of the first deadline it is
  within; otherwise a ``failed`` receipt within the last deadline -> failed; else lost.
  So a ``delivered`` after a ``failed`` (both in time) makes it delivered or late.
  Indeterminate + any valid receipt (any status, any time before close) -> recovered,
  else unseen. Rejected messages stay rejected whatever arrives for them, but their
  receipts are receipts of a sent id: they count for duplicates and out_of_order and are
  not unexpected.
- ``latency_ms`` per message = first valid receipt of any status minus sent time;
  p50/p95/p99/max over delivered, late and recovered messages, by numpy's default
  ("linear", = DuckDB quantile_cont) method; null when no message qualifies.
- ``duplicates`` = valid receipts beyond the first per sent id, whatever their status.
  ``unexpected`` = valid receipts (not distinct ids) whose id was never sent.
- ``out_of_order``: per stream (the SENT stream and seq, joined by id), walking the
  ``delivered`` receipts of sent ids in arrival order, a message whose first delivered
  receipt comes after a delivered receipt (duplicates included) of a message with a
  higher seq. Each message at most once; rejected and indeterminate messages included.
- ``late_by_deadline``: str(int(seconds)) of every deadline after the first (deadlines
  must increase and differ in whole seconds). ``bad_signature``/``malformed``: lines of
  rejected.ndjson with that reason, within close.
- Samples: distinct ids, first 1,000, in the order first seen (lost: send order, i.e.
  line order of sends.ndjson;
  duplicates: arrival of the receipt that made it one; out_of_order: arrival of its first
  delivered receipt; unexpected: arrival of its first receipt).
- Always: attempted = accepted + rejected + indeterminate; accepted = delivered + late +
  failed + lost; indeterminate = recovered + unseen.

Contract v1.1 (the scenario catalog). A measure's counts join ``counts``, after the v1
ones, only in a run that takes it: one whose send records show it, or whose caller names
it in ``reconcile(..., measures=...)``; a v1 run's result has exactly the v1 counts.

- ``send_delay_ms`` (always in the result, null unless measured): p50/p99/max of
  ``sent - intended`` over the messages whose send line has a finite ``intended_ms``,
  in exact ns like every time here; "send_delay" when any has one.
- Resend lines (a valid "dd": 1 line whose ``resend`` is present and not "") are no
  messages (nor repeated ids): ``resent`` counts them, ``conflicts`` those with status
  409; "resend" when any. Receipts match the message, so a resend's second receipt is a
  duplicate like any other.
- Tenants ("tenants" when any message has a ``tenant``): a valid receipt of a sent id
  whose callback tenant (the receipt line's ``tenant``, none at the plain callback)
  differs from its message's (none = "") is ``leaked``, per receipt, and counts nowhere
  else: not a delivery, duplicate, out_of_order or unexpected receipt. Samples:
  ``leaked``, distinct ids by arrival.
- Integrity ("integrity" when any message has a ``digest``): ``corrupted`` = accepted
  messages whose first valid delivered receipt (any time before close, whatever the
  fate) has a digest that differs, case aside, from its message's (either missing: no
  judgement); ``undigested`` = valid delivered receipts of sent ids without a digest.
  Samples: ``corrupted``, by arrival of that receipt. Digests are compared by a 64-bit
  key (receipts.digest_keys): a corrupted message goes unseen with probability 2**-64.
  A run that checks integrity or tenants reads receipts.ndjson (the columnar copy has
  the v1 columns only). Measured with 4 M messages, all with digests and tenants, from
  the NDJSON (2 cores): 10.4 s, peak RSS 1.1 GB; a v1 run's cost is unchanged.
"""

from deliverydags.ledger.core import DEFAULT_DEADLINES_S, delivery_timeline, reconcile
from deliverydags.ledger.result import LedgerResult

__all__ = ["DEFAULT_DEADLINES_S", "LedgerResult", "delivery_timeline", "reconcile"]
