"""Receipt collector: the target POSTs signed delivery receipts, the collector verifies them
and records each one durably (receipts.ndjson) before it answers 204. Alongside, it keeps
a columnar copy for the ledger (receipts.arrows), sealed at a clean stop
(deliverydags.formats.receipt_columns).

Run it with ``python -m deliverydags.collector --out DIR`` or ``start(out_dir=...)``; follow
what it has recorded with ``ReceiptTail``.
"""

from deliverydags.collector.launcher import SECRET_ENV, start
from deliverydags.collector.server import RECEIPTS_PATH
from deliverydags.collector.tail import ReceiptTail

__all__ = ["RECEIPTS_PATH", "SECRET_ENV", "ReceiptTail", "start"]
