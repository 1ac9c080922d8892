// message_soak: contract-v1 messages at a constant arrival rate.
//
// Environment: DD_TARGET_URL, DD_RATE (messages/s), DD_DURATION_S, DD_PAYLOAD_BYTES,
// DD_MAX_ERROR_RATE (k6 threshold on messages not accepted), DD_MAX_VUS,
// DD_REQUEST_TIMEOUT_S, DELIVERYDAGS_TARGET_TOKEN, plus the Accounting variables
// (lib/deliverydags.js).
import http from 'k6/http';
import { Accounting, summaryOutputs } from './lib/deliverydags.js';

const rate = Number(__ENV.DD_RATE || 50);
const durationS = Number(__ENV.DD_DURATION_S || 10);
const maxVUs = Number(__ENV.DD_MAX_VUS || Math.max(50, Math.min(2000, rate * 2)));
const maxErrorRate = Number(__ENV.DD_MAX_ERROR_RATE || 0.001);
// Up to 1% of the planned messages may be dropped by k6 (VUs busy) before the
// threshold says the target could not take the rate.
const maxDropped = Math.floor(rate * durationS * 0.01);

export const options = {
  scenarios: {
    message_soak: {
      executor: 'constant-arrival-rate',
      rate: rate,
      timeUnit: '1s',
      duration: `${durationS}s`,
      preAllocatedVUs: Math.min(maxVUs, Math.max(10, Math.ceil(rate / 10))),
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
const params = {
  headers: {
    'Content-Type': 'application/json',
    Authorization: `Bearer ${__ENV.DELIVERYDAGS_TARGET_TOKEN || ''}`,
  },
  timeout: `${Number(__ENV.DD_REQUEST_TIMEOUT_S || 10)}s`,
  responseType: 'none',
};
const filler = 'x'.repeat(Number(__ENV.DD_PAYLOAD_BYTES || 256));
const acct = new Accounting();

export default function () {
  const msg = acct.next();
  const body = JSON.stringify({
    id: msg.id,
    stream: msg.stream,
    seq: msg.seq,
    payload: { text: filler, variant: msg.variant },
    callback_url: msg.callback_url,
  });
  acct.send(msg, () => http.post(`${targetUrl}/v1/messages`, body, params));
}

export function handleSummary(data) {
  return summaryOutputs(data);
}
