// message_soak: contract-v1 messages at a constant arrival rate.
//
// Environment: DD_TARGET_URL, DD_RATE (messages/s), DD_DURATION_S, DD_PAYLOAD_BYTES,
// DD_MAX_ERROR_RATE (k6 threshold on messages not accepted), DD_MAX_VUS,
// DD_REQUEST_TIMEOUT_S, DELIVERYDAGS_TARGET_TOKEN, plus the Accounting variables
// (lib/deliverydags.js: DD_RUN_ID, DD_COLLECTOR_URL, DD_VARIANTS, DD_TENANTS,
// DD_RESEND_SHARE, DD_CONFLICT_SHARE, ...). Contract v1.1, each off by default:
//   DD_BATCH      messages per request (default 1: one POST /v1/messages each; more: one
//                 POST /v1/messages:batch of that many, 1 to 500). DD_RATE stays messages/s.
//   DD_INTEGRITY  "on": string payloads of DD_PAYLOAD_BYTES (encoded, <= 65536) whose
//                 SHA-256 each send line keeps (the ledger checks receipts' digests).
// Every message's send line carries intended_ms (the schedule's time: send delay).
import http from 'k6/http';
import { Accounting, summaryOutputs } from './lib/deliverydags.js';

const rate = Number(__ENV.DD_RATE || 50);
const durationS = Number(__ENV.DD_DURATION_S || 10);
const batch = Math.max(1, Math.min(500, Math.floor(Number(__ENV.DD_BATCH || 1))));
const integrity = (__ENV.DD_INTEGRITY || 'off') === 'on';
const payloadBytes = Number(__ENV.DD_PAYLOAD_BYTES || 256);
if (integrity && !(payloadBytes >= 2 && payloadBytes <= 65536)) {
  throw new Error(`DD_PAYLOAD_BYTES must be 2 to 65536 with DD_INTEGRITY=on, not ${payloadBytes}`);
}
const requestRate = rate / batch; // iterations (requests) per second
const maxVUs = Number(__ENV.DD_MAX_VUS || Math.max(50, Math.min(2000, requestRate * 2)));
const maxErrorRate = Number(__ENV.DD_MAX_ERROR_RATE || 0.001);
// Up to 1% of the planned requests may be dropped by k6 (VUs busy) before the
// threshold says the target could not take the rate.
const maxDropped = Math.floor(requestRate * durationS * 0.01);

export const options = {
  scenarios: {
    message_soak: {
      executor: 'constant-arrival-rate',
      // `rate` messages per second as `rate` requests per `batch` seconds: exact for any
      // batch size (k6's rate is a whole number of iterations per timeUnit).
      rate: rate,
      timeUnit: `${batch}s`,
      duration: `${durationS}s`,
      preAllocatedVUs: Math.min(maxVUs, Math.max(10, Math.ceil(requestRate / 10))),
      maxVUs: maxVUs,
      gracefulStop: '10s',
    },
  },
  thresholds: {
    dd_errors: [`rate<${maxErrorRate}`],
    dropped_iterations: [`count<=${maxDropped}`],
  },
  discardResponseBodies: true,
  // Per-message ids are not tags: keep k6's time series small at any rate.
  systemTags: ['status', 'method', 'scenario', 'expected_response'],
};

const targetUrl = (__ENV.DD_TARGET_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const timeout = `${Number(__ENV.DD_REQUEST_TIMEOUT_S || 10)}s`;
const filler = 'x'.repeat(payloadBytes);
// DD_PAYLOAD_MIX (with DD_INTEGRITY=on): sizes in bytes, e.g. "1024,16384,65536", taken
// in turn by seq; each send line records the size it sent ("bytes").
const payloadMix = (__ENV.DD_PAYLOAD_MIX || '').split(',').filter((x) => x.trim()).map(Number);
if (payloadMix.some((n) => !(n >= 2 && n <= 65536))) {
  throw new Error(`DD_PAYLOAD_MIX sizes must be 2 to 65536 bytes, not ${__ENV.DD_PAYLOAD_MIX}`);
}
const acct = new Accounting();
const paramsByToken = {};

// A batch's answer must be read (each message's status is in it); a single POST's not.
function params(msg, read) {
  const token = acct.token(msg);
  const key = `${read ? 'r' : 'n'}:${token}`;
  if (!(key in paramsByToken)) {
    paramsByToken[key] = {
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      timeout: timeout,
      responseType: read ? 'text' : 'none',
    };
  }
  return paramsByToken[key];
}

function message(msg) {
  return {
    id: msg.id,
    stream: msg.stream,
    seq: msg.seq,
    payload: integrity
      ? acct.payload(msg, payloadMix.length ? payloadMix[msg.seq % payloadMix.length] : payloadBytes)
      : { text: filler, variant: msg.variant },
    callback_url: msg.callback_url,
    ...(msg.tenant !== undefined ? { tenant: msg.tenant } : {}),
  };
}

// Resend a share of the accepted messages on purpose (DD_RESEND_SHARE, DD_CONFLICT_SHARE).
function maybeResend(msg, body) {
  const kind = acct.resendKind();
  if (!kind) return;
  const again = kind === 'same' ? body : { ...body, payload: Accounting.changed(body.payload) };
  const text = JSON.stringify(again);
  acct.resend(msg, kind, () => http.post(`${targetUrl}/v1/messages`, text, params(msg, false)));
}

// DD_CROSS_TENANT_SHARE (with DD_TENANTS, single sends): this share of messages goes out
// with another tenant's token, on purpose; each must be answered 403 (its send line says
// "cross_tenant": true).
const crossShare = Number(__ENV.DD_CROSS_TENANT_SHARE || 0);

function crossParams(msg) {
  if (!(crossShare > 0) || acct.tenants.length < 2 || Math.random() >= crossShare) return null;
  const others = acct.tenants.filter((t) => t.name !== msg.tenant);
  msg.cross_tenant = true;
  const token = others[msg.seq % others.length].token;
  return {
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    timeout: timeout,
    responseType: 'none',
  };
}

export default function () {
  if (batch === 1) {
    const msg = acct.next();
    const body = message(msg);
    const request = crossParams(msg) || params(msg, false);
    const res = acct.send(msg, () =>
      http.post(`${targetUrl}/v1/messages`, JSON.stringify(body), request),
    );
    if (res.status === 202) maybeResend(msg, body);
    return;
  }
  const msgs = [];
  for (let i = 0; i < batch; i++) msgs.push(acct.next());
  const bodies = msgs.map(message);
  const text = JSON.stringify({ messages: bodies });
  const url = `${targetUrl}/v1/messages:batch`;
  acct.sendBatch(msgs, () => http.post(url, text, params(msgs[0], true)));
  msgs.forEach((msg, i) => {
    if (msg.send_class === 'accepted') maybeResend(msg, bodies[i]);
  });
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
