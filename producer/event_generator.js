#!/usr/bin/env node
'use strict';

// Synthetic web-event generator for trafficagg: publishes JSON events (and, on request, late
// events and deliberately broken messages) to a Kafka topic. See README.md for the schema, the
// options, the --out format and the determinism guarantee.

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const fs = require('fs');
const crypto = require('crypto');
const { parseArgs } = require('util');

const PROG = 'event_generator';

// ---------------------------------------------------------------------------------------------
// Seeded PRNG: sfc32 (Small Fast Chaotic, 128-bit state), seeded from a string with cyrb128.
// Used for everything random in the generated stream, with or without --seed (without --seed
// the seed itself is random and printed, so a run can be reproduced).
// ---------------------------------------------------------------------------------------------

function cyrb128(str) {
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
  for (let i = 0; i < str.length; i++) {
    const k = str.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

class Rng {
  constructor(seed) {
    [this.a, this.b, this.c, this.d] = cyrb128(String(seed));
    for (let i = 0; i < 20; i++) this.u32();
  }

  // next 32-bit unsigned integer (sfc32)
  u32() {
    let { a, b, c, d } = this;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    this.a = a; this.b = b; this.c = c; this.d = d;
    return t >>> 0;
  }

  // uniform float in [0, 1)
  next() {
    return this.u32() / 4294967296;
  }

  // uniform integer in [0, n)
  int(n) {
    return Math.floor(this.next() * n);
  }

  chance(p) {
    return this.next() < p;
  }

  pick(arr) {
    return arr[this.int(arr.length)];
  }

  // standard normal (Box-Muller, one value per call)
  normal() {
    const u1 = 1 - this.next(); // (0, 1]
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  hex32() {
    return this.u32().toString(16).padStart(8, '0');
  }
}

// A discrete distribution from [value, weight] pairs, sampled with one uniform draw.
class Weighted {
  constructor(pairs) {
    this.values = pairs.map((p) => p[0]);
    const total = pairs.reduce((s, p) => s + p[1], 0);
    let acc = 0;
    this.cdf = pairs.map((p) => (acc += p[1] / total));
    this.cdf[this.cdf.length - 1] = 1;
  }

  sample(rng) {
    const u = rng.next();
    const cdf = this.cdf;
    for (let i = 0; i < cdf.length; i++) if (u < cdf[i]) return this.values[i];
    return this.values[this.values.length - 1];
  }
}

// Zipf(s) over ranks 0..n-1 (rank 0 most frequent): P(rank k) proportional to 1/(k+1)^s.
class Zipf {
  constructor(n, s) {
    const cdf = new Float64Array(n);
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc += 1 / Math.pow(i + 1, s);
      cdf[i] = acc;
    }
    for (let i = 0; i < n; i++) cdf[i] /= acc;
    cdf[n - 1] = 1;
    this.cdf = cdf;
  }

  sample(rng) {
    const u = rng.next();
    const cdf = this.cdf;
    let lo = 0, hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

// Kafka's murmur2 (same as the Java client's Utils.murmur2), used to choose partitions.
function murmur2(buf) {
  const m = 0x5bd1e995;
  const len = buf.length;
  let h = 0x9747b28c ^ len;
  const n4 = len & ~3;
  for (let i = 0; i < n4; i += 4) {
    let k = buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  switch (len & 3) {
    case 3: h ^= buf[n4 + 2] << 16; // fallthrough
    case 2: h ^= buf[n4 + 1] << 8; // fallthrough
    case 1: h ^= buf[n4]; h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

// partition = (murmur2(utf8(key)) & 0x7fffffff) % partitions; keyless messages round-robin on
// their sequence number.
function choosePartition(key, seq, partitions) {
  if (key === null) return seq % partitions;
  return (murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % partitions;
}

// ---------------------------------------------------------------------------------------------
// Distributions
// ---------------------------------------------------------------------------------------------

const EVENT_TYPES = new Weighted([
  ['page_view', 70], ['click', 20], ['add_to_cart', 6], ['purchase', 2], ['login', 1], ['search', 1],
]);

const COUNTRIES = new Weighted([
  ['US', 30], ['DE', 9], ['GB', 8], ['IN', 8], ['FR', 6], ['BR', 5], ['JP', 5], ['CA', 4],
  ['NL', 3], ['ES', 3], ['IT', 3], ['AU', 3], ['PL', 2], ['SE', 2], ['MX', 2], ['KR', 2],
  ['CH', 1], ['AT', 1], ['BE', 1], ['IE', 1], ['NG', 1], ['ZA', 1],
]);

const DEVICES = new Weighted([['desktop', 55], ['mobile', 38], ['tablet', 7]]);

// 94.5 % 2xx, 3 % 3xx, 2 % 4xx, 0.5 % 5xx
const STATUS_CODES = new Weighted([
  [200, 94.5],
  [301, 0.5], [302, 1.0], [304, 1.5],
  [400, 0.3], [401, 0.2], [403, 0.2], [404, 1.3],
  [500, 0.25], [502, 0.1], [503, 0.1], [504, 0.05],
]);

const EXTERNAL_REFERRERS = new Weighted([
  ['https://www.google.com/', 50], ['https://www.bing.com/', 8], ['https://duckduckgo.com/', 5],
  ['https://www.facebook.com/', 10], ['https://t.co/', 6], ['https://www.instagram.com/', 5],
  ['https://www.reddit.com/', 5], ['https://news.ycombinator.com/', 2],
  ['https://mail.example.net/newsletter', 5], ['https://partner.example.org/deals', 4],
]);

const SITE = 'https://shop.example.com';

const UTM_SOURCES = ['news', 'google', 'facebook', 'partner', 'mail'];
const UTM_MEDIA = ['email', 'cpc', 'social', 'referral'];

// Offsets (minutes) used for a minority of timestamps; the instant is the same, only its
// rendering differs.
const TZ_OFFSETS = [120, -300, 330, 540, -480, 0, 60, -180, 345, 600, -210];
const TZ_NON_Z_FRACTION = 0.15;

const STATIC_PAGES = [
  '/', '/products', '/search', '/cart', '/checkout', '/login', '/account', '/about', '/help',
  '/blog', '/contact', '/privacy',
];

// Page list in popularity-rank order: the static pages, then /products/N, /category/N and
// /blog/N interleaved 7:2:1.
function buildPages(n) {
  const pages = STATIC_PAGES.slice(0, n);
  let p = 1, c = 1, b = 1;
  for (let j = 0; pages.length < n; j++) {
    const r = j % 10;
    if (r < 7) pages.push(`/products/${p++}`);
    else if (r < 9) pages.push(`/category/${c++}`);
    else pages.push(`/blog/${b++}`);
  }
  return pages;
}

const SESSION_MEAN_EVENTS = 15;
const USER_ZIPF_EXPONENT = 0.6;
const RT_MEDIAN_MS = 80;
const RT_SIGMA = 0.8;
const RT_CAP_MS = 60000;

const BAD_KINDS = [
  'not_json', 'not_object', 'missing_field', 'wrong_type', 'bad_timestamp', 'oversized',
  'invalid_utf8', 'empty',
];

const REQUIRED_FIELDS = ['timestamp', 'event_type', 'page'];

// bad kinds defined by the flat schema's fields, not offered with --schema nested
const SCHEMA_BAD_KINDS = ['missing_field', 'wrong_type', 'bad_timestamp'];

function pad2(n) {
  return n < 10 ? '0' + n : String(n);
}

// RFC 3339 with milliseconds; offsetMin = null renders UTC as "Z", a number (minutes east of
// UTC, 0 included) as "+hh:mm"/"-hh:mm" local time.
function formatTimestamp(ms, offsetMin) {
  if (offsetMin === null) return new Date(ms).toISOString();
  const local = new Date(ms + offsetMin * 60000).toISOString().slice(0, 23);
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return `${local}${sign}${pad2(Math.floor(a / 60))}:${pad2(a % 60)}`;
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}

// ---------------------------------------------------------------------------------------------
// The generator: a deterministic function of (seed, options, sequence number, event time).
// ---------------------------------------------------------------------------------------------

class Generator {
  constructor(opts, partitions) {
    this.rng = new Rng(opts.seed);
    this.partitions = partitions;
    this.users = opts.users;
    this.userWidth = Math.max(6, String(opts.users).length);
    this.userZipf = new Zipf(opts.users, USER_ZIPF_EXPONENT);
    this.userState = new Map();
    this.pages = buildPages(opts.pages);
    this.pageZipf = new Zipf(opts.pages, opts.zipf);
    this.lateFraction = opts.lateFraction;
    this.lateBy = opts.lateBy;
    this.badFraction = opts.badFraction;
    this.badKinds = opts.badKinds;
    this.badCursor = 0;
    this.emptyCount = 0;
    this.oversizeBytes = opts.oversizeBytes;
    this.longPages = opts.longPages;
    this.seq = 0;
    this.partitionOfKey = new Map();
    this.schema = opts.schema;
  }

  partitionFor(key, seq) {
    if (key === null) return choosePartition(null, seq, this.partitions);
    let p = this.partitionOfKey.get(key);
    if (p === undefined) {
      p = choosePartition(key, seq, this.partitions);
      this.partitionOfKey.set(key, p);
    }
    return p;
  }

  userId(idx) {
    return 'u' + String(idx + 1).padStart(this.userWidth, '0');
  }

  newSessionId() {
    const r = this.rng;
    return 's' + r.hex32() + r.hex32();
  }

  eventId() {
    const r = this.rng;
    const a = r.u32(), b = r.u32(), c = r.u32(), d = r.u32();
    const h = (x) => x.toString(16).padStart(8, '0');
    const bh = h(((b & 0xffff0fff) | 0x00004000) >>> 0); // version 4
    const ch = h(((c & 0x3fffffff) | 0x80000000) >>> 0); // RFC 4122 variant
    return `${h(a)}-${bh.slice(0, 4)}-${bh.slice(4)}-${ch.slice(0, 4)}-${ch.slice(4)}${h(d)}`;
  }

  timestampString(ms) {
    const r = this.rng;
    const off = r.chance(TZ_NON_Z_FRACTION) ? r.pick(TZ_OFFSETS) : null;
    return formatTimestamp(ms, off);
  }

  responseTime(status) {
    let median = RT_MEDIAN_MS;
    if (status === 304) median = 15;
    else if (status >= 300 && status < 400) median = 25;
    else if (status >= 400 && status < 500) median = 40;
    else if (status >= 500) median = 400;
    const v = Math.exp(Math.log(median) + RT_SIGMA * this.rng.normal());
    return round3(Math.min(v, RT_CAP_MS));
  }

  // With --long-pages: the page, or with the probability of an entry of the spec, a URL of
  // that page with a query string of exactly that many bytes (UTM parameters and a random
  // search term: such URLs are unique in practice and compress badly). One draw per event,
  // and none without the option, so other streams are unchanged.
  longPage(page) {
    const r = this.rng;
    const u = r.next();
    let cum = 0;
    for (const { fraction, bytes } of this.longPages) {
      cum += fraction;
      if (u < cum) {
        let url = `${page}?utm_source=${r.pick(UTM_SOURCES)}&utm_medium=${r.pick(UTM_MEDIA)}` +
          `&utm_campaign=c${r.int(1000)}&q=`;
        while (url.length < bytes) url += r.u32().toString(36);
        return url.slice(0, bytes);
      }
    }
    return page;
  }

  // One valid event object for the user with index uidx at instant timeMs.
  makeEvent(uidx, timeMs) {
    const r = this.rng;
    let st = this.userState.get(uidx);
    if (st === undefined) {
      st = {
        country: COUNTRIES.sample(r),
        primaryDevice: DEVICES.sample(r),
        device: null,
        session: null,
        left: 0,
        lastPage: null,
      };
      this.userState.set(uidx, st);
    }
    if (st.left <= 0) {
      st.session = this.newSessionId();
      // geometric number of events, mean SESSION_MEAN_EVENTS
      st.left = 1 + Math.floor(Math.log(1 - r.next()) / Math.log(1 - 1 / SESSION_MEAN_EVENTS));
      st.device = r.chance(0.1) ? DEVICES.sample(r) : st.primaryDevice;
      st.lastPage = null;
    }
    st.left--;

    const eventType = EVENT_TYPES.sample(r);
    let page = this.pages[this.pageZipf.sample(r)];
    if (this.longPages.length > 0) page = this.longPage(page);
    let referrer;
    const u = r.next();
    if (st.lastPage !== null) {
      if (u < 0.8) referrer = SITE + st.lastPage;
      else if (u < 0.95) referrer = undefined;
      else referrer = EXTERNAL_REFERRERS.sample(r);
    } else if (u >= 0.4) {
      referrer = EXTERNAL_REFERRERS.sample(r);
    }
    st.lastPage = page;
    const status = STATUS_CODES.sample(r);

    const ev = {
      event_id: this.eventId(),
      event_type: eventType,
      user_id: this.userId(uidx),
      session_id: st.session,
    };
    ev.page = page;
    if (referrer !== undefined) ev.referrer = referrer;
    ev.country = st.country;
    ev.device = st.device;
    ev.status_code = status;
    ev.response_time_ms = this.responseTime(status);
    ev.timestamp = this.timestampString(timeMs);
    return ev;
  }

  // The same event in the nested shape (--schema nested): epoch milliseconds, the request's
  // fields in an object, latency in microseconds, the visitor instead of the user id, and for a
  // purchase an order with a total in cents.
  nestedShape(ev, timeMs) {
    const o = {
      ts: timeMs,
      type: ev.event_type,
      request: { url: ev.page, status: ev.status_code, duration_us: Math.round(ev.response_time_ms * 1000) },
      geo: { country: ev.country },
      visitor: ev.user_id,
      session: ev.session_id,
      device: ev.device,
    };
    if (ev.referrer !== undefined) o.request.referrer = ev.referrer;
    if (ev.event_type === 'purchase') {
      o.order = { id: ev.event_id, total: (100 + this.rng.int(99900)) / 100 };
    }
    return o;
  }

  // Produce message number this.seq. timeMs is its normal event time.
  next(timeMs) {
    const r = this.rng;
    const seq = this.seq++;
    if (this.badFraction > 0 && r.chance(this.badFraction)) {
      return this.makeBad(seq, timeMs);
    }
    const uidx = this.userZipf.sample(r);
    const late = this.lateFraction > 0 && r.chance(this.lateFraction);
    const t = late ? timeMs - this.lateBy : timeMs;
    let ev = this.makeEvent(uidx, t);
    if (this.schema === 'nested') ev = this.nestedShape(ev, t);
    const json = JSON.stringify(ev);
    const key = this.userId(uidx);
    return {
      seq,
      key,
      partition: this.partitionFor(key, seq),
      value: Buffer.from(json, 'utf8'),
      kind: late ? 'late' : 'event',
      badKind: null,
      eventJson: json,
    };
  }

  makeBad(seq, timeMs) {
    const r = this.rng;
    const badKind = this.badKinds[this.badCursor++ % this.badKinds.length];
    const uidx = this.userZipf.sample(r);
    const key = r.chance(0.25) ? null : this.userId(uidx);
    let value;
    switch (badKind) {
      case 'not_json': {
        const json = JSON.stringify(this.makeEvent(uidx, timeMs));
        const variants = [
          () => '{oops',
          () => 'not json at all',
          () => "{'event_type': 'page_view'}",
          () => '{"event_type":"page_view",}',
          () => json + '}',
          () => 'NaN',
          // truncated event: unbalanced braces, always invalid
          () => json.slice(0, 1 + r.int(json.length - 2)),
        ];
        value = Buffer.from(r.pick(variants)(), 'utf8');
        break;
      }
      case 'not_object': {
        const json = JSON.stringify(this.makeEvent(uidx, timeMs));
        const variants = ['[1,2]', '"str"', '42', 'null', 'true', '[]', `[${json}]`, '-0.5'];
        value = Buffer.from(r.pick(variants), 'utf8');
        break;
      }
      case 'missing_field': {
        const ev = this.makeEvent(uidx, timeMs);
        delete ev[r.pick(REQUIRED_FIELDS)];
        value = Buffer.from(JSON.stringify(ev), 'utf8');
        break;
      }
      case 'wrong_type': {
        const ev = this.makeEvent(uidx, timeMs);
        const variants = [
          () => { ev.status_code = String(ev.status_code === 200 ? 500 : ev.status_code); },
          () => { ev.page = 404; },
          () => { ev.response_time_ms = -Math.abs(ev.response_time_ms) - 1; },
          () => { ev.response_time_ms = `${ev.response_time_ms}ms`; },
          () => { ev.user_id = uidx + 1; },
          () => { ev.event_type = 7; },
          () => { ev.status_code = [ev.status_code]; },
          () => { ev.timestamp = { seconds: Math.floor(timeMs / 1000) }; },
        ];
        r.pick(variants)();
        value = Buffer.from(JSON.stringify(ev), 'utf8');
        break;
      }
      case 'bad_timestamp': {
        const ev = this.makeEvent(uidx, timeMs);
        ev.timestamp = r.pick([
          'yesterday', '2026-13-45T99:00:00Z', '', '2026-02-30T12:00:00.000Z', 'not-a-timestamp',
          '2026-01-01T00:00:00.000+25:00', '2026-01-01T24:61:00Z',
        ]);
        value = Buffer.from(JSON.stringify(ev), 'utf8');
        break;
      }
      case 'oversized': {
        const ev = this.makeEvent(uidx, timeMs);
        const base = Buffer.byteLength(JSON.stringify(ev), 'utf8') + ',"padding":""'.length;
        const padLen = Math.max(0, this.oversizeBytes + 1 + r.int(1024) - base);
        const text = '0123456789abcdefghijklmnopqrstuvwxyz';
        const unit = text.repeat(64);
        ev.padding = unit.repeat(Math.ceil(padLen / unit.length)).slice(0, padLen);
        value = Buffer.from(JSON.stringify(ev), 'utf8');
        break;
      }
      case 'invalid_utf8': {
        const ev = this.makeEvent(uidx, timeMs);
        const MARK = '@@BAD@@';
        const field = r.pick(['page', 'referrer', 'device', 'event_type', 'user_id']);
        ev[field] = (ev[field] === undefined ? '' : String(ev[field])) + MARK;
        const sequences = [
          [0xc3, 0x28], // bad continuation byte
          [0xff], // never valid in UTF-8
          [0xfe, 0xfe],
          [0xc0, 0xaf], // overlong encoding of '/'
          [0xed, 0xa0, 0x80], // UTF-16 surrogate
          [0xe2, 0x82], // truncated 3-byte sequence
          [0x80], // lone continuation byte
        ];
        const bytes = Buffer.from(r.pick(sequences));
        const json = JSON.stringify(ev);
        const i = json.indexOf(MARK);
        value = Buffer.concat([
          Buffer.from(json.slice(0, i), 'utf8'), bytes, Buffer.from(json.slice(i + MARK.length), 'utf8'),
        ]);
        break;
      }
      case 'empty': {
        // alternate: zero-length value, then a null value (tombstone), ...
        value = this.emptyCount++ % 2 === 0 ? Buffer.alloc(0) : null;
        break;
      }
      default:
        throw new Error(`unknown bad kind ${badKind}`);
    }
    return {
      seq,
      key,
      partition: this.partitionFor(key, seq),
      value,
      kind: 'bad',
      badKind,
      eventJson: null,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

const HELP = `Usage: node event_generator.js [options]

Publishes synthetic JSON web events to Kafka (see README.md).

Connection
  --brokers HOST:PORT[,..]  bootstrap brokers                          (localhost:9092)
  --topic NAME              topic                                      (web_events)
  --partitions N            create the topic with N partitions if it does not exist
                            (without it a missing topic is created with the broker's default)
  --acks -1|1|0             required acknowledgements                  (-1)
  --client-id ID            Kafka client id                            (trafficagg-producer)

Volume and pace
  --rate N|max              events per second, or as fast as possible  (100)
  --count N                 stop after N messages (all kinds)          (forever)
  --duration SECONDS        stop after this much wall-clock time       (forever)
  --batch-size N            max messages per produce request           (1000)
  --max-in-flight N         max concurrent produce requests            (4)

Content
  --seed S                  deterministic PRNG seed (any string)       (random, printed)
  --users N                 number of users                            (10000)
  --pages N                 number of distinct pages                   (1000)
  --zipf S                  page popularity Zipf exponent              (1.0)
  --start-time ISO|EPOCHMS  synthetic event time: message i has time start + i*step
  --time-step MS            step for synthetic time                    (10)
                            (without --start-time/--time-step: wall clock at generation)
  --late-fraction F         fraction of events that are late           (0)
  --late-by MS              how late a late event is                   (120000)
  --bad-fraction F          fraction of messages that are malformed    (0)
  --bad-kinds K[,K..]       kinds of bad messages, used in rotation    (all)
                            ${BAD_KINDS.join(', ')}
  --oversize-bytes N        size an 'oversized' message exceeds        (1100000)
  --schema flat|nested      the shape of an event (see README.md)      (flat)
  --long-pages F:N[,F:N..]  with probability F an event's page is a URL of exactly N bytes
                            (a query string added), e.g. 0.125:301,0.02:3000   (none)

Output
  --out FILE                write every acknowledged message as NDJSON, in production order
  --quiet                   no progress lines (the final summary is still printed)
  --help                    this text
`;

class UsageError extends Error {}

function parseNumber(name, s, { integer = false, min = -Infinity, max = Infinity } = {}) {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(String(s).trim())) {
    throw new UsageError(`--${name}: not a number: ${JSON.stringify(s)}`);
  }
  const v = Number(s);
  if (!Number.isFinite(v) || (integer && !Number.isSafeInteger(v)) || v < min || v > max) {
    throw new UsageError(
      `--${name}: ${s} is not ${integer ? 'an integer' : 'a number'} in [${min}, ${max}]`);
  }
  return v;
}

function parseTime(s) {
  if (/^\d+$/.test(s)) return Number(s);
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(s)) {
    throw new UsageError(`--start-time: expected RFC 3339 (e.g. 2026-01-01T00:00:00Z) or epoch ms: ${s}`);
  }
  const v = Date.parse(s);
  if (!Number.isFinite(v)) throw new UsageError(`--start-time: invalid time: ${s}`);
  return v;
}

function parseOptions(argv) {
  const spec = {
    brokers: { type: 'string', default: 'localhost:9092' },
    topic: { type: 'string', default: 'web_events' },
    partitions: { type: 'string' },
    acks: { type: 'string', default: '-1' },
    'client-id': { type: 'string', default: 'trafficagg-producer' },
    rate: { type: 'string', default: '100' },
    count: { type: 'string' },
    duration: { type: 'string' },
    'batch-size': { type: 'string', default: '1000' },
    'max-in-flight': { type: 'string', default: '4' },
    seed: { type: 'string' },
    users: { type: 'string', default: '10000' },
    pages: { type: 'string', default: '1000' },
    zipf: { type: 'string', default: '1.0' },
    'start-time': { type: 'string' },
    'time-step': { type: 'string' },
    'late-fraction': { type: 'string', default: '0' },
    'late-by': { type: 'string', default: '120000' },
    'bad-fraction': { type: 'string', default: '0' },
    'bad-kinds': { type: 'string' },
    'oversize-bytes': { type: 'string', default: '1100000' },
    schema: { type: 'string', default: 'flat' },
    'long-pages': { type: 'string' },
    out: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  };
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new UsageError(e.message);
  }
  if (values.help) return { help: true };

  const o = {};
  o.brokers = values.brokers.split(',').map((b) => b.trim()).filter(Boolean);
  if (o.brokers.length === 0 || !o.brokers.every((b) => /^[^\s:]+:\d+$/.test(b))) {
    throw new UsageError(`--brokers: expected host:port[,host:port..]: ${values.brokers}`);
  }
  o.topic = values.topic;
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(o.topic)) throw new UsageError(`--topic: invalid name: ${o.topic}`);
  o.partitions = values.partitions === undefined ? null
    : parseNumber('partitions', values.partitions, { integer: true, min: 1, max: 100000 });
  o.acks = parseNumber('acks', values.acks, { integer: true, min: -1, max: 1 });
  o.clientId = values['client-id'];
  o.rate = values.rate === 'max' ? Infinity
    : parseNumber('rate', values.rate, { min: 1e-6, max: 1e9 });
  o.count = values.count === undefined ? Infinity
    : parseNumber('count', values.count, { integer: true, min: 0 });
  o.duration = values.duration === undefined ? Infinity
    : parseNumber('duration', values.duration, { min: 0 });
  o.batchSize = parseNumber('batch-size', values['batch-size'], { integer: true, min: 1, max: 100000 });
  o.maxInFlight = parseNumber('max-in-flight', values['max-in-flight'], { integer: true, min: 1, max: 64 });
  o.seedGiven = values.seed !== undefined;
  o.seed = o.seedGiven ? values.seed : crypto.randomBytes(8).toString('hex');
  o.users = parseNumber('users', values.users, { integer: true, min: 1, max: 1e8 });
  o.pages = parseNumber('pages', values.pages, { integer: true, min: 1, max: 1e8 });
  o.zipf = parseNumber('zipf', values.zipf, { min: 0, max: 10 });
  o.synthetic = values['start-time'] !== undefined || values['time-step'] !== undefined;
  o.startTime = values['start-time'] !== undefined ? parseTime(values['start-time']) : null;
  o.timeStep = values['time-step'] !== undefined
    ? parseNumber('time-step', values['time-step'], { integer: true, min: 0, max: 86400000 * 365 }) : 10;
  o.lateFraction = parseNumber('late-fraction', values['late-fraction'], { min: 0, max: 1 });
  o.lateBy = parseNumber('late-by', values['late-by'], { integer: true, min: 0 });
  o.badFraction = parseNumber('bad-fraction', values['bad-fraction'], { min: 0, max: 1 });
  if (values['bad-kinds'] === undefined) {
    o.badKinds = BAD_KINDS.slice();
  } else {
    o.badKinds = values['bad-kinds'].split(',').map((s) => s.trim()).filter(Boolean);
    for (const k of o.badKinds) {
      if (!BAD_KINDS.includes(k)) {
        throw new UsageError(`--bad-kinds: unknown kind ${JSON.stringify(k)} (known: ${BAD_KINDS.join(', ')})`);
      }
    }
    if (o.badKinds.length === 0) throw new UsageError('--bad-kinds: empty list');
  }
  o.schema = values.schema;
  if (!['flat', 'nested'].includes(o.schema)) throw new UsageError(`--schema: expected flat or nested: ${o.schema}`);
  if (o.schema === 'nested') {
    const flatOnly = o.badKinds.filter((k) => SCHEMA_BAD_KINDS.includes(k));
    if (values['bad-kinds'] !== undefined && flatOnly.length > 0) {
      throw new UsageError(`--bad-kinds: ${flatOnly.join(', ')} break the flat schema only; not with --schema nested`);
    }
    o.badKinds = o.badKinds.filter((k) => !SCHEMA_BAD_KINDS.includes(k));
  }
  o.oversizeBytes = parseNumber('oversize-bytes', values['oversize-bytes'], { integer: true, min: 1, max: 64 * 1024 * 1024 });
  o.longPages = [];
  if (values['long-pages'] !== undefined) {
    let total = 0;
    for (const item of values['long-pages'].split(',').map((x) => x.trim()).filter(Boolean)) {
      const m = /^([^:]+):([^:]+)$/.exec(item);
      if (!m) throw new UsageError(`--long-pages: expected FRACTION:BYTES[,FRACTION:BYTES..]: ${item}`);
      const fraction = parseNumber('long-pages', m[1], { min: 0, max: 1 });
      const bytes = parseNumber('long-pages', m[2], { integer: true, min: 1, max: 64 * 1024 * 1024 });
      total += fraction;
      o.longPages.push({ fraction, bytes });
    }
    if (o.longPages.length === 0) throw new UsageError('--long-pages: empty list');
    if (total > 1 + 1e-12) throw new UsageError(`--long-pages: the fractions add up to ${total}, more than 1`);
  }
  o.out = values.out === undefined ? null : values.out;
  if (o.out !== null && o.acks === 0) throw new UsageError('--out needs offsets from the broker: it cannot be used with --acks 0');
  o.quiet = values.quiet;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Kafka plumbing
// ---------------------------------------------------------------------------------------------

const MAX_PARTITION_BATCH_BYTES = 1024 * 1024; // per partition per produce request (a message
// bigger than this goes into a request where its partition has nothing else)
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
const CONNECT_DEADLINE_MS = 12000;

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function log(msg) {
  process.stderr.write(`${PROG}: ${msg}\n`);
}

function fmtRate(n) {
  return n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(n < 10 ? 2 : 0);
}

function withDeadline(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function describeError(e) {
  if (!e) return 'unknown error';
  let msg = e.message || String(e);
  let cause = e.cause || e.originalError;
  const seen = new Set();
  while (cause && !seen.has(cause)) {
    seen.add(cause);
    if (cause.message && !msg.includes(cause.message)) msg += `: ${cause.message}`;
    cause = cause.cause || cause.originalError;
  }
  return msg.replace(/\s+/g, ' ');
}

function makeKafka(opts, logState) {
  const { Kafka, logLevel, Partitioners } = require('kafkajs');
  // kafkajs's own log: errors only, one line each, the same line at most once per 10 s, and
  // nothing until connected (a failed connection is reported once, by us).
  const lastPrinted = new Map();
  const logCreator = () => ({ namespace, log: entry }) => {
    if (!logState.connected) {
      logState.last = entry.message;
      return;
    }
    const line = `kafkajs ${namespace}: ${entry.message}` +
      (entry.error && !entry.message.includes(entry.error) ? ` (${entry.error})` : '');
    const now = Date.now();
    if (now - (lastPrinted.get(line) || -Infinity) < 10000) return;
    lastPrinted.set(line, now);
    log(line);
  };
  const kafka = new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    enforceRequestTimeout: true,
    retry: { initialRetryTime: 250, maxRetryTime: 2000, retries: 5, factor: 0.2, multiplier: 2 },
    logLevel: logLevel.ERROR,
    logCreator,
  });
  return { kafka, Partitioners };
}

async function ensureTopic(admin, opts) {
  const topics = await admin.listTopics();
  let created = false;
  if (!topics.includes(opts.topic)) {
    const spec = { topic: opts.topic };
    if (opts.partitions !== null) spec.numPartitions = opts.partitions;
    try {
      created = await admin.createTopics({ topics: [spec], waitForLeaders: true, timeout: 10000 });
    } catch (e) {
      if (!/already exists/i.test(describeError(e))) throw e;
    }
  }
  // metadata can lag right after creation
  for (let attempt = 0; ; attempt++) {
    try {
      const md = await admin.fetchTopicMetadata({ topics: [opts.topic] });
      const parts = md.topics[0].partitions;
      if (parts.length > 0 && parts.every((p) => p.leader >= 0)) return { partitions: parts.length, created };
    } catch (e) {
      if (attempt >= 20) throw e;
    }
    if (attempt >= 20) throw new Error(`topic ${opts.topic}: no leaders after creation`);
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------
// Main loop
// ---------------------------------------------------------------------------------------------

function outLine(m, offset) {
  return '{"partition":' + m.partition +
    ',"offset":' + offset +
    ',"key":' + (m.key === null ? 'null' : JSON.stringify(m.key)) +
    ',"kind":"' + m.kind + '"' +
    ',"bad_kind":' + (m.badKind === null ? 'null' : '"' + m.badKind + '"') +
    ',"value_b64":' + (m.value === null ? 'null' : '"' + m.value.toString('base64') + '"') +
    ',"event":' + (m.eventJson === null ? 'null' : m.eventJson) +
    '}\n';
}

async function main(argv) {
  let opts;
  try {
    opts = parseOptions(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      log(e.message);
      log('try --help');
      return 2;
    }
    throw e;
  }
  if (opts.help) {
    process.stdout.write(HELP);
    return 0;
  }

  let outFd = null;
  if (opts.out !== null) {
    try {
      outFd = fs.openSync(opts.out, 'w');
    } catch (e) {
      log(`error: --out: ${e.message}`);
      return 1;
    }
  }

  const logState = { connected: false, last: null };
  const { kafka, Partitioners } = makeKafka(opts, logState);
  const admin = kafka.admin();
  const producer = kafka.producer({
    createPartitioner: Partitioners.LegacyPartitioner, // unused: every message names its partition
    allowAutoTopicCreation: false,
    idempotent: false,
    // the partition count is fixed at start; periodic refreshes could only reorder requests
    metadataMaxAge: 7 * 24 * 3600 * 1000,
  });

  const brokersText = opts.brokers.join(',');
  let partitions;
  try {
    await withDeadline((async () => {
      await admin.connect();
      const t = await ensureTopic(admin, opts);
      partitions = t.partitions;
      if (t.created) log(`created topic ${opts.topic} with ${partitions} partitions`);
      await producer.connect();
    })(), CONNECT_DEADLINE_MS, 'connecting');
  } catch (e) {
    let msg = describeError(e);
    const last = logState.last;
    if (last && !msg.includes(last) && !last.includes(msg)) msg += ` (${last})`;
    log(`error: cannot use Kafka at ${brokersText} (topic ${opts.topic}): ${msg}`);
    return 1;
  }
  logState.connected = true;
  admin.disconnect().catch(() => {});

  if (opts.synthetic && opts.startTime === null) {
    opts.startTime = Date.now();
    log(`--start-time not given: starting synthetic time at ${new Date(opts.startTime).toISOString()}`);
  }
  if (!opts.seedGiven && !opts.quiet) log(`seed ${opts.seed} (pass --seed ${opts.seed} to repeat this stream)`);

  const gen = new Generator(opts, partitions);

  const counts = { event: 0, late: 0, bad: 0 };
  const badCounts = Object.fromEntries(BAD_KINDS.map((k) => [k, 0]));
  let acked = 0;
  let bytesAcked = 0;
  let stopping = false;
  let fatal = null;
  let contiguityWarned = false;
  const nextOffset = new Map(); // partition -> expected next offset (only with --out)

  let signals = 0;
  const onSignal = (sig) => {
    signals++;
    if (signals === 1) {
      log(`${sig}: stopping after the messages in flight are acknowledged`);
      stopping = true;
    } else {
      log(`${sig}: exiting without waiting`);
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const inflight = new Set(); // produce requests not yet acknowledged
  const t0 = Date.now();
  let lastReport = { t: t0, n: 0 };
  const progress = setInterval(() => {
    const now = Date.now();
    const rate = ((acked - lastReport.n) * 1000) / Math.max(1, now - lastReport.t);
    const avg = (acked * 1000) / Math.max(1, now - t0);
    lastReport = { t: now, n: acked };
    if (!opts.quiet) {
      log(`sent ${acked} (${counts.event} event, ${counts.late} late, ${counts.bad} bad), ` +
        `${fmtRate(rate)}/s now, ${fmtRate(avg)}/s avg, ${inflight.size} requests in flight`);
    }
  }, 2000);
  progress.unref();

  // Batches are written to --out strictly in production order, whatever order acks come in.
  const pendingOut = [];
  const flushOut = () => {
    while (pendingOut.length > 0 && pendingOut[0].offsets !== null) {
      const b = pendingOut.shift();
      if (outFd !== null) {
        // in production order, each request's messages must directly follow the previous
        // request's on every partition
        for (const [part, first] of b.base) {
          const exp = nextOffset.get(part);
          if (exp !== undefined && exp !== first && !contiguityWarned) {
            contiguityWarned = true;
            log(`warning: partition ${part}: a request's messages start at offset ${first}, ` +
              `expected ${exp} (another producer writing to the topic, a retried request, or ` +
              'requests reordered): the --out file is correct but not reproducible');
          }
          nextOffset.set(part, first + b.perPart.get(part));
        }
        let s = '';
        for (let i = 0; i < b.msgs.length; i++) {
          s += outLine(b.msgs[i], b.offsets[i]);
          if (s.length > 4 * 1024 * 1024) { fs.writeSync(outFd, s); s = ''; }
        }
        if (s.length > 0) fs.writeSync(outFd, s);
      }
    }
  };

  const sendBatch = (msgs, bytes) => {
    const batch = { msgs, offsets: null, base: null, perPart: null };
    pendingOut.push(batch);
    const p = producer.send({
      topic: opts.topic,
      acks: opts.acks,
      timeout: 30000,
      messages: msgs.map((m) => ({ key: m.key, value: m.value, partition: m.partition })),
    }).then((res) => {
      if (opts.acks !== 0) {
        const base = new Map();
        for (const r of res) {
          if (r.errorCode !== 0) throw new Error(`partition ${r.partition}: error code ${r.errorCode}`);
          base.set(r.partition, Number(r.baseOffset));
        }
        const idx = new Map();
        const offsets = new Array(msgs.length);
        for (let i = 0; i < msgs.length; i++) {
          const part = msgs[i].partition;
          const k = idx.get(part) || 0;
          idx.set(part, k + 1);
          const b = base.get(part);
          if (b === undefined) throw new Error(`no acknowledgement for partition ${part}`);
          offsets[i] = b + k;
        }
        batch.offsets = offsets;
        batch.base = base;
        batch.perPart = idx;
      } else {
        batch.offsets = [];
      }
      for (const m of msgs) {
        counts[m.kind]++;
        if (m.badKind !== null) badCounts[m.badKind]++;
      }
      acked += msgs.length;
      bytesAcked += bytes;
      flushOut();
    }).catch((e) => {
      if (fatal === null) fatal = e;
      stopping = true;
    }).finally(() => {
      inflight.delete(p);
    });
    inflight.add(p);
    return p;
  };

  const synth = opts.synthetic;
  const limited = Number.isFinite(opts.rate);
  const deadline = Number.isFinite(opts.duration) ? t0 + opts.duration * 1000 : Infinity;
  let carry = null; // a generated message that did not fit into the previous request
  let emitted = 0; // messages handed to produce requests
  let first = true;

  const nextMessage = () => {
    if (carry !== null) { const m = carry; carry = null; return m; }
    const t = synth ? opts.startTime + gen.seq * opts.timeStep : Date.now();
    return gen.next(t);
  };

  while (!stopping) {
    const now = Date.now();
    if (now >= deadline) break;
    const remaining = opts.count - emitted;
    if (remaining <= 0) break;
    let n = Math.min(opts.batchSize, remaining);
    if (limited) {
      // message number k (0-based) is due at t0 + k/rate
      const due = Math.floor((opts.rate * (now - t0)) / 1000) + 1 - emitted;
      if (due <= 0) {
        const wait = Math.ceil((emitted * 1000) / opts.rate - (now - t0));
        await sleep(Math.min(Math.max(20, wait), Math.max(1, deadline - now)));
        continue;
      }
      n = Math.min(n, due);
    }
    // wait for a free slot before generating (wall-clock timestamps are taken at generation)
    while (inflight.size >= opts.maxInFlight && !stopping) await Promise.race(inflight);
    if (stopping) break;

    const msgs = [];
    const partBytes = new Map();
    let total = 0;
    while (msgs.length < n) {
      const m = nextMessage();
      const size = (m.value === null ? 0 : m.value.length) + (m.key === null ? 0 : m.key.length) + 20;
      const pb = partBytes.get(m.partition) || 0;
      if (msgs.length > 0 &&
          ((pb > 0 && pb + size > MAX_PARTITION_BATCH_BYTES) || total + size > MAX_REQUEST_BYTES)) {
        carry = m;
        break;
      }
      partBytes.set(m.partition, pb + size);
      total += size;
      msgs.push(m);
    }
    emitted += msgs.length;
    const p = sendBatch(msgs, total);
    if (first) {
      // the first request loads the producer's metadata; send it alone so that later requests
      // cannot overtake it
      first = false;
      await p;
    } else {
      // Once connected and with metadata loaded, kafkajs turns a send() into bytes on the socket
      // using promise continuations only, but a varying number of them (it grows with the number
      // of partitions in the request), so a request started right after another one can be
      // written first. Giving the event loop one turn lets the previous request reach the
      // socket (or kafkajs's FIFO queue) before the next one is started: offsets then follow
      // production order.
      await new Promise((r) => setImmediate(r));
    }
  }
  // a carried message was generated but never sent: not counted
  await Promise.allSettled(Array.from(inflight));
  flushOut();
  clearInterval(progress);
  if (outFd !== null) fs.closeSync(outFd);

  try {
    await withDeadline(producer.disconnect(), 5000, 'disconnecting');
  } catch (_) { /* exiting anyway */ }

  const secs = (Date.now() - t0) / 1000;
  const badText = counts.bad > 0
    ? ` [${Object.entries(badCounts).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(' ')}]`
    : '';
  const summary = `${acked} messages (${counts.event} event, ${counts.late} late, ${counts.bad} bad${badText}) ` +
    `to ${opts.topic} (${partitions} partitions) in ${secs.toFixed(2)} s, ` +
    `${fmtRate(acked / Math.max(secs, 1e-3))}/s, ${(bytesAcked / 1048576).toFixed(1)} MiB`;
  if (fatal !== null) {
    log(`error: producing to ${opts.topic} at ${brokersText} failed: ${describeError(fatal)}`);
    log(`partial: ${summary}`);
    return 1;
  }
  log(`done: ${summary}`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      // kafkajs may keep sockets or timers alive after a failure; don't wait for them
      if (code !== 0) process.exit(code);
      process.exitCode = code;
      setTimeout(() => process.exit(code), 1000).unref();
    },
    (e) => { log(`error: ${describeError(e)}`); process.exit(1); },
  );
}

module.exports = { Rng, Generator, murmur2, choosePartition, formatTimestamp, buildPages, BAD_KINDS, parseOptions };
