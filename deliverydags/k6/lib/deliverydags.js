// Accounting-aware sending for k6 scripts (deliverydags contract v1, v1.1).
//
// Import it from your own script to send messages to your own API and still get the
// exact ledger: every message gets an id, a stream and a seq, and one line per message
// goes to k6's console output, which deliverydags reads after the run.
//
//   import http from 'k6/http';
//   import { Accounting } from './lib/deliverydags.js';
//   const acct = new Accounting();
//   export default function () {
//     const msg = acct.next();                    // {id, stream, seq, callback_url, variant}
//     acct.send(msg, () => http.post(MY_URL, JSON.stringify({ ...msg, text: 'hi' })));
//   }
//
// Contract v1.1 (each optional; without them the send lines are the v1 lines):
//   - send delay: in an arrival-rate scenario (constant or ramping) every message carries
//     `intended_ms`, the time k6's schedule meant its iteration to start (see intendedMs);
//   - batch send: acct.sendBatch(msgs, request) classifies each message of one
//     POST /v1/messages:batch by its own status in the 200 answer;
//   - payload digest: acct.payload(msg, bytes) makes a string payload and keeps its
//     SHA-256 in msg.digest (and so in the send line);
//   - tenants: with DD_TENANTS each VU's messages belong to one tenant, with its own
//     callback_url and token (acct.token(msg));
//   - idempotent resend: acct.resendKind() draws 'same' / 'changed' / '' by the shares,
//     acct.resend(msg, kind, request) sends the repeat and writes its own line.
//
// Environment (set by `deliverydags run` and the Dagster asset):
//   DD_RUN_ID          prefix that makes ids unique per run
//   DD_COLLECTOR_URL   where the target must POST receipts (callback_url base)
//   DD_ACCOUNTING      "off" writes no send lines (benchmark baseline only)
//   DD_VARIANTS        optional A/B split, e.g. "llm:0.5,template:0.5"
//   DD_TENANTS         optional "tenant:token,tenant:token" (tenants' callbacks: the
//                      collector's /v1/receipts/<tenant>)
//   DD_RESEND_SHARE    share of accepted messages resent with the identical body (0)
//   DD_CONFLICT_SHARE  share of accepted messages resent with a changed body (0)
import exec from 'k6/execution';
import crypto from 'k6/crypto';
import { sleep } from 'k6';
import { Counter, Rate } from 'k6/metrics';

// Rate of messages not accepted (rejected or no answer): k6 thresholds gate on it.
export const ddErrors = new Rate('dd_errors');
// Messages sent (resends aside): with batches, iterations count requests, this messages.
export const ddMessages = new Counter('dd_messages');

function parseVariants(spec) {
  if (!spec) return [];
  let total = 0;
  const arms = spec.split(',').map((part) => {
    const [name, weight] = part.split(':');
    total += Number(weight || 1);
    return { name: name.trim(), cum: total };
  });
  return arms.map((a) => ({ name: a.name, cum: a.cum / total }));
}

// "a:tokA,b:tokB" -> [{name, token}]; a token may itself hold ':' (split at the first).
export function parseTenants(spec) {
  if (!spec) return [];
  return spec
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part)
    .map((part) => {
      const at = part.indexOf(':');
      if (at <= 0) throw new Error(`DD_TENANTS: "${part}" is not tenant:token`);
      return { name: part.slice(0, at), token: part.slice(at + 1) };
    });
}

const UNIT_MS = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

// A k6 duration ("1s", "500ms", "1m30s", or a number of ms) in ms; NaN if unreadable.
export function durationMs(value) {
  if (typeof value === 'number') return value;
  const text = String(value || '');
  const re = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g;
  let total = 0;
  let used = 0;
  let part;
  while ((part = re.exec(text)) !== null) {
    total += Number(part[1]) * UNIT_MS[part[2]];
    used += part[0].length;
  }
  return used === text.length && used > 0 ? total : NaN;
}

// The schedule of an arrival-rate scenario's options: iteration k (iterationInTest) ->
// ms after the scenario's start, as k6 computes its start (lib/executor:
// constant_arrival_rate.go, k * timeUnit / rate; ramping_arrival_rate.go's cal(), where
// iteration k starts when the area under the rate curve reaches k + 1). null for other
// executors, and for an iteration past the last stage.
export function arrivalSchedule(sc) {
  if (!sc) return null;
  const unit = durationMs(sc.timeUnit || '1s');
  if (!(Number.isFinite(unit) && unit > 0)) return null;
  if (sc.executor === 'constant-arrival-rate') {
    const rate = Number(sc.rate);
    return rate > 0 ? (k) => (k * unit) / rate : null;
  }
  if (sc.executor !== 'ramping-arrival-rate') return null;
  const stages = (sc.stages || []).map((st) => ({
    to: Number(st.target || 0) / unit,
    dur: durationMs(st.duration),
  }));
  if (stages.some((st) => !Number.isFinite(st.to) || !Number.isFinite(st.dur))) return null;
  const startRate = Number(sc.startRate || 0) / unit;
  return (k) => {
    const i = k + 1;
    let from = startRate;
    let doneSoFar = 0;
    let endCount = 0;
    let stageStart = 0;
    for (const { to, dur } of stages) {
      if (from !== to) {
        endCount += dur * ((to - from) / 2 + from);
        if (i <= endCount) {
          const area = dur * (from * from * dur + 2 * (i - doneSoFar) * (to - from));
          const root = Math.sqrt(Math.max(0, area));
          return stageStart + (from * dur - root) / (from - to);
        }
      } else {
        endCount += dur * to;
        if (i <= endCount) return stageStart + (i - doneSoFar) / to;
      }
      doneSoFar = endCount;
      from = to;
      stageStart += dur;
    }
    return null;
  };
}

function statusOf(res) {
  return res && typeof res.status === 'number' ? res.status : 0;
}

export class Accounting {
  constructor(opts = {}) {
    this.runId = opts.runId || __ENV.DD_RUN_ID || 'run';
    this.collector = (opts.collectorUrl || __ENV.DD_COLLECTOR_URL || '').replace(/\/$/, '');
    this.callbackUrl = this.collector ? `${this.collector}/v1/receipts` : '';
    this.enabled = (opts.accounting || __ENV.DD_ACCOUNTING || 'on') !== 'off';
    this.variants = parseVariants(opts.variants || __ENV.DD_VARIANTS);
    this.tenants = opts.tenants || parseTenants(__ENV.DD_TENANTS);
    const given = (name, env, dflt) => (opts[name] !== undefined ? opts[name] : env || dflt);
    this.defaultToken = given('token', __ENV.DELIVERYDAGS_TARGET_TOKEN, '');
    this.resendShare = Number(given('resendShare', __ENV.DD_RESEND_SHARE, 0));
    this.conflictShare = Number(given('conflictShare', __ENV.DD_CONFLICT_SHARE, 0));
    // accepted(res) decides the send class of an answer; contract v1 accepts with 202.
    this.accepted = opts.accepted || ((res) => res.status === 202);
    this.seq = 0;
    this.clockBase = null;
    this.schedules = {}; // per scenario: iteration -> ms after its start, null if none
  }

  // Wall-clock milliseconds with a sub-millisecond fraction. Date.now() has whole
  // milliseconds only, so anchor the test's monotonic clock to a Date.now() tick once.
  now() {
    if (this.clockBase === null) {
      const d0 = Date.now();
      let d1 = d0;
      while (d1 === d0) d1 = Date.now();
      this.clockBase = d1 - exec.instance.currentTestRunDuration;
    }
    return this.clockBase + exec.instance.currentTestRunDuration;
  }

  // When the schedule meant this iteration to start (Unix ms), or null when the scenario
  // has no schedule of its own (an arrival-rate executor's: see arrivalSchedule). k6
  // numbers (exec.scenario.iterationInTest) only the iterations it runs, so after a
  // dropped one every later message counts the drop in its delay: the harness fell
  // behind the schedule. startTime has whole ms (delays may read up to 1 ms long).
  intendedMs() {
    const name = exec.scenario.name;
    if (!(name in this.schedules)) {
      this.schedules[name] = arrivalSchedule(((exec.test.options || {}).scenarios || {})[name]);
    }
    const at = this.schedules[name];
    const offset = at === null ? null : at(exec.scenario.iterationInTest);
    return offset === null ? null : exec.scenario.startTime + offset;
  }

  // The next message of this VU's stream: a VU sends one message at a time, so
  // seq n+1 leaves only after n was answered and per-stream order is well defined.
  // With tenants, the VU's tenant (VUs round-robin) and that tenant's callback.
  next() {
    const vu = exec.vu.idInTest;
    const seq = this.seq++;
    let variant = '';
    if (this.variants.length) {
      const r = Math.random();
      variant = (this.variants.find((a) => r < a.cum) || this.variants[this.variants.length - 1]).name;
    }
    const msg = {
      id: `${this.runId}-${vu}-${seq}`,
      stream: `${this.runId}-${vu}`,
      seq: seq,
      callback_url: this.callbackUrl,
      variant: variant,
      intended_ms: this.intendedMs(),
    };
    if (this.tenants.length) {
      const tenant = this.tenants[(vu - 1) % this.tenants.length];
      msg.tenant = tenant.name;
      if (this.collector) {
        msg.callback_url = `${this.collector}/v1/receipts/${encodeURIComponent(tenant.name)}`;
      }
    }
    return msg;
  }

  // The bearer token for msg: its tenant's, else the target token.
  token(msg) {
    if (msg && msg.tenant !== undefined) {
      const tenant = this.tenants.find((t) => t.name === msg.tenant);
      if (tenant) return tenant.token;
    }
    return this.defaultToken;
  }

  // A string payload of `bytes` bytes once JSON-encoded (quotes included; ASCII, starting
  // with the message id so no two are alike); its SHA-256 goes to msg.digest.
  payload(msg, bytes) {
    const size = Math.max(0, Number(bytes) - 2);
    const head = `${msg.id}.`;
    const text = head.length >= size ? head.slice(0, size) : head + 'x'.repeat(size - head.length);
    msg.digest = crypto.sha256(text, 'hex');
    msg.bytes = text.length + 2; // encoded: the JSON string's quotes
    return text;
  }

  // The same payload changed (for a conflicting resend): same size, another last char.
  static changed(payload) {
    if (typeof payload === 'string') {
      if (!payload) return 'y';
      return payload.slice(0, -1) + (payload.endsWith('y') ? 'z' : 'y');
    }
    return { ...payload, resend: 'changed' };
  }

  // Call request(), retrying 429 and 503 up to maxTries times in all (honouring
  // Retry-After, at most maxWaitS each); the last response. this.backpressure: the 429
  // answers among them, and those without a Retry-After.
  _tries(request, maxTries, maxWaitS) {
    this.backpressure = { answers: 0, withoutRetryAfter: 0 };
    let res = request();
    for (let tries = 1; ; tries++) {
      const retryAfter = res.headers && res.headers['Retry-After'];
      if (res.status === 429) {
        this.backpressure.answers += 1;
        if (!retryAfter) this.backpressure.withoutRetryAfter += 1;
      }
      if (tries >= maxTries || !(res.status === 429 || res.status === 503)) return res;
      const after = Number(retryAfter || 1);
      sleep(Math.min(Number.isFinite(after) ? after : 1, maxWaitS));
      res = request();
    }
  }

  _record(msg, sentMs, cls, status, resend) {
    if (!this.enabled) return;
    const line = {
      dd: 1,
      id: msg.id,
      stream: msg.stream,
      seq: msg.seq,
      sent_ms: sentMs,
      class: cls,
      status: status,
      variant: msg.variant,
    };
    if (msg.intended_ms !== null && msg.intended_ms !== undefined) {
      line.intended_ms = msg.intended_ms;
    }
    if (msg.digest !== undefined) line.digest = msg.digest;
    if (msg.tenant !== undefined) line.tenant = msg.tenant;
    if (msg.bytes !== undefined) line.bytes = msg.bytes;
    if (msg.cross_tenant) line.cross_tenant = true;
    if (msg.answers_429) line.answers_429 = msg.answers_429; // 429s before its last answer too
    if (msg.no_retry_after) line.no_retry_after = msg.no_retry_after;
    if (resend) line.resend = resend;
    console.log(JSON.stringify(line));
  }

  // Send one message with `request` (a function returning a k6 http response), retrying
  // 429 and 503 up to `maxTries` times (honouring Retry-After, at most `maxWaitS` each).
  // Returns the last response. Classification: accepted / rejected / indeterminate.
  send(msg, request, { maxTries = Number(__ENV.DD_MAX_TRIES || 3), maxWaitS = 5 } = {}) {
    const sentMs = this.now();
    const res = this._tries(request, maxTries, maxWaitS);
    let cls = 'rejected';
    if (res.status === 0) cls = 'indeterminate';
    else if (this.accepted(res)) cls = 'accepted';
    ddErrors.add(cls !== 'accepted');
    ddMessages.add(1);
    if (this.backpressure.answers) msg.answers_429 = this.backpressure.answers;
    if (this.backpressure.withoutRetryAfter) {
      msg.no_retry_after = this.backpressure.withoutRetryAfter;
    }
    this._record(msg, sentMs, cls, res.status);
    return res;
  }

  // Send `msgs` in one POST /v1/messages:batch with `request` (its response body must be
  // read: responseType 'text'), retrying a whole-request 429/503 like send(). Each message
  // is classified by its own status in a 200 answer ({"results": [{"id", "status"}, ...]},
  // in the request's order); a result missing or for another id leaves it indeterminate
  // (status 200), no answer all of them (status 0), any other whole-request answer
  // rejects all of them with its status. Returns the response; sets msg.status_code.
  sendBatch(msgs, request, { maxTries = Number(__ENV.DD_MAX_TRIES || 3), maxWaitS = 5 } = {}) {
    const sentMs = this.now();
    const res = this._tries(request, maxTries, maxWaitS);
    const status = statusOf(res);
    let results = null;
    if (status === 200) {
      try {
        const doc = res.json();
        if (doc && Array.isArray(doc.results)) results = doc.results;
      } catch (e) {
        results = null;
      }
    }
    msgs.forEach((msg, i) => {
      let cls = 'rejected';
      let code = status;
      if (status === 0) cls = 'indeterminate';
      else if (status === 200) {
        const r = results && results[i];
        if (!r || r.id !== msg.id || typeof r.status !== 'number') cls = 'indeterminate';
        else {
          code = r.status;
          cls = code === 202 ? 'accepted' : 'rejected';
        }
      }
      msg.status_code = code;
      msg.send_class = cls;
      ddErrors.add(cls !== 'accepted');
      ddMessages.add(1);
      this._record(msg, sentMs, cls, code);
    });
    return res;
  }

  // Whether to resend an accepted message on purpose, drawn by the shares: 'changed'
  // (DD_CONFLICT_SHARE), 'same' (DD_RESEND_SHARE) or '' (no resend).
  resendKind() {
    if (this.resendShare <= 0 && this.conflictShare <= 0) return '';
    const r = Math.random();
    if (r < this.conflictShare) return 'changed';
    if (r < this.conflictShare + this.resendShare) return 'same';
    return '';
  }

  // Send a repeat of msg (kind 'same': the identical body, 'changed': another body) with
  // `request`, retried like send(); writes a resend line (not a message: the ledger counts
  // it in `resent`, in `conflicts` when answered 409). Returns the last response.
  resend(msg, kind, request, { maxTries = Number(__ENV.DD_MAX_TRIES || 3), maxWaitS = 5 } = {}) {
    const sentMs = this.now();
    const res = this._tries(request, maxTries, maxWaitS);
    let cls = 'rejected';
    if (res.status === 0) cls = 'indeterminate';
    else if (res.status === 202) cls = 'accepted';
    this._record(msg, sentMs, cls, res.status, kind || 'same');
    return res;
  }
}

// handleSummary helper: k6's own summary as JSON where deliverydags expects it, plus a
// short text summary on stdout.
export function summaryOutputs(data) {
  const out = {};
  if (__ENV.DD_SUMMARY_PATH) out[__ENV.DD_SUMMARY_PATH] = JSON.stringify(data);
  const m = data.metrics;
  const val = (name, key) => (m[name] && m[name].values ? m[name].values[key] : undefined);
  // messages, not requests (a batch is one iteration); scripts without dd_messages: iterations
  const sent = m.dd_messages ? 'dd_messages' : 'iterations';
  const lines = [
    `${val(sent, 'count') || 0} messages, ` +
      `${(val(sent, 'rate') || 0).toFixed(1)}/s, ` +
      `dropped ${val('dropped_iterations', 'count') || 0}, ` +
      `not accepted ${((val('dd_errors', 'rate') || 0) * 100).toFixed(3)}%`,
  ];
  for (const [name, metric] of Object.entries(m)) {
    for (const [expr, res] of Object.entries(metric.thresholds || {})) {
      lines.push(`threshold ${name} ${expr}: ${res.ok ? 'ok' : 'CROSSED'}`);
    }
  }
  out.stdout = lines.join('\n') + '\n';
  return out;
}
