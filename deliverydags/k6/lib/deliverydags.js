// Accounting-aware sending for k6 scripts (deliverydags contract v1).
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
// Environment (set by `deliverydags run` and the Dagster asset):
//   DD_RUN_ID          prefix that makes ids unique per run
//   DD_COLLECTOR_URL   where the target must POST receipts (callback_url base)
//   DD_ACCOUNTING      "off" writes no send lines (benchmark baseline only)
//   DD_VARIANTS        optional A/B split, e.g. "llm:0.5,template:0.5"
import exec from 'k6/execution';
import { sleep } from 'k6';
import { Rate } from 'k6/metrics';

// Rate of messages not accepted (rejected or no answer): k6 thresholds gate on it.
export const ddErrors = new Rate('dd_errors');

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

export class Accounting {
  constructor(opts = {}) {
    this.runId = opts.runId || __ENV.DD_RUN_ID || 'run';
    const collector = (opts.collectorUrl || __ENV.DD_COLLECTOR_URL || '').replace(/\/$/, '');
    this.callbackUrl = collector ? `${collector}/v1/receipts` : '';
    this.enabled = (opts.accounting || __ENV.DD_ACCOUNTING || 'on') !== 'off';
    this.variants = parseVariants(opts.variants || __ENV.DD_VARIANTS);
    // accepted(res) decides the send class of an answer; contract v1 accepts with 202.
    this.accepted = opts.accepted || ((res) => res.status === 202);
    this.seq = 0;
    this.clockBase = null;
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

  // The next message of this VU's stream: a VU sends one message at a time, so
  // seq n+1 leaves only after n was answered and per-stream order is well defined.
  next() {
    const vu = exec.vu.idInTest;
    const seq = this.seq++;
    let variant = '';
    if (this.variants.length) {
      const r = Math.random();
      variant = (this.variants.find((a) => r < a.cum) || this.variants[this.variants.length - 1]).name;
    }
    return {
      id: `${this.runId}-${vu}-${seq}`,
      stream: `${this.runId}-${vu}`,
      seq: seq,
      callback_url: this.callbackUrl,
      variant: variant,
    };
  }

  // Send one message with `request` (a function returning a k6 http response), retrying
  // 429 and 503 up to `maxTries` times (honouring Retry-After, at most `maxWaitS` each).
  // Returns the last response. Classification: accepted / rejected / indeterminate.
  send(msg, request, { maxTries = Number(__ENV.DD_MAX_TRIES || 3), maxWaitS = 5 } = {}) {
    const sentMs = this.now();
    let res = request();
    for (let tries = 1; tries < maxTries && (res.status === 429 || res.status === 503); tries++) {
      const after = Number((res.headers && res.headers['Retry-After']) || 1);
      sleep(Math.min(Number.isFinite(after) ? after : 1, maxWaitS));
      res = request();
    }
    let cls = 'rejected';
    if (res.status === 0) cls = 'indeterminate';
    else if (this.accepted(res)) cls = 'accepted';
    ddErrors.add(cls !== 'accepted');
    if (this.enabled) {
      console.log(
        JSON.stringify({
          dd: 1,
          id: msg.id,
          stream: msg.stream,
          seq: msg.seq,
          sent_ms: sentMs,
          class: cls,
          status: res.status,
          variant: msg.variant,
        }),
      );
    }
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
  const lines = [
    `${val('iterations', 'count') || 0} messages, ` +
      `${(val('iterations', 'rate') || 0).toFixed(1)}/s, ` +
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
