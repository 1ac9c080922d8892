"""The two files a run's ledger is built from, both newline-delimited JSON.

Sends (written by the k6 scenario through ``console.log`` with ``--console-output``,
one line per message the scenario tried to send; other console lines are ignored):

    {"dd": 1, "id": str, "stream": str, "seq": int, "sent_ms": float,
     "class": "accepted" | "rejected" | "indeterminate", "status": int, "variant": str}

``sent_ms`` is the harness's wall clock (Unix epoch, milliseconds, sub-millisecond
fraction) just before the first try; ``status`` is the HTTP status of the last try
(0 when there was no answer); ``variant`` tags the message for A/B analysis ("" if none).

Contract v1.1 adds optional fields; a line without them reads as before:

    "intended_ms": float   when the schedule meant to send it (arrival-rate scenarios)
    "digest": str          lowercase hex SHA-256 of the UTF-8 payload string sent
    "tenant": str          the message's tenant
    "resend": "same" | "changed"   not a message: a repeat, on purpose, of the message
                           with this id (same body or a changed one); class and status
                           are the repeat's answer's (409: a conflict)

In a batch send (``POST /v1/messages:batch``) every message has its own line: ``status``
is its own status in the 200 answer, or the whole request's (0: no answer).

Receipts (written by the collector, one line per valid receipt, in arrival order):

    {"n": int, "recv_ns": int, "id": str, "stream": str, "seq": int,
     "status": "delivered" | "failed", "delivered_at": str}

plus, only when there is one, ``"digest": str`` (as the receipt carried it) and
``"tenant": str`` (the tenant whose callback, ``/v1/receipts/<tenant>``, it came to).

``n`` is the arrival order (0, 1, 2, ... across the whole run; receipts of one batch
get consecutive numbers in array order); ``recv_ns`` the collector's wall clock
(Unix epoch, nanoseconds) when the POST carrying it arrived.

Rejected POSTs (written by the collector, one line per POST it refused):

    {"recv_ns": int, "reason": "bad_signature" | "malformed"}

A missing, wrong or stale (|t - now| > 300 s) signature is ``bad_signature``.

The NDJSON files are the record of truth. Beside them two columnar copies (Arrow IPC)
save the ledger parsing them: the collector keeps ``receipts.arrows``, the same receipts as
Arrow columns (``deliverydags.formats.receipt_columns``), and the runner keeps ``sends.arrows``, the
send lines as the ledger's columns, while k6 writes them (``deliverydags.formats.send_columns``).
Each is sealed (``*.arrows.json``) once complete; the ledger reads a copy only while its
seal matches the NDJSON file.
"""

from pathlib import Path

SENDS_FILE = "sends.ndjson"
RECEIPTS_FILE = "receipts.ndjson"
REJECTED_FILE = "rejected.ndjson"
SENDS_FORMAT_VERSION = 1


def ndjson(path: Path, columns: dict[str, str]) -> str:
    """SQL for reading ``columns`` of an NDJSON file.

    ignore_errors: a line that is not a JSON object (k6 console chatter, a torn last
    line) reads as all NULLs. Values are cast the DuckDB way (e.g. "seq": "5" reads as 5).
    """
    cols = ", ".join(f"{k}: '{v}'" for k, v in columns.items())
    lit = "'" + str(path).replace("'", "''") + "'"
    return (
        f"read_json({lit}, format = 'newline_delimited', ignore_errors = true, "
        f"columns = {{{cols}}})"
    )
