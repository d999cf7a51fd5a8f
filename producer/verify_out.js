#!/usr/bin/env node
'use strict';

// Checks an event_generator.js --out file against what the broker holds, reading the topic with
// kcat (which must be on PATH):
//   node verify_out.js --brokers 127.0.0.1:9092 --topic web_events --out /tmp/out.ndjson
// - every line has exactly the documented keys, in order;
// - every (partition, offset) of the file exists on the broker with the same key and the same
//   value bytes (null and empty values are told apart), and the broker holds nothing else;
// - within each partition the file lists offsets in increasing order;
// - "event"/"late" lines: "event" re-serialises to exactly the value bytes;
// - "bad" lines really are bad for a strict consumer, in the way bad_kind says;
// - non-late events have non-decreasing timestamps (instants) in file order.
// Exit status 0 when everything matches, 1 otherwise.

const fs = require('fs');
const { spawn } = require('child_process');
const { parseArgs } = require('util');

const KEYS = ['partition', 'offset', 'key', 'kind', 'bad_kind', 'value_b64', 'event'];
const BAD_KINDS = new Set([
  'not_json', 'not_object', 'missing_field', 'wrong_type', 'bad_timestamp', 'oversized',
  'invalid_utf8', 'empty',
]);

function readBroker(brokers, topic) {
  // per message: "<p> <o> <keylen> <valuelen> " key-bytes value-bytes "\n"; -1 lengths = null
  return new Promise((resolve, reject) => {
    const kc = spawn('kcat', ['-b', brokers, '-C', '-t', topic, '-e', '-q', '-f', '%p %o %K %S %k%s\n'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks = [];
    kc.stdout.on('data', (c) => chunks.push(c));
    kc.on('error', reject);
    kc.on('close', (code) => {
      if (code !== 0) return reject(new Error(`kcat exited with ${code}`));
      const buf = Buffer.concat(chunks);
      const map = new Map();
      let pos = 0;
      const field = () => {
        const sp = buf.indexOf(0x20, pos);
        if (sp < 0) throw new Error(`kcat output: truncated at byte ${pos}`);
        const v = Number(buf.toString('latin1', pos, sp));
        pos = sp + 1;
        return v;
      };
      while (pos < buf.length) {
        const p = field(), o = field(), kl = field(), vl = field();
        const key = kl < 0 ? null : buf.subarray(pos, pos + kl);
        pos += Math.max(kl, 0);
        const value = vl < 0 ? null : buf.subarray(pos, pos + vl);
        pos += Math.max(vl, 0);
        if (buf[pos] !== 0x0a) throw new Error(`kcat output: framing error at byte ${pos}`);
        pos++;
        map.set(`${p}/${o}`, { key, value });
      }
      resolve(map);
    });
  });
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$/;

function strictInstant(s) {
  if (typeof s !== 'string') return null;
  const m = RFC3339.exec(s);
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  const dim = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (mo < 1 || mo > 12 || d < 1 || d > dim || h > 23 || mi > 59 || se > 59) return null;
  let off = 0;
  if (m[9]) {
    const oh = Number(m[10]), om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    off = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const frac = m[7] ? Number(m[7].slice(0, 4).padEnd(4, '0').slice(1)) : 0;
  return Date.UTC(y, mo - 1, d, h, mi, se, frac) - off * 60000;
}

function validEvent(o) {
  // returns null if o is a valid event, else the reason
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return 'not an object';
  for (const f of ['timestamp', 'event_type', 'page']) if (!(f in o)) return `missing ${f}`;
  for (const f of ['event_id', 'event_type', 'user_id', 'session_id', 'page', 'country', 'device']) {
    if (f in o && typeof o[f] !== 'string') return `${f} not a string`;
  }
  if ('referrer' in o && typeof o.referrer !== 'string') return 'referrer not a string';
  if ('status_code' in o && !Number.isInteger(o.status_code)) return 'status_code not an integer';
  if ('response_time_ms' in o && !(typeof o.response_time_ms === 'number' && o.response_time_ms >= 0)) {
    return 'response_time_ms not a non-negative number';
  }
  if (strictInstant(o.timestamp) === null) return 'bad timestamp';
  return null;
}

function checkBad(kind, value, oversizeBytes) {
  // returns null if the value is bad in the way `kind` says, else a complaint
  if (kind === 'empty') return value === null || value.length === 0 ? null : 'not empty';
  if (value === null || value.length === 0) return 'empty value';
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(value);
  } catch (_) {
    return kind === 'invalid_utf8' ? null : 'invalid UTF-8';
  }
  if (kind === 'invalid_utf8') return 'valid UTF-8';
  let obj;
  try {
    obj = JSON.parse(text);
  } catch (_) {
    return kind === 'not_json' ? null : 'not JSON';
  }
  if (kind === 'not_json') return 'parses as JSON';
  if (kind === 'not_object') return obj !== null && typeof obj === 'object' && !Array.isArray(obj) ? 'is an object' : null;
  const why = validEvent(obj);
  switch (kind) {
    case 'missing_field': return why && why.startsWith('missing ') ? null : `expected a missing field, got ${why}`;
    case 'wrong_type': return why && /not /.test(why) ? null : `expected a wrongly typed field, got ${why}`;
    case 'bad_timestamp': return why === 'bad timestamp' ? null : `expected a bad timestamp, got ${why}`;
    case 'oversized':
      if (why !== null) return `oversized but not otherwise valid: ${why}`;
      return value.length > oversizeBytes ? null : `only ${value.length} bytes`;
    default: return `unknown bad_kind ${kind}`;
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      brokers: { type: 'string', default: 'localhost:9092' },
      topic: { type: 'string', default: 'web_events' },
      out: { type: 'string' },
      'oversize-bytes': { type: 'string', default: '1100000' },
    },
  });
  if (!values.out) {
    console.error('usage: node verify_out.js --brokers HOST:PORT --topic T --out FILE [--oversize-bytes N]');
    return 2;
  }
  const oversizeBytes = Number(values['oversize-bytes']);
  const broker = await readBroker(values.brokers, values.topic);
  const lines = fs.readFileSync(values.out, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();

  const problems = [];
  const problem = (msg) => { if (problems.length < 20) problems.push(msg); else problems.length++; };
  const seen = new Set();
  const lastOffset = new Map();
  const perPart = new Map();
  const kinds = {};
  let lastTs = -Infinity;
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    let r;
    try { r = JSON.parse(line); } catch (e) { problem(`${where}: not JSON`); return; }
    if (JSON.stringify(Object.keys(r)) !== JSON.stringify(KEYS)) problem(`${where}: keys ${Object.keys(r)}`);
    if (!Number.isInteger(r.partition) || !Number.isInteger(r.offset)) problem(`${where}: partition/offset not integers`);
    const id = `${r.partition}/${r.offset}`;
    if (seen.has(id)) problem(`${where}: ${id} listed twice`);
    seen.add(id);
    if ((lastOffset.get(r.partition) ?? -1) >= r.offset) problem(`${where}: offsets of partition ${r.partition} not increasing`);
    lastOffset.set(r.partition, r.offset);
    perPart.set(r.partition, (perPart.get(r.partition) || 0) + 1);
    const label = r.kind === 'bad' ? `bad:${r.bad_kind}` : r.kind;
    kinds[label] = (kinds[label] || 0) + 1;

    const value = r.value_b64 === null ? null : Buffer.from(r.value_b64, 'base64');
    const b = broker.get(id);
    if (!b) { problem(`${where}: ${id} not on the broker`); return; }
    const keyOk = r.key === null ? b.key === null : b.key !== null && b.key.equals(Buffer.from(r.key, 'utf8'));
    if (!keyOk) problem(`${where}: ${id}: key differs (file ${r.key}, broker ${b.key})`);
    const valueOk = value === null ? b.value === null : b.value !== null && b.value.equals(value);
    if (!valueOk) problem(`${where}: ${id}: value differs`);

    if (r.kind === 'event' || r.kind === 'late') {
      if (r.bad_kind !== null) problem(`${where}: bad_kind set on a good event`);
      if (value === null || JSON.stringify(r.event) !== value.toString('utf8')) problem(`${where}: event differs from value`);
      const why = validEvent(r.event);
      if (why) problem(`${where}: invalid event: ${why}`);
      if (r.kind === 'event') {
        const t = strictInstant(r.event.timestamp);
        if (t < lastTs) problem(`${where}: timestamp goes back (${r.event.timestamp})`);
        lastTs = Math.max(lastTs, t);
      }
    } else if (r.kind === 'bad') {
      if (!BAD_KINDS.has(r.bad_kind)) problem(`${where}: unknown bad_kind ${r.bad_kind}`);
      else if (r.event !== null) problem(`${where}: event not null on a bad message`);
      else {
        const why = checkBad(r.bad_kind, value, oversizeBytes);
        if (why) problem(`${where}: ${r.bad_kind}: ${why}`);
      }
    } else {
      problem(`${where}: unknown kind ${r.kind}`);
    }
  });
  for (const id of broker.keys()) if (!seen.has(id)) problem(`broker holds ${id}, not in the file`);

  const parts = [...perPart.entries()].sort((a, b) => a[0] - b[0]).map(([p, n]) => `p${p}=${n}`).join(' ');
  console.log(`${lines.length} lines, broker holds ${broker.size} messages; per partition: ${parts}`);
  console.log(`kinds: ${Object.entries(kinds).sort().map(([k, n]) => `${k}=${n}`).join(' ')}`);
  if (problems.length > 0) {
    for (const p of problems.filter(Boolean)) console.log(`PROBLEM: ${p}`);
    console.log(`FAILED: ${problems.length} problem(s)`);
    return 1;
  }
  console.log('OK: the file matches the broker');
  return 0;
}

main().then((c) => { process.exitCode = c; }, (e) => { console.error(`verify_out: ${e.message}`); process.exitCode = 1; });
