// The promises of generate.ts, one per `it`: fast-check properties over
// generated flag sets, oracles that read lines as PostHog's consumers, kcat
// and kafka-console-producer do, and command-line checks where the exit
// behaviour is the point. Run with `npm test`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { constants as zlibConstants, crc32, deflateRawSync, gunzipSync, gzipSync, inflateRawSync } from 'node:zlib';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { buildSync } from 'esbuild';
import fc from 'fast-check';
import { gzipSync as fflateGzipSync } from 'fflate';
import {
  Arrivals,
  ASCII_FOR_UTF16,
  BodyWriter,
  type Config,
  crc32Combine,
  type Distribution,
  FLAGS,
  type Format,
  helpText,
  InFlight,
  type Job,
  JobBalance,
  Line,
  lineOrder,
  meanSessionMs,
  OUTPUT_FORMATS,
  parseFlags,
  scheduleSnapshots,
  SessionMessages,
  SessionPlan,
  SessionRandom,
  sortedJson,
  UsageError,
  widenDeflate,
} from './generate.ts';

const START = '2024-01-01T00:00:00Z';
const START_MS = Date.parse(START);
const ROOT = fileURLToPath(new URL('.', import.meta.url));
/** A full garbage collection, for tests that measure what stays in memory (V8's gc, exposed here rather than by a flag to the test runner). */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
/** fast-check's seed: every property sees the same cases on every run. */
fc.configureGlobal({ seed: 20261129 });

// --- Readers: the lines as PostHog's consumers and Kafka's tools read them ------

/** A Config from flags, with a fixed --start so output is reproducible. */
function configFrom(args: string[]): Config {
  const config = parseFlags(args.includes('--start') ? args : ['--start', START, ...args]);
  assert.ok(typeof config !== 'string' && !('merge' in config));
  return config;
}

/** The quantities a session draws, each from a --NAME-mean and a --NAME-standard-deviation. */
type Drawn = 'windowCount' | 'fullSnapshotCount' | 'fullSnapshotSize' | 'incrementalSnapshotCount' | 'incrementalSnapshotSize';

/** A drawn quantity's two flags, as a Config's fields. */
const drawnFields = (name: Drawn, { mean, standardDeviation }: Distribution) =>
  ({ [`${name}Mean`]: mean, [`${name}StandardDeviation`]: standardDeviation }) as Partial<Config>;

/** A drawn quantity's mean and standard deviation, from a Config's two fields. */
const drawn = (config: Config, name: Drawn): Distribution => ({ mean: config[`${name}Mean`], standardDeviation: config[`${name}StandardDeviation`] });

/**
 * Parts of a run (shards, jobs) merged by the (now, session id) each line
 * shows; a stable sort keeps each session's lines in their part's order, as
 * --merge does.
 */
function mergedByOrder(parts: readonly string[][]): string[] {
  const keyed = parts.flat().map((line) => ({ line, order: lineOrder(line)! }));
  keyed.sort((a, b) => a.order.atUs - b.order.atUs || (a.order.sessionId < b.order.sessionId ? -1 : a.order.sessionId > b.order.sessionId ? 1 : 0));
  return keyed.map(({ line }) => line);
}

/** Session `index`, arriving at `arrivalMs`, as the lines main would print (without newlines). */
function sessionLines(config: Config, index: number, arrivalMs = config.startMs): string[] {
  const session = new SessionMessages(config, index, arrivalMs);
  const lines: string[] = [];
  for (let snapshot = session.next(); snapshot; snapshot = session.next()) {
    for (const message of snapshot.messages) lines.push(new Line(config, session.identity.sessionId, message).render().toString('utf8').slice(0, -1));
  }
  return lines;
}

/** The whole run as main prints it, from the library; with `job`, that job's part of it. */
function runLines(config: Config, job?: Job): string[] {
  const lines: string[] = [];
  for (const { session, snapshot } of scheduleSnapshots(config, new InFlight(), job)) {
    for (const message of snapshot.messages) lines.push(new Line(config, session.identity.sessionId, message).render().toString('utf8').slice(0, -1));
  }
  return lines;
}

/** A line split as kafka-console-producer does with parse.headers and parse.key (each on if the flag is): headers, key, value. */
function splitLine(config: Config, line: string): { headers: Map<string, string> | undefined; key: string | undefined; value: string } {
  let rest = line;
  let headers: Map<string, string> | undefined;
  if (config.headers) {
    const tab = rest.indexOf('\t');
    assert.ok(tab > 0, 'a non-empty header section, then a tab');
    headers = new Map(rest.slice(0, tab).split(',').map((pair) => {
      const colon = pair.indexOf(':');
      assert.ok(colon > 0, `header ${pair} has a name and a value`);
      return [pair.slice(0, colon), pair.slice(colon + 1)] as const;
    }));
    rest = rest.slice(tab + 1);
  }
  let key: string | undefined;
  if (config.key) {
    const tab = rest.indexOf('\t');
    key = rest.slice(0, tab);
    rest = rest.slice(tab + 1);
  }
  return { headers, key, value: rest };
}

/** JSON as Python's json.dumps writes it by default: ", " and ": ", everything outside printable ASCII escaped. */
function pythonDumps(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonDumps).join(', ')}]`;
  if (value !== null && typeof value === 'object') return `{${Object.entries(value).map(([k, v]) => `${pythonDumps(k)}: ${pythonDumps(v)}`).join(', ')}}`;
  if (typeof value === 'string') return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return JSON.stringify(value);
}

/** JSON as serde_json writes a Value without preserve_order: compact, every object's keys sorted. */
function serdeValueJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(serdeValueJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${serdeValueJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const LEGACY_KEYS = ['uuid', 'distinct_id', 'ip', 'site_url', 'data', 'team_id', 'now', 'sent_at', 'token'];
const ITEMS_KEYS = ['uuid', 'distinct_id', 'ip', 'data', 'now', 'sent_at', 'token', 'event', 'timestamp'];
const PYTHON_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$/;
const CHRONO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z$/;

interface LegacyMessage {
  envelope: Record<string, any>;
  sessionId: string;
  windowId: string;
  chunk: { chunk_id: string; chunk_index: number; chunk_count: number; data: string; compression: string; has_full_snapshot: boolean; events_summary: unknown[] | null };
}

/** A `session_recording_events` value read as PostHog's v1 consumer does, checked against Python's json.dumps. */
function readLegacy(value: string): LegacyMessage {
  const envelope = JSON.parse(value);
  assert.deepEqual(Object.keys(envelope), LEGACY_KEYS);
  const event = JSON.parse(envelope.data);
  assert.equal(value, pythonDumps({ ...envelope, data: pythonDumps(event) }), 'the value is what json.dumps wrote');
  assert.equal(event.event, '$snapshot');
  assert.deepEqual(Object.keys(event.properties), ['distinct_id', '$session_id', '$window_id', '$snapshot_data']);
  const chunk = event.properties.$snapshot_data;
  assert.deepEqual(Object.keys(chunk), ['chunk_id', 'chunk_index', 'chunk_count', 'data', 'compression', 'has_full_snapshot', 'events_summary']);
  assert.equal(chunk.compression, 'gzip-base64');
  assert.match(envelope.now, PYTHON_TIME);
  assert.match(envelope.sent_at, PYTHON_TIME);
  return { envelope, sessionId: event.properties.$session_id, windowId: event.properties.$window_id, chunk };
}

/** A `session_recording_snapshot_item_events` value read as PostHog's v2 KafkaMessageParser does, checked against capture-rs's serialization. */
function readItems(value: string): { envelope: Record<string, any>; sessionId: string; windowId: string; items: RecordedEvent[] } {
  const envelope = JSON.parse(value);
  assert.deepEqual(Object.keys(envelope), ITEMS_KEYS);
  assert.equal(value, JSON.stringify(envelope), 'the envelope is compact JSON in its struct order');
  assert.equal(typeof envelope.distinct_id, 'string');
  const event = JSON.parse(envelope.data);
  assert.equal(envelope.data, serdeValueJson(event), 'data is serde_json of a Value: sorted keys at every depth');
  assert.equal(event.event, '$snapshot_items');
  const { $session_id: sessionId, $window_id: windowId, $snapshot_items: items, $snapshot_source: source, $lib: lib } = event.properties;
  assert.match(sessionId, /^[A-Za-z0-9-]{1,70}$/, 'a session id capture accepts');
  assert.equal(typeof windowId, 'string');
  assert.equal(source, 'web');
  assert.equal(lib, 'web');
  assert.ok(Array.isArray(items) && items.length > 0, '$snapshot_items is a non-empty list');
  for (const item of items) assert.ok(typeof item.timestamp === 'number' && item.timestamp > 0, 'every item keeps a positive numeric timestamp');
  for (const time of [envelope.now, envelope.timestamp]) assert.match(time, CHRONO_TIME);
  assert.match(envelope.sent_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/);
  return { envelope, sessionId, windowId, items };
}

/** What rrweb writes: an event with a type, data and a timestamp. */
interface RecordedEvent {
  type: number;
  data: Record<string, any>;
  timestamp: number;
}

/** Groups legacy messages by chunk_id, in order of first appearance, as PostHog reassembles them. */
function reassemble(messages: LegacyMessage[]): { data: string; first: LegacyMessage; count: number }[] {
  const groups = new Map<string, LegacyMessage[]>();
  for (const message of messages) groups.set(message.chunk.chunk_id, [...(groups.get(message.chunk.chunk_id) ?? []), message]);
  return [...groups.values()].map((chunks) => {
    const ordered = [...chunks].sort((a, b) => a.chunk.chunk_index - b.chunk.chunk_index);
    assert.deepEqual(ordered.map((chunk) => chunk.chunk.chunk_index), [...ordered.keys()], 'chunk indexes are 0..count-1');
    for (const chunk of chunks) {
      assert.equal(chunk.chunk.chunk_count, chunks.length, 'chunk_count is the number of chunks');
      assert.equal(chunk.chunk.has_full_snapshot, chunks[0]!.chunk.has_full_snapshot, 'chunks agree on has_full_snapshot');
      if (chunk.chunk.chunk_index > 0) assert.equal(chunk.chunk.events_summary, null, 'only chunk 0 may carry events_summary');
    }
    return { data: ordered.map((chunk) => chunk.chunk.data).join(''), first: ordered[0]!, count: chunks.length };
  });
}

/** PostHog's `decompress`: base64, gunzip, UTF-16 with its byte-order mark, then json.loads. */
function decompress(data: string): RecordedEvent[] {
  assert.match(data, /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'padded base64');
  const bytes = gunzipSync(Buffer.from(data, 'base64'));
  assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xfe], 'UTF-16LE with a byte-order mark');
  return JSON.parse(bytes.subarray(2).toString('utf16le'));
}

/**
 * PostHog's get_events_summary_from_snapshot_data (posthog/session_recordings/
 * session_recording_helpers.py), statement by statement: events that are falsy
 * or lack "timestamp" or "type" are skipped; data keys in
 * EVENT_SUMMARY_DATA_INCLUSIONS whose value's type is str or int (not bool, not
 * float) are kept in the event's order; `if data.get("payload"):` (an empty
 * dict is falsy) and a dict payload adds its "payload.<key>" inclusions;
 * int(timestamp); a stable sort by timestamp. A JSON number parses to a
 * Python int when it is written without fraction or exponent, which is how
 * JavaScript writes every whole number below 1e21.
 */
function summaryOf(events: unknown[]): unknown[] {
  const inclusions = ['type', 'source', 'tag', 'plugin', 'href', 'width', 'height', 'payload.href', 'payload.level'];
  const isStrOrInt = (value: unknown) => typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value));
  const isDict = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
  const truthy = (value: unknown) =>
    !(value === null || value === undefined || value === false || value === 0 || value === '' ||
      (Array.isArray(value) && value.length === 0) || (isDict(value) && Object.keys(value).length === 0));
  const summary: { timestamp: number; type: unknown; data: Record<string, unknown> }[] = [];
  for (const event of events) {
    if (!truthy(event) || !isDict(event) || !('timestamp' in event) || !('type' in event)) continue;
    const eventData = isDict(event.data) ? event.data : {};
    const data: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(eventData)) if (isStrOrInt(value) && inclusions.includes(key)) data[key] = value;
    if (truthy(eventData.payload) && isDict(eventData.payload)) {
      data.payload = Object.fromEntries(Object.entries(eventData.payload).filter(([key, value]) => isStrOrInt(value) && inclusions.includes(`payload.${key}`)));
    }
    summary.push({ timestamp: Math.trunc(event.timestamp as number), type: event.type, data });
  }
  return summary.sort((a, b) => a.timestamp - b.timestamp);
}

/** The time in a UUIDv7 or a UUIDT: its first 48 bits, in ms. */
const idTimeMs = (id: string) => parseInt(id.replace(/-/g, '').slice(0, 12), 16);
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const UUID_ANY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// --- Arbitraries --------------------------------------------------------------

/** The formats whose lines are Kafka messages. */
const KAFKA_FORMATS = (Object.keys(OUTPUT_FORMATS) as Format[]).filter((format) => OUTPUT_FORMATS[format].topic !== null);

/**
 * A seed: mostly one of a few, as each seed has sites of its own, whose
 * stylesheets take 50 ms to make (once, then kept); now and then any.
 */
const anySeed = fc.oneof({ weight: 19, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer() });

/** Flags of every format with small sessions: sizes, counts, windows, token, key, headers, seed. */
const anyFlags = fc
  .record({
    format: fc.constantFrom(...(Object.keys(OUTPUT_FORMATS) as Format[])),
    rrweb: fc.boolean(),
    fullSizeMean: fc.integer({ min: 1, max: 20_000 }),
    incrementalSizeMean: fc.integer({ min: 1, max: 5000 }),
    incrementalCountMean: fc.double({ min: 0.1, max: 6, noNaN: true }),
    windowMean: fc.double({ min: 1, max: 2.5, noNaN: true }),
    seed: anySeed,
    // Any printable text but the comma that separates kafka-console-producer's headers; no space at either end.
    token: fc.option(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((t) => t.trim() === t && !/[\p{Cc}\p{Cf}\p{Zl}\p{Zp},]/u.test(t))),
    key: fc.boolean(),
    headers: fc.boolean(),
  })
  .map((flags) => {
    const kafka = OUTPUT_FORMATS[flags.format].topic !== null;
    return [
      '--format', flags.format,
      ...(flags.format === 'snapshot' && flags.rrweb ? ['--payload', 'rrweb'] : []),
      '--full-snapshot-size-mean', String(flags.fullSizeMean), '--full-snapshot-size-standard-deviation', String(flags.fullSizeMean),
      '--incremental-snapshot-size-mean', String(flags.incrementalSizeMean),
      '--incremental-snapshot-size-standard-deviation', String(flags.incrementalSizeMean),
      '--incremental-snapshot-count-mean', String(flags.incrementalCountMean), '--incremental-snapshot-count-standard-deviation', '3',
      '--window-count-mean', String(flags.windowMean), '--window-count-standard-deviation', '1',
      `--seed-value=${flags.seed}`,
      ...(flags.token === null ? [] : [`--token=${flags.token}`]),
      ...(kafka && flags.key ? ['--key'] : []),
      ...(kafka && flags.headers ? ['--headers'] : []),
    ];
  });
const anyConfig = anyFlags.map(configFrom);

/** The least --max-message-bytes parseFlags accepts for these flags. */
function leastLimit(args: string[]): number {
  let low = 1;
  let high = 10_000_000;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    try {
      parseFlags(['--start', START, ...args, '--max-message-bytes', String(middle)]);
      high = middle;
    } catch {
      low = middle + 1;
    }
  }
  return low;
}

/** Kafka flag sets with a --max-message-bytes that binds: from the least accepted to a few kB above, and a long token. */
const bindingLimits = fc
  .record({
    format: fc.constantFrom(...KAFKA_FORMATS),
    rrweb: fc.boolean(),
    tokenLength: fc.integer({ min: 0, max: 400 }),
    spare: fc.integer({ min: 0, max: 4000 }),
    seed: anySeed,
    key: fc.boolean(),
    headers: fc.boolean(),
  })
  .map((flags) => {
    const args = [
      '--format', flags.format, ...(flags.format === 'snapshot' && flags.rrweb ? ['--payload', 'rrweb'] : []),
      '--full-snapshot-size-mean', '30000', '--incremental-snapshot-size-mean', '3000', '--incremental-snapshot-count-mean', '4',
      `--seed-value=${flags.seed}`, ...(flags.tokenLength > 0 ? [`--token=phc_${'x'.repeat(flags.tokenLength)}`] : []),
      ...(flags.key ? ['--key'] : []), ...(flags.headers ? ['--headers'] : []),
    ];
    return configFrom([...args, '--max-message-bytes', String(leastLimit(args) + flags.spare)]);
  });

const sessionIndexes = fc.integer({ min: 0, max: 1_000_000 });

// --- Every line ---------------------------------------------------------------

describe('every line', () => {
  it("is one value of its format, byte for byte as its writer made it: Python capture's json.dumps, capture-rs's serde, vegeta's target", () => {
    fc.assert(
      fc.property(anyConfig, sessionIndexes, (config, index) => {
        for (const line of sessionLines(config, index)) {
          const { value } = splitLine(config, line);
          assert.ok(!value.includes('\n'));
          if (config.format === 'snapshot') readLegacy(value);
          else if (config.format === 'snapshot-items') readItems(value);
          else assert.deepEqual(Object.keys(JSON.parse(value)), ['method', 'url', 'body', 'header']);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('passes kcat (a line of at most message.max.bytes - 1024) and librdkafka (value, key, headers and 36 bytes within it), for limits that bind', () => {
    fc.assert(
      fc.property(bindingLimits, sessionIndexes, (config, index) => {
        const keyed = { ...config, key: true, headers: true };
        for (const line of sessionLines(keyed, index)) {
          const { headers, key, value } = splitLine(keyed, line);
          const varint = (n: number) => (n <= 63 ? 1 : n <= 8191 ? 2 : 3);
          let headerBytes = 0;
          for (const [name, text] of headers!) headerBytes += name.length + Buffer.byteLength(text) + varint(name.length) + varint(Buffer.byteLength(text));
          const [keyBytes, valueBytes] = [Buffer.byteLength(key!), Buffer.byteLength(value)];
          assert.ok(keyBytes + 1 + valueBytes <= config.maxMessageBytes - 1024, `kcat: line of ${keyBytes + 1 + valueBytes} at ${config.maxMessageBytes}`);
          assert.ok(valueBytes + keyBytes + headerBytes + 36 <= config.maxMessageBytes, `librdkafka: ${valueBytes + keyBytes + headerBytes + 36}`);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('--key and --headers only prefix the value: the key is the $session_id, the headers parse as kafka-console-producer reads them', () => {
    fc.assert(
      fc.property(anyConfig.filter((config) => config.format !== 'vegeta'), sessionIndexes, (config, index) => {
        const bare = { ...config, key: false, headers: false };
        const prefixed = { ...config, key: true, headers: true };
        const plain = sessionLines(bare, index);
        const lines = sessionLines(prefixed, index);
        assert.equal(lines.length, plain.length);
        lines.forEach((line, at) => {
          const { headers, key, value } = splitLine(prefixed, line);
          assert.equal(value, plain[at]);
          const message = config.format === 'snapshot' ? readLegacy(value) : readItems(value);
          assert.equal(key, message.sessionId);
          assert.equal(headers!.get('token'), config.token ?? undefined, 'the token header, when there is a token');
          assert.equal(headers!.get('distinct_id'), message.envelope.distinct_id);
          if (config.format === 'snapshot-items') {
            const { envelope } = message;
            assert.deepEqual([...headers!.keys()], [...(config.token ? ['token'] : []), 'distinct_id', 'session_id', 'timestamp', 'event', 'uuid', 'now']);
            assert.equal(headers!.get('session_id'), message.sessionId);
            assert.equal(headers!.get('timestamp'), String(Math.floor(Date.parse(envelope.timestamp))));
            assert.equal(headers!.get('event'), '$snapshot_items');
            assert.equal(headers!.get('uuid'), envelope.uuid);
            assert.equal(headers!.get('now'), envelope.now);
          }
        });
      }),
      { numRuns: 15 },
    );
  });
});

// --- Snapshots ------------------------------------------------------------------

describe('snapshots', () => {
  it('regroup by chunk_id into one snapshot each, indexes 0..n-1, chunk 0 alone carrying events_summary', () => {
    fc.assert(
      fc.property(anyConfig.filter((config) => config.format === 'snapshot'), sessionIndexes, (config, index) => {
        const messages = sessionLines(config, index).map((line) => readLegacy(splitLine(config, line).value));
        const session = new SessionMessages(config, index, config.startMs);
        assert.equal(reassemble(messages).length, session.plan.fullSnapshots + session.plan.incrementalSnapshots);
      }),
      { numRuns: 30 },
    );
  });

  it('--payload random: padded base64 of random bytes, as PostHog\'s decompress base64-decodes it, within 3 characters of the plan', () => {
    fc.assert(
      fc.property(anyConfig.filter((config) => config.format === 'snapshot' && config.payload === 'random'), sessionIndexes, (config, index) => {
        const plan = new SessionPlan(config, new SessionRandom(config.seedValue, index), config.startMs);
        const snapshots = reassemble(sessionLines(config, index).map((line) => readLegacy(splitLine(config, line).value)));
        for (const snapshot of snapshots) {
          const planned = plan.next()!;
          assert.match(snapshot.data, /^(?:[A-Za-z0-9+/]{4})+$/, 'whole base64 quanta');
          assert.equal(Buffer.from(snapshot.data, 'base64').toString('base64'), snapshot.data, 'base64 of whole bytes');
          assert.ok(Math.abs(snapshot.data.length - planned.size) < 4 || snapshot.data.length === 4, `${snapshot.data.length} for ${planned.size}`);
          assert.equal(snapshot.first.chunk.has_full_snapshot, planned.kind === 'full');
        }
      }),
      { numRuns: 60 },
    );
  });

  it('--payload random: its letters are uniform and independent, one by one and in consecutive pairs (chi-square within 6 standard deviations)', () => {
    // At least 2,000,000 letters, each message's data as its line carries it: 4,096 cells of pairs, about 500 in each.
    const config = configFrom(['--count', '1']);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const letterOf = new Int8Array(128).fill(-1);
    for (let at = 0; at < alphabet.length; at++) letterOf[alphabet.charCodeAt(at)] = at;
    const singles = new Float64Array(64);
    const pairs = new Float64Array(64 * 64);
    const messages = function* () {
      for (let index = 0; ; index++) {
        const session = new SessionMessages(config, index, config.startMs);
        for (let snapshot = session.next(); snapshot; snapshot = session.next()) yield* snapshot.messages;
      }
    };
    let letters = 0;
    for (const message of messages()) {
      const data = Buffer.alloc(message.dataLength);
      message.data.writeNext(data, 0, message.dataLength);
      for (let at = 0; at < data.length; at++) {
        const letter = letterOf[data[at]!]!;
        singles[letter]!++;
        if (at > 0) pairs[64 * letterOf[data[at - 1]!]! + letter]!++;
      }
      letters += data.length;
      if (letters >= 2_000_000) break;
    }
    // Pearson's statistic over k equally likely cells: about chi-square with k - 1 degrees of freedom, mean k - 1, variance 2(k - 1).
    const withinSixDeviations = (counts: Float64Array, what: string) => {
      const total = counts.reduce((sum, count) => sum + count, 0);
      const expected = total / counts.length;
      const statistic = counts.reduce((sum, count) => sum + (count - expected) ** 2 / expected, 0);
      const freedom = counts.length - 1;
      assert.ok(Math.abs(statistic - freedom) < 6 * Math.sqrt(2 * freedom), `${what}: chi-square ${statistic.toFixed(0)} for ${freedom} degrees of freedom`);
    };
    withinSixDeviations(singles, 'letters');
    withinSixDeviations(pairs, 'consecutive pairs');
  });

  it('--payload rrweb: decompress to rrweb events, sized within 5% of the plan', () => {
    fc.assert(
      fc.property(anyConfig.filter((config) => config.format === 'snapshot' && config.payload === 'rrweb'), sessionIndexes, (config, index) => {
        const plan = new SessionPlan(config, new SessionRandom(config.seedValue, index), config.startMs);
        for (const snapshot of reassemble(sessionLines(config, index).map((line) => readLegacy(splitLine(config, line).value)))) {
          const planned = plan.next()!;
          const events = decompress(snapshot.data);
          if (planned.size >= 1000) assert.ok(Math.abs(snapshot.data.length / planned.size - 1) <= 0.05, `${snapshot.data.length} for ${planned.size}`);
          assert.equal(snapshot.first.chunk.has_full_snapshot, events.some((event) => event.type === 2));
        }
      }),
      { numRuns: 20 },
    );
  });

  it('--payload rrweb: batches with room for a few events still land within 5% of the plan, whichever event comes last', () => {
    // 1 in 200 such batches once ended 6-13% over, a dense network event filling the last room; a property's few runs rarely meet one.
    const config = configFrom(['--payload', 'rrweb', '--full-snapshot-size-mean', '2', '--full-snapshot-size-standard-deviation', '2',
      '--incremental-snapshot-count-mean', '6', '--incremental-snapshot-count-standard-deviation', '3',
      '--incremental-snapshot-size-mean', '1500', '--incremental-snapshot-size-standard-deviation', '1500']);
    for (let index = 0; index < 40; index++) {
      const plan = new SessionPlan(config, new SessionRandom(config.seedValue, index), config.startMs);
      for (const snapshot of reassemble(sessionLines(config, index).map((line) => readLegacy(splitLine(config, line).value)))) {
        const planned = plan.next()!;
        if (planned.size >= 1000) assert.ok(Math.abs(snapshot.data.length / planned.size - 1) <= 0.05, `session ${index}: ${snapshot.data.length} for ${planned.size}`);
      }
    }
  });

  it("--payload rrweb: chunk 0's events_summary is PostHog's get_events_summary_from_snapshot_data of the events, as json.dumps wrote it", () => {
    fc.assert(
      fc.property(anyConfig.filter((config) => config.format === 'snapshot' && config.payload === 'rrweb'), sessionIndexes, (config, index) => {
        for (const snapshot of reassemble(sessionLines(config, index).map((line) => readLegacy(splitLine(config, line).value)))) {
          assert.equal(pythonDumps(snapshot.first.chunk.events_summary), pythonDumps(summaryOf(decompress(snapshot.data))));
        }
      }),
      { numRuns: 20 },
    );
  });
});

// --- Recordings ------------------------------------------------------------------

/**
 * Replays one window's events as rrweb's Replayer applies them, asserting
 * what it needs: a FullSnapshot (after its Meta) starts a new page; mutation
 * adds are flat (no children) under parents that exist, before next siblings
 * that exist; removes, texts and attributes name nodes that exist; mouse
 * positions name nodes that exist at `timestamp + timeOffset`; clicks, scrolls
 * and input name nodes of the page load. Times never go back.
 */
class WindowReplay {
  /** Node id to parent id, and when it was added. */
  private readonly nodes = new Map<number, { parentId: number; addedAt: number }>();
  /** The last id of the page load: interactions stay on those nodes. */
  private loadMaxId = 0;
  /** Rules each CSS-in-JS <style> holds: its `_cssText`'s, then those inserted. */
  private readonly rules = new Map<number, number>();
  /** The node the last mouse event names, which a seeking Replayer hovers until the next one. */
  private pointer = 0;
  private expectFullSnapshot = false;
  private lastAt = 0;

  apply(event: RecordedEvent): void {
    assert.ok(Number.isInteger(event.timestamp) && event.timestamp > 0, 'every event has a positive timestamp');
    assert.ok(event.timestamp >= this.lastAt || event.type === 5, 'events come in time order');
    // A seek lands after all events of a moment: the pointer's node must exist then.
    if (event.timestamp > this.lastAt && this.pointer) this.exists(this.pointer, 'the pointer, wherever a seek lands,');
    this.lastAt = Math.max(this.lastAt, event.timestamp);
    if (this.expectFullSnapshot) assert.equal(event.type, 2, 'a Meta event is followed by its FullSnapshot');
    this.expectFullSnapshot = event.type === 4;
    if (event.type === 4) {
      assert.ok(event.data.href.startsWith('https://') && event.data.width > 0 && event.data.height > 0);
    } else if (event.type === 2) {
      this.nodes.clear();
      this.pointer = 0;
      this.add(event.data.node, 0, event.timestamp, true);
      this.loadMaxId = Math.max(...this.nodes.keys());
    } else if (event.type === 3) {
      assert.ok(this.nodes.size > 0, "a window's first snapshot is full");
      this.incremental(event.data, event.timestamp);
    } else if (event.type === 6) {
      assert.ok(['rrweb/console@1', 'rrweb/network@1'].includes(event.data.plugin), 'posthog-js plugin events');
    } else {
      assert.equal(event.type, 5, `event type ${event.type} is one rrweb writes`);
      assert.equal(typeof event.data.tag, 'string');
    }
  }

  private add(node: Record<string, any>, parentId: number, at: number, nested: boolean): void {
    assert.ok(Number.isInteger(node.id) && !this.nodes.has(node.id), `node id ${node.id} is new`);
    this.nodes.set(node.id, { parentId, addedAt: at });
    if (node.tagName === 'style' && typeof node.attributes?._cssText === 'string') this.rules.set(node.id, node.attributes._cssText.split('}').length - 1);
    if (!nested) assert.ok(node.type !== 2 || node.childNodes.length === 0, 'an added element comes without children, as rrweb records adds');
    for (const child of node.childNodes ?? []) this.add(child, node.id, at, nested);
  }

  private remove(id: number): void {
    this.nodes.delete(id);
    for (const [child, { parentId }] of [...this.nodes]) if (parentId === id) this.remove(child);
  }

  private exists(id: number, what: string, at = Infinity): void {
    const node = this.nodes.get(id);
    assert.ok(node, `${what} refers to node ${id}, which exists`);
    assert.ok(node.addedAt <= at, `${what} refers to node ${id} at ${at}, added later at ${node.addedAt}`);
  }

  private incremental(data: Record<string, any>, at: number): void {
    switch (data.source) {
      case 0:
        // rrweb applies removes, then adds, then text and attribute changes.
        for (const { parentId, id } of data.removes) {
          this.exists(id, 'a remove');
          assert.equal(this.nodes.get(id)!.parentId, parentId, 'a remove names the parent');
          this.remove(id);
        }
        for (const { parentId, nextId, node } of data.adds) {
          this.exists(parentId, 'an add');
          if (nextId !== null) this.exists(nextId, "an add's next sibling");
          this.add(node, parentId, at, false);
        }
        for (const { id } of data.texts) this.exists(id, 'a text change');
        for (const { id } of data.attributes) this.exists(id, 'an attribute change');
        break;
      case 1:
        assert.ok(data.positions.length >= 1 && data.positions.length <= 10, 'as many positions as rrweb samples');
        for (const { id, timeOffset } of data.positions) {
          assert.ok(timeOffset <= 0 && timeOffset > -500);
          this.exists(id, 'a mouse position', at + timeOffset);
        }
        this.pointer = data.positions.at(-1).id;
        break;
      case 2: case 3: case 5:
        if (data.source === 2 && data.x !== undefined) this.pointer = data.id;
        if (data.id !== 1) assert.ok(data.id <= this.loadMaxId, 'interactions on nodes of the page load, which a seeking Replayer can find');
        this.exists(data.id, `source ${data.source}`);
        break;
      case 4:
        assert.ok(data.width > 0 && data.height > 0);
        break;
      case 8: case 13: {
        // CSSOM changes as rrweb records them on a <style>'s sheet: rules inserted at an index it has, declarations set on a rule it has.
        const count = this.rules.get(data.id);
        assert.ok(count !== undefined, `source ${data.source} names a <style> with rules, node ${data.id}`);
        for (const { rule, index } of data.adds ?? []) {
          assert.ok(Number.isInteger(index) && index <= this.rules.get(data.id)!, 'a rule inserted at an index the sheet has');
          assert.match(rule, /^[^{}]+\{[^{}]*\}$/, 'one rule');
          this.rules.set(data.id, this.rules.get(data.id)! + 1);
        }
        if (data.source === 13) assert.ok(data.index.length === 1 && data.index[0] < count && typeof data.set.property === 'string', 'a declaration set on a rule the sheet has');
        break;
      }
      default:
        assert.fail(`incremental source ${data.source} is one rrweb writes`);
    }
  }
}

/** posthog-js's compressed event undone, as PostHog's player does: each `cv` field gunzipped from latin1 and parsed. */
function decompressEvent(event: any): RecordedEvent {
  if (event.cv === undefined) return event;
  assert.equal(event.cv, '2024-10');
  const unpack = (text: string) => JSON.parse(gunzipSync(Buffer.from(text, 'latin1')).toString());
  if (event.type === 2) return { ...event, data: unpack(event.data) };
  assert.equal(event.data.source, 0, 'only FullSnapshots and mutations are compressed');
  return { ...event, data: { ...event.data, texts: unpack(event.data.texts), attributes: unpack(event.data.attributes), removes: unpack(event.data.removes), adds: unpack(event.data.adds) } };
}

/** A session's windows, replayed: its events read back as each format's consumer reads them. */
function replaySession(config: Config, index: number): { windows: number } {
  const windows = sessionWindows(config, index);
  for (const list of windows.values()) {
    const window = new WindowReplay();
    for (const event of list) window.apply(event);
  }
  return { windows: windows.size };
}

/** A session's events by window, read back as each format's consumer reads them, in the order they were sent. */
function sessionWindows(config: Config, index: number): Map<string, RecordedEvent[]> {
  const windows = new Map<string, RecordedEvent[]>();
  const replay = (windowId: string, list: RecordedEvent[]) => windows.set(windowId, [...(windows.get(windowId) ?? []), ...list]);
  const lines = sessionLines(config, index).map((line) => splitLine(config, line).value);
  if (config.format === 'snapshot') {
    for (const snapshot of reassemble(lines.map(readLegacy))) replay(snapshot.first.windowId, decompress(snapshot.data));
  } else if (config.format === 'snapshot-items') {
    for (const line of lines) {
      const { windowId, items } = readItems(line);
      replay(windowId, items.map(decompressEvent));
    }
  } else {
    for (const line of lines) {
      const [{ properties }] = JSON.parse(gunzipSync(Buffer.from(JSON.parse(line).body, 'base64')).toString());
      replay(properties.$window_id, properties.$snapshot_data.map(decompressEvent));
    }
  }
  return windows;
}

describe('recordings', () => {
  const rrwebConfigs = anyFlags.map((args) => configFrom(args)).filter((config) => config.format !== 'snapshot' || config.payload === 'rrweb');

  it("replay in every format as rrweb's Replayer needs: flat adds under parents that exist, positions on nodes that exist at their time", () => {
    fc.assert(
      fc.property(rrwebConfigs, sessionIndexes, (config, index) => {
        const { windows } = replaySession(config, index);
        assert.equal(windows, new SessionPlan(config, new SessionRandom(config.seedValue, index), config.startMs).windows);
      }),
      { numRuns: 30 },
    );
  });

  it("a spliced stylesheet's CRC-32 joins the member's from the two texts' CRCs and the second's length, as over the bytes one after the other", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 70_000 }), (first, second) => {
        assert.equal(crc32Combine(crc32(first), crc32(second), second.length), crc32(Buffer.concat([first, second])));
      }),
      { numRuns: 200 },
    );
  });

  it("legacy's UTF-16 deflate, rewritten from the ASCII's, inflates to the text in UTF-16LE: pieces go on from the one before, flush points kept, the byte-order mark first", () => {
    const bom = Uint8Array.of(0xff, 0xfe);
    // Words and runs that repeat near and far, so matches of every length and distance (up to the 16 KiB window) occur.
    const piece = fc.array(fc.oneof(fc.constantFrom('{"type": 3, ', '"data": ', 'mousemove', '\\u00e9', ', '), fc.string({ unit: fc.constantFrom('a', 'b', ' ', '"'), maxLength: 600 }),
      fc.stringMatching(/^[ -~]{0,40}$/)), { maxLength: 400 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 4 }), fc.boolean(), (pieces, finished) => {
        const deflated: Buffer[] = [];
        let before = Buffer.alloc(0);
        for (const [at, text] of pieces.entries()) {
          const ascii = Buffer.from(text, 'latin1');
          const last = at === pieces.length - 1 && finished;
          const options = { ...ASCII_FOR_UTF16, ...(last ? {} : { finishFlush: zlibConstants.Z_SYNC_FLUSH }), ...(before.length > 0 && { dictionary: before.subarray(-32_768) }) };
          deflated.push(widenDeflate(deflateRawSync(ascii, options), at === 0 ? bom : undefined));
          before = Buffer.concat([before, ascii]);
        }
        const inflated = inflateRawSync(Buffer.concat(deflated), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
        assert.deepEqual(inflated, Buffer.concat([bom, Buffer.from(pieces.join(''), 'utf16le')]));
      }),
      { numRuns: 150 },
    );
    // zlib writes fixed codes or stored blocks: a stored block ("ab") then a last, empty one.
    const stored = Uint8Array.of(0x00, 0x02, 0x00, 0xfd, 0xff, 0x61, 0x62, 0x01, 0x00, 0x00, 0xff, 0xff);
    assert.deepEqual(inflateRawSync(widenDeflate(stored, bom)), Buffer.from('\ufeffab', 'utf16le'));
  });

  it("legacy's rewritten UTF-16 deflate weighs what zlib makes of the UTF-16 itself, within 2% on texts of 20 kB and more", () => {
    const text = fc.array(fc.oneof(fc.constantFrom('{"type": 3, "data": {"source": 1, "positions": [', '{"x": ', '"timeOffset": -', '}, '), fc.integer({ min: 0, max: 2000 }).map(String),
      fc.stringMatching(/^[a-z]{2,9}$/)), { minLength: 6000, maxLength: 12_000 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(text, (json) => {
        const widened = widenDeflate(deflateRawSync(Buffer.from(json, 'latin1'), ASCII_FOR_UTF16)).length;
        const direct = deflateRawSync(Buffer.from(json, 'utf16le'), { level: ASCII_FOR_UTF16.level }).length;
        assert.ok(Math.abs(widened / direct - 1) < 0.02, `${widened} bytes against ${direct}`);
      }),
      { numRuns: 20 },
    );
  });

  it('carry what posthog-js sends besides rrweb: console and network events, custom events', () => {
    const config = configFrom(['--format', 'snapshot-items', '--count', '4', '--seed-value', '3', '--full-snapshot-size-mean', '20000',
      '--incremental-snapshot-size-mean', '4000', '--incremental-snapshot-count-mean', '20', '--incremental-snapshot-count-standard-deviation', '5']);
    const kinds = new Map<string, number>();
    for (const line of runLines(config)) {
      for (const item of readItems(line).items) {
        const kind = item.type === 6 ? item.data.plugin : item.type === 5 ? 'custom' : String(item.type);
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
    }
    for (const kind of ['rrweb/console@1', 'rrweb/network@1', 'custom', '2', '3', '4']) assert.ok(kinds.get(kind)! > 0, `${kind} events`);
  });

  /** Sessions of mostly page loads: three full snapshots and two incremental ones on average. */
  const pageLoads = (format: string, count: number) => configFrom(['--format', format, '--count', String(count), '--seed-value', '5',
    '--full-snapshot-count-mean', '3', '--incremental-snapshot-count-mean', '2', '--incremental-snapshot-count-standard-deviation', '1']);

  it("posthog-js's compressed FullSnapshots weigh what its own fflate 0.4 makes of the same text, within 1.3% (zlib level 5 made them 2-2.6% heavier)", () => {
    const config = pageLoads('snapshot-items', 8);
    let made = 0;
    let fflates = 0;
    for (const line of runLines(config)) {
      for (const item of readItems(line).items as any[]) {
        if (item.type !== 2 || item.cv === undefined) continue;
        const member = Buffer.from(item.data, 'latin1');
        made += member.length;
        fflates += fflateGzipSync(gunzipSync(member)).length;
      }
    }
    assert.ok(fflates > 2_000_000, `${fflates} bytes of FullSnapshots`);
    assert.ok(Math.abs(made / fflates - 1) < 0.013, `made ${made} bytes where fflate makes ${fflates}`);
  });

  it("vegeta bodies gunzip to their text, CRC-32 and length checked, and weigh no more than gzip level 1 makes of it", () => {
    const config = pageLoads('vegeta', 6);
    let made = 0;
    let levelOne = 0;
    for (const line of runLines(config)) {
      const body = Buffer.from(JSON.parse(line).body, 'base64');
      const text = gunzipSync(body); // checks the trailer's CRC-32 and length against the text
      assert.equal(JSON.parse(text.toString())[0].event, '$snapshot');
      made += body.length;
      levelOne += gzipSync(text, { level: 1 }).length;
    }
    // Spliced stylesheets are compressed at level 6, the fresh text at level 1.
    assert.ok(made <= levelOne, `${made} bytes of bodies where level 1 makes ${levelOne}`);
  });

  it("a vegeta body splices in a stylesheet's member bytes compressed once, the same bytes in every body, between fresh text compressed to flush points", () => {
    const sheet = { deflated: Buffer.from(Array.from({ length: 5000 }, (_, at) => (at * 7919) % 251)), escaped: 0, crc: 0, length: 0, end: Buffer.alloc(0) };
    // Escaped as the body carries a latin1 string, compressed as BodyWriter compresses a stylesheet: on its own, at level 6, to a flush point.
    const piece = deflateRawSync(Buffer.from(JSON.stringify(sheet.deflated.toString('latin1')).slice(1, -1)), { level: 6, finishFlush: zlibConstants.Z_SYNC_FLUSH });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.uint8Array({ maxLength: 2000 }), fc.string(), (before, after, text) => {
        const member = Buffer.concat([before, sheet.deflated, after]);
        const writer = new BodyWriter();
        writer.write(`[${JSON.stringify(text)},`);
        writer.writeEvent({ before: '{"data":"', member, splices: [{ at: before.length, block: sheet }], after: '"}' });
        writer.write(']');
        const body = writer.finish();
        assert.deepEqual(JSON.parse(gunzipSync(body).toString()), [text, { data: member.toString('latin1') }]);
        assert.ok(body.includes(piece), 'the stylesheet as compressed once');
      }),
      { numRuns: 50 },
    );
  });

  it('--format snapshot-items compresses as posthog-js does: every FullSnapshot, mutations of 1 kB or more, none else; --no-compress-events none', () => {
    for (const args of [[], ['--no-compress-events']]) {
      const config = configFrom(['--format', 'snapshot-items', '--count', '3', '--seed-value', '8', ...args]);
      for (const line of runLines(config)) {
        for (const item of readItems(line).items as any[]) {
          const plain = decompressEvent(item);
          const compressible = plain.type === 2 || (plain.type === 3 && plain.data.source === 0 && JSON.stringify({ type: plain.type, data: plain.data, timestamp: plain.timestamp }).length >= 1024);
          assert.equal(item.cv !== undefined, args.length === 0 && compressible, `type ${item.type} compressed only if posthog-js would`);
        }
      }
    }
  });

  it("snapshot-items' events are JSON as serde_json writes a Value, keys sorted at every depth, whatever shapes the objects share a first key with", () => {
    // Keys from a pool of four, so that many objects start with the same key and differ later, in their length or order.
    const key = fc.constantFrom('x', 'y', 'id', 'timeOffset');
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, fc.integer(), fc.string(), fc.boolean(), fc.constant(null), tie('list'), tie('object')),
      list: fc.array(tie('node'), { maxLength: 4 }),
      object: fc.dictionary(key, tie('node'), { maxKeys: 4 }),
    })).node;
    fc.assert(fc.property(fc.array(value, { minLength: 2, maxLength: 8 }), (values) => {
      for (const item of values) assert.equal(sortedJson(item), serdeValueJson(item));
    }), { seed: 16, numRuns: 400 });
  });

  it("--payload rrweb decodes to the text Python's json.dumps wrote", () => {
    const config = configFrom(['--payload', 'rrweb', '--count', '3', '--seed-value', '4']);
    for (const snapshot of reassemble(runLines(config).map((line) => readLegacy(line)))) {
      const text = gunzipSync(Buffer.from(snapshot.data, 'base64')).subarray(2).toString('utf16le');
      assert.equal(text, pythonDumps(JSON.parse(text)));
    }
  });
});

// --- Pages and the person on them ------------------------------------------------

/** SVG path data as browsers parse it (SVG 2, path grammar): each command's arguments in whole groups, arc flags a 0 or a 1. */
function parsesAsPathData(d: string): boolean {
  const arity: Record<string, number> = { m: 2, l: 2, h: 1, v: 1, c: 6, s: 4, q: 4, t: 2, a: 7, z: 0 };
  const tokens = d.match(/[MmLlHhVvCcSsQqTtAaZz]|-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|\S/g) ?? [];
  if (!/^[Mm]$/.test(tokens[0] ?? '')) return false;
  for (let at = 0; at < tokens.length; ) {
    const command = tokens[at++]!.toLowerCase();
    if (!(command in arity)) return false;
    const args: string[] = [];
    while (at < tokens.length && !/^[A-Za-z]$/.test(tokens[at]!)) args.push(tokens[at++]!);
    const n = arity[command]!;
    if (n === 0 ? args.length > 0 : args.length === 0 || args.length % n !== 0) return false;
    if (!args.every((arg) => Number.isFinite(Number(arg)))) return false;
    if (command === 'a' && !args.every((arg, index) => index % 7 !== 3 && index % 7 !== 4 || arg === '0' || arg === '1')) return false;
  }
  return true;
}

/** Every serialized node of a FullSnapshot, and of a mutation's adds, with its parent's id. */
function* serializedNodes(event: RecordedEvent): Generator<{ node: Record<string, any>; parentId: number }> {
  function* walk(node: Record<string, any>, parentId: number): Generator<{ node: Record<string, any>; parentId: number }> {
    yield { node, parentId };
    for (const child of node.childNodes ?? []) yield* walk(child, node.id);
  }
  if (event.type === 2) yield* walk(event.data.node, 0);
  if (event.type === 3 && event.data.source === 0) for (const add of event.data.adds) yield* walk(add.node, add.parentId);
}

/** A stylesheet's rules as [media, selector list, declarations], @media blocks opened: what a hiding check reads. */
function cssRules(css: string): [string, string, string][] {
  const rules: [string, string, string][] = [];
  const blocks = [{ media: '', text: css }];
  for (let block = blocks.pop(); block; block = blocks.pop()) {
    for (let at = 0; at < block.text.length; ) {
      const open = block.text.indexOf('{', at);
      if (open < 0) break;
      const head = block.text.slice(at, open).trim();
      let depth = 1;
      let close = open + 1;
      for (; depth > 0 && close < block.text.length; close++) depth += block.text[close] === '{' ? 1 : block.text[close] === '}' ? -1 : 0;
      const body = block.text.slice(open + 1, close - 1);
      if (head.startsWith('@media')) blocks.push({ media: head, text: body });
      else if (!head.startsWith('@')) rules.push([block.media, head, body]);
      at = close;
    }
  }
  return rules;
}

/** An element as selectors see it. */
interface Styled {
  tag: string;
  attributes: Record<string, string>;
  parent: Styled | undefined;
}

/** Whether a compound selector (`tag.class[attr="v"]:not(.x)`) matches an element in its state at rest (no hover, focus or pseudo-elements). */
function compoundMatches(compound: string, element: Styled): boolean {
  const parts = compound.match(/\\.|:not\([^)]*\)|::?[\w-]+(?:\([^)]*\))?|\[[^\]]*\]|[.#]?(?:\\.|[\w-])+|\*/g) ?? [];
  const classes = (element.attributes.class ?? '').split(/\s+/);
  return parts.every((part) => {
    if (part === '*') return true;
    if (part.startsWith(':not(')) return !compoundMatches(part.slice(5, -1), element);
    if (part.startsWith(':')) return false;
    if (part.startsWith('.')) return classes.includes(part.slice(1).replace(/\\(.)/g, '$1'));
    if (part.startsWith('#')) return element.attributes.id === part.slice(1);
    if (part.startsWith('[')) {
      const [, name, value] = part.match(/^\[([\w-]+)(?:="?([^"\]]*)"?)?\]$/) ?? [];
      return name !== undefined && name in element.attributes && (value === undefined || element.attributes[name] === value);
    }
    return element.tag === part.toLowerCase();
  });
}

/** Whether a selector (compounds joined by descendant and child combinators) matches an element. */
function selectorMatches(selector: string, element: Styled): boolean {
  const tokens = selector.trim().replace(/\s*([>+~])\s*/g, ' $1 ').split(/\s+/);
  const match = (at: number, candidate: Styled | undefined): boolean => {
    if (!candidate || !compoundMatches(tokens[at]!, candidate)) return false;
    if (at === 0) return true;
    const combinator = tokens[at - 1]!;
    if (combinator === '>') return match(at - 2, candidate.parent);
    if (combinator === '+' || combinator === '~') return false;
    for (let ancestor = candidate.parent; ancestor; ancestor = ancestor.parent) if (match(at - 1, ancestor)) return true;
    return false;
  };
  return match(tokens.length - 1, element);
}

const HIDING = /(?:^|;)\s*(?:display:\s*none|visibility:\s*hidden|opacity:\s*0)\s*(?:;|$)/;

/** Median of a list of numbers. */
const medianOf = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** A run of sessions large enough to be furnished pages with a person at them: mid-sized snapshots, a dozen batches. */
const midSized = (format: string, seed: number, args: string[] = []) => configFrom(['--format', format, ...(format === 'snapshot' ? ['--payload', 'rrweb'] : []),
  `--seed-value=${seed}`, '--full-snapshot-size-mean', '60000', '--full-snapshot-size-standard-deviation', '20000', '--incremental-snapshot-size-mean', '6000',
  '--incremental-snapshot-size-standard-deviation', '4000', '--incremental-snapshot-count-mean', '12', '--incremental-snapshot-count-standard-deviation', '4',
  '--window-count-mean', '1.2', ...args]);
/** Sessions of such runs, of any format, seed and index. */
/** Sessions read back, by format, seed and index: the properties below see the same cases (one fast-check seed), so each is made once. */
const readSessions = new Map<string, Map<string, RecordedEvent[]>>();
const furnishedSessions = fc.record({ format: fc.constantFrom('snapshot', 'snapshot-items', 'vegeta'), seed: anySeed, index: sessionIndexes })
  .map(({ format, seed, index }) => {
    const config = midSized(format, seed);
    const key = `${format} ${seed} ${index}`;
    const windows = () => readSessions.get(key) ?? readSessions.set(key, sessionWindows(config, index)).get(key)!;
    return { config, windows };
  });

describe('pages and people', () => {
  it('icons and charts are SVG path data a browser parses: each command with whole groups of arguments, arc flags 0 or 1', () => {
    assert.ok(!parsesAsPathData('M1 2a3 3 0 5 0 4 4'), 'the oracle refuses an arc flag of 5');
    fc.assert(
      fc.property(furnishedSessions, ({ windows }) => {
        let paths = 0;
        for (const events of windows().values()) {
          for (const event of events) {
            for (const { node } of serializedNodes(event)) {
              if (node.tagName !== 'path') continue;
              paths++;
              assert.ok(parsesAsPathData(node.attributes.d), `path data ${node.attributes.d}`);
            }
          }
        }
        assert.ok(paths > 0, 'pages have icons');
      }),
      { numRuns: 8 },
    );
  });

  it("no rule of a page's stylesheets hides html, body, main or anything in main: hiding is for closed menus, dialogs and tooltips", () => {
    fc.assert(
      fc.property(furnishedSessions.filter(({ config }) => config.format !== 'snapshot'), ({ windows }) => {
        for (const events of windows().values()) {
          for (const event of events.filter((candidate) => candidate.type === 2)) {
            const styled = new Map<number, Styled>();
            let css = '';
            for (const { node, parentId } of serializedNodes(event)) {
              if (node.type === 3 && node.isStyle) css += node.textContent;
              if (node.type !== 2) continue;
              if (typeof node.attributes._cssText === 'string') css += node.attributes._cssText;
              styled.set(node.id, { tag: node.tagName, attributes: node.attributes, parent: styled.get(parentId) });
            }
            const main = [...styled.values()].find((element) => element.tag === 'main');
            if (!main) continue;
            const shown = [...styled.values()].filter((element) => element === main || ['html', 'body'].includes(element.tag) ||
              (() => { for (let at = element.parent; at; at = at.parent) if (at === main) return true; return false; })());
            for (const [media, selectors, declarations] of cssRules(css)) {
              if (media.includes('print') || !HIDING.test(declarations)) continue;
              for (const selector of selectors.split(',')) {
                const hidden = shown.find((element) => selectorMatches(selector, element));
                assert.equal(hidden, undefined, `${selector} { ${declarations} } hides <${hidden?.tag} class="${hidden?.attributes.class}">`);
              }
            }
          }
        }
      }),
      { numRuns: 6 },
    );
  });

  it("a person's hand: successive mouse positions a step of a movement apart (median 8-40 px), at a hand's speed (median 0.1-1.5 px/ms)", () => {
    fc.assert(
      fc.property(furnishedSessions, ({ windows }) => {
        const steps: number[] = [];
        const speeds: number[] = [];
        for (const events of windows().values()) {
          const positions = events.filter((event) => event.type === 3 && event.data.source === 1)
            .flatMap((event) => event.data.positions.map((p: any) => ({ at: event.timestamp + p.timeOffset, x: p.x, y: p.y })))
            .sort((a, b) => a.at - b.at);
          for (let at = 1; at < positions.length; at++) {
            const [a, b] = [positions[at - 1]!, positions[at]!];
            steps.push(Math.hypot(b.x - a.x, b.y - a.y));
            if (b.at > a.at && b.at - a.at <= 200) speeds.push(Math.hypot(b.x - a.x, b.y - a.y) / (b.at - a.at));
          }
        }
        if (steps.length < 30) return;
        assert.ok(medianOf(steps) >= 8 && medianOf(steps) <= 40, `median step ${medianOf(steps)} px`);
        assert.ok(medianOf(speeds) >= 0.1 && medianOf(speeds) <= 1.5, `median speed ${medianOf(speeds)} px/ms`);
      }),
      { numRuns: 10 },
    );
  });

  it('clicks come where the pointer is, over the link, button or field clicked, which exists: mouse down, focus, up, click', () => {
    const interactive = new Set(['a', 'button', 'input', 'textarea', 'select', 'label']);
    fc.assert(
      fc.property(furnishedSessions, ({ windows }) => {
        for (const events of windows().values()) {
          const tags = new Map<number, { tag: string; parentId: number }>();
          let pointer: { x: number; y: number; id: number } | undefined;
          for (const event of events) {
            if (event.type === 2) tags.clear();
            for (const { node, parentId } of serializedNodes(event)) tags.set(node.id, { tag: node.tagName, parentId });
            if (event.type === 3 && event.data.source === 1) pointer = event.data.positions.at(-1);
            if (event.type !== 3 || event.data.source !== 2 || event.data.type !== 2) continue;
            const { id, x, y } = event.data;
            assert.ok(pointer && Math.hypot(pointer.x - x, pointer.y - y) <= 2, `click at ${x},${y} where the pointer is (${pointer?.x},${pointer?.y})`);
            let onInteractive = false;
            for (let node = tags.get(id); node; node = tags.get(node.parentId)) onInteractive ||= interactive.has(node.tag);
            assert.ok(onInteractive, `click on <${tags.get(id)?.tag}> ${id}, a link, button or field`);
            let over = false;
            for (let node = pointer.id; node > 0 && !over; node = tags.get(node)?.parentId ?? 0) over = node === id;
            assert.ok(over, `click on ${id} with the pointer over ${pointer.id}`);
          }
        }
      }),
      { numRuns: 10 },
    );
  });

  it('nextId as rrweb sets it: adds name their next sibling, 40-90% of them over a run of sessions', () => {
    let adds = 0;
    let withNext = 0;
    for (const seed of [0, 1, 2, 3]) {
      const run = midSized('snapshot-items', seed, ['--no-compress-events']);
      for (let index = 0; index < 8; index++) {
        for (const events of sessionWindows(run, index).values()) {
          for (const event of events.filter((candidate) => candidate.type === 3 && candidate.data.source === 0)) {
            adds += event.data.adds.length;
            withNext += event.data.adds.filter((add: any) => add.nextId !== null).length;
          }
        }
      }
    }
    assert.ok(withNext / adds >= 0.4 && withNext / adds <= 0.9, `${withNext} of ${adds} adds with nextId`);
  });
});

// --- Ids and times --------------------------------------------------------------

describe('ids and times', () => {
  it("are posthog-js's UUIDv7s on the session's clock, and capture's own ids and times", () => {
    fc.assert(
      fc.property(anyConfig.filter((config) => config.format !== 'vegeta'), fc.integer({ min: 0, max: 1000 }), (config, index) => {
        const arrivalMs = START_MS + index * 1000;
        const lines = sessionLines(config, index, arrivalMs).map((line) => splitLine(config, line).value);
        const messages = lines.map((value) => (config.format === 'snapshot' ? readLegacy(value) : readItems(value)));
        const { sessionId } = messages[0]!;
        assert.match(sessionId, UUID_V7);
        assert.equal(idTimeMs(sessionId), arrivalMs, 'the session id is minted as the session starts');
        let previousNow = 0;
        for (const { envelope, windowId } of messages) {
          assert.match(windowId, UUID_V7);
          assert.ok(idTimeMs(windowId) >= arrivalMs, 'window ids are minted as their window opens');
          const nowMs = Date.parse(envelope.now);
          assert.ok(nowMs >= previousNow && Date.parse(envelope.sent_at) <= nowMs, 'now moves forward, after sent_at');
          previousNow = nowMs;
          if (config.format === 'snapshot') {
            // Python capture's UUIDT: its time is capture's now; no version bits.
            assert.match(envelope.uuid, UUID_ANY);
            assert.equal(idTimeMs(envelope.uuid), Math.floor(nowMs));
          } else {
            assert.match(envelope.uuid, UUID_V7);
            assert.equal(idTimeMs(envelope.uuid), Date.parse(envelope.sent_at), "the batch's event uuid, minted as posthog-js sent it");
          }
        }
        assert.equal(new Set(messages.map((message) => message.envelope.uuid)).size, messages.length, 'every message its own uuid');
      }),
      { numRuns: 20 },
    );
  });
});

// --- Plans ----------------------------------------------------------------------

describe('plans', () => {
  it('start with a full snapshot, open every window with one, and keep sizes whole and positive', () => {
    fc.assert(
      fc.property(anyConfig, sessionIndexes, (config, index) => {
        const plan = new SessionPlan(config, new SessionRandom(config.seedValue, index), config.startMs);
        const opened = new Set<number>();
        let count = 0;
        for (let snapshot = plan.next(); snapshot; snapshot = plan.next(), count++) {
          if (count === 0) assert.equal(snapshot.kind, 'full');
          if (!opened.has(snapshot.window)) assert.equal(snapshot.kind, 'full', 'a window opens with a full snapshot');
          opened.add(snapshot.window);
          assert.ok(Number.isInteger(snapshot.size) && snapshot.size >= 1);
          assert.ok(snapshot.firstEventMs <= snapshot.sentAtMs && snapshot.sentAtMs * 1000 <= snapshot.receivedAtUs);
        }
        assert.equal(count, plan.fullSnapshots + plan.incrementalSnapshots);
        assert.equal(opened.size, plan.windows);
      }),
      { numRuns: 200 },
    );
  });

  it('place later full snapshots among the incrementals, not all first', () => {
    const config = configFrom([]);
    let fullAfterIncremental = 0;
    for (let index = 0; index < 500; index++) {
      const plan = new SessionPlan(config, new SessionRandom(0, index), START_MS);
      let kinds = '';
      for (let snapshot = plan.next(); snapshot; snapshot = plan.next()) kinds += snapshot.kind[0];
      if (/i.*f/.test(kinds)) fullAfterIncremental++;
    }
    assert.ok(fullAfterIncremental > 50, `${fullAfterIncremental} of 500 sessions have a full snapshot after an incremental one`);
  });

  it("cut rrweb snapshots at capture's 25 MB request limit; random data has none", () => {
    for (const [payload, cap] of [['rrweb', 25_000_000], ['random', Infinity]] as const) {
      const huge = { mean: 4e7, standardDeviation: 4e7 };
      const config: Config = { ...configFrom([]), payload, ...drawnFields('fullSnapshotSize', huge), ...drawnFields('incrementalSnapshotSize', huge) };
      let largest = 0;
      for (let index = 0; index < 20; index++) {
        const plan = new SessionPlan(config, new SessionRandom(0, index), START_MS);
        for (let snapshot = plan.next(); snapshot; snapshot = plan.next()) largest = Math.max(largest, snapshot.size);
      }
      assert.ok(payload === 'rrweb' ? largest === cap : largest > 25_000_000, `${payload}: largest ${largest}`);
    }
  });

  it('stream: a session of 150,000 snapshots is planned one at a time, in constant memory', () => {
    const config = configFrom(['--incremental-snapshot-count-mean', '150000', '--incremental-snapshot-count-standard-deviation', '0']);
    const plan = new SessionPlan(config, new SessionRandom(0, 0), START_MS);
    // The heap after a full collection, once 10,000 snapshots are out and at the end: 140,000 more
    // snapshots held at 8 bytes each (a pointer) would add 1.1 MB.
    const liveHeap = () => (collectGarbage(), process.memoryUsage().heapUsed);
    let early = 0;
    let count = 0;
    let previous = 0;
    for (let snapshot = plan.next(); snapshot; snapshot = plan.next()) {
      assert.ok(snapshot.receivedAtUs >= previous);
      previous = snapshot.receivedAtUs;
      if (++count === 10_000) early = liveHeap();
    }
    assert.equal(count, plan.fullSnapshots + 150_000);
    const grown = liveHeap() - early;
    assert.ok(grown < 500_000, `the plan is not held in memory: the live heap grew ${grown} bytes over 140,000 snapshots`);
  });
});

// --- Runs: interleaving, shards, determinism --------------------------------------

/** Sizes for small, quick runs: as flags, and as a Config's fields. */
const SMALL_SIZES = { ...drawnFields('fullSnapshotSize', { mean: 3000, standardDeviation: 1000 }), ...drawnFields('incrementalSnapshotSize', { mean: 500, standardDeviation: 500 }) };
/** What a snapshot adds to a session's time on average: posthog-js's 2 s flush and 3 s of idleness; and half the latency. */
const FLUSH_GAP_MEAN_MS = 5000;
const MAX_LATENCY_MEAN_MS = 125;
const SMALL = ['--full-snapshot-size-mean', '3000', '--incremental-snapshot-size-mean', '500', '--incremental-snapshot-count-mean', '5', '--incremental-snapshot-count-standard-deviation', '2'];
/** A small run of `format` (flags as FORMATS has them), seeded and with a token: the same bytes in every process. */
const formatArgs = (format: string[], count = 4) => ['--count', String(count), '--seed-value', '11', '--start', START, ...SMALL, ...format, '--token', 'phc_t'];

describe('runs', () => {
  it("interleave sessions in order of now, ties by session id, each session's messages in its own order", () => {
    fc.assert(
      // The order comes from the plans alone, so random payloads (the quickest to make) show it for every format.
      fc.property(anyConfig.filter((config) => config.format === 'snapshot' && config.payload === 'random'), fc.integer({ min: 1, max: 40 }), fc.double({ min: 0.5, max: 50, noNaN: true }), (base, count, concurrency) => {
        const config = { ...base, count, concurrency };
        let previous = { atUs: -Infinity, sessionId: '' };
        const lastOrdinal = new Map<string, number>();
        let switches = 0;
        let lastSession = '';
        for (const { session, snapshot } of scheduleSnapshots(config, new InFlight())) {
          const { sessionId } = session.identity;
          assert.ok(snapshot.receivedAtUs > previous.atUs || (snapshot.receivedAtUs === previous.atUs && sessionId >= previous.sessionId));
          previous = { atUs: snapshot.receivedAtUs, sessionId };
          assert.equal(lastOrdinal.get(sessionId) ?? -1, session.snapshots - 2, "a session's snapshots in order");
          lastOrdinal.set(sessionId, session.snapshots - 1);
          if (sessionId !== lastSession) switches++;
          lastSession = sessionId;
        }
        assert.equal(lastOrdinal.size, count);
        // Sessions some seconds apart, each lasting tens of seconds: they overlap, so the output switches between them.
        if (concurrency >= 10 && count >= 10) assert.ok(switches > count, `${switches} switches between ${count} sessions`);
      }),
      { numRuns: 40 },
    );
  });

  it('shard: the shards\' lines, merged by the (now, session id) each line shows, are the unsharded run byte for byte', () => {
    fc.assert(
      fc.property(anyConfig.filter((config) => config.format !== 'vegeta'), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 4 }), (base, count, shards) => {
        const config = { ...base, count, ...SMALL_SIZES };
        const whole = runLines(config);
        const parts = Array.from({ length: shards }, (_, index) => runLines({ ...config, shard: { index, count: shards } }));
        assert.deepEqual(mergedByOrder(parts), whole);
      }),
      { numRuns: 12 },
    );
  });

  it('jobs: each session is made by one job, and the jobs\' lines, merged by (now, session id), are the run byte for byte', () => {
    fc.assert(
      fc.property(anyConfig.filter((config) => config.format !== 'vegeta'), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 4 }), (base, count, jobs) => {
        const config = { ...base, count, ...SMALL_SIZES };
        const perJob = Array.from({ length: jobs }, (_, index) => runLines(config, { index, count: jobs }));
        const sessionsOf = (lines: string[]) => new Set(lines.map((line) => lineOrder(line)!.sessionId));
        const owned = perJob.map(sessionsOf);
        assert.equal(owned.reduce((sum, sessions) => sum + sessions.size, 0), sessionsOf(perJob.flat()).size, 'no session in two jobs');
        assert.deepEqual(mergedByOrder(perJob), runLines(config));
      }),
      { numRuns: 12 },
    );
  });

  it('jobs: a session goes to the job whose sessions in flight plan the fewest characters a second, ties dealt round', () => {
    fc.assert(
      fc.property(anyConfig, fc.double({ min: 1, max: 300, noNaN: true }), fc.integer({ min: 2, max: 5 }), (base, concurrency, jobs) => {
        const config = { ...base, concurrency };
        const balance = new JobBalance(config, jobs);
        const arrivals = new Arrivals(config);
        // The rule, told again: each job's sessions still going, their planned characters over their span.
        const sessions: { job: number; endMs: number; charsPerMs: number }[] = [];
        const dealt = new Set<number>();
        let last = -1;
        for (let at = 0; at < 60; at++) {
          const { index, atMs } = arrivals.next();
          const plan = new SessionPlan(config, new SessionRandom(config.seedValue, index), atMs);
          let chars = 0;
          let endMs = atMs;
          for (let snapshot = plan.next(); snapshot; snapshot = plan.next()) [chars, endMs] = [chars + snapshot.size, snapshot.sentAtMs];
          const loads = Array.from({ length: jobs }, (_, job) => sessions.filter((session) => session.job === job && session.endMs > atMs).reduce((sum, session) => sum + session.charsPerMs, 0));
          // Of the least loaded, the first after the job that got the last session.
          const expected = [...loads.keys()].map((turn) => (last + 1 + turn) % jobs).find((job) => loads[job] === Math.min(...loads));
          const owner = balance.owner(index, atMs);
          assert.equal(owner, expected, `session ${index}: loads ${loads.join(', ')}`);
          sessions.push({ job: owner, endMs, charsPerMs: chars / (endMs - atMs) });
          dealt.add(owner);
          last = owner;
        }
        assert.equal(dealt.size, jobs, 'every job gets sessions');
      }),
      { numRuns: 30 },
    );
  });

  it('the same flags and --start give the same bytes; another seed gives other bytes', () => {
    fc.assert(
      fc.property(anyFlags, sessionIndexes, (args, index) => {
        const config = configFrom(args);
        assert.deepEqual(sessionLines(configFrom(args), index), sessionLines(config, index));
        assert.notDeepEqual(sessionLines({ ...config, seedValue: config.seedValue + 1 }, index), sessionLines(config, index));
      }),
      { numRuns: 12 },
    );
  });
});

// --- Statistics: observed means and spreads match the flags -------------------------
//
// Tolerances come from the distribution: Z standard errors, with a fixed seed
// so a run never flakes. A log-normal with coefficient of variation c has
// kurtosis w^4 + 2w^3 + 3w^2 - 3 with w = 1 + c^2; the sample variance's
// standard error is variance * sqrt((kurtosis - 1) / n). Rounding counts to
// whole numbers adds between 0 and 1/4 to the variance, and a little to its
// standard error.
const Z = 4.5;

function mean(samples: number[]): number {
  return samples.reduce((sum, sample) => sum + sample, 0) / samples.length;
}

function variance(samples: number[]): number {
  const m = mean(samples);
  return samples.reduce((sum, sample) => sum + (sample - m) ** 2, 0) / (samples.length - 1);
}

/** Asserts samples of `minimum + round(log-normal)` have the flags' mean and, with `spread`, their standard deviation. */
function assertMatchesFlags(samples: number[], { mean: m, standardDeviation: sd }: Distribution, minimum: number, spread: boolean, what: string) {
  const n = samples.length;
  const roundingVariance = 0.25;
  const meanTolerance = (Z * Math.sqrt(sd ** 2 + roundingVariance)) / Math.sqrt(n);
  assert.ok(Math.abs(mean(samples) - m) <= meanTolerance, `${what}: mean ${mean(samples)} vs ${m} ± ${meanTolerance} over ${n}`);
  if (!spread) return;
  const w = 1 + (sd / (m - minimum)) ** 2;
  const kurtosis = w ** 4 + 2 * w ** 3 + 3 * w ** 2 - 3;
  // The variance of the squared deviations: the log-normal's own, plus what rounding adds (at most).
  const varianceOfSquares = (kurtosis - 1) * sd ** 4 + sd ** 2 + roundingVariance ** 2;
  const varianceTolerance = Z * Math.sqrt(varianceOfSquares / n);
  const observed = variance(samples);
  assert.ok(
    observed >= sd ** 2 - varianceTolerance && observed <= sd ** 2 + roundingVariance + varianceTolerance,
    `${what}: variance ${observed} vs ${sd ** 2} (+ up to 1/4) ± ${varianceTolerance} over ${n}`,
  );
}

function samplePlans(config: Config, sessions: number) {
  const samples = { full: [] as number[], incremental: [] as number[], windows: [] as number[], fullSizes: [] as number[], incrementalSizes: [] as number[] };
  for (let index = 0; index < sessions; index++) {
    const plan = new SessionPlan(config, new SessionRandom(config.seedValue, index), START_MS);
    samples.full.push(plan.fullSnapshots);
    samples.incremental.push(plan.incrementalSnapshots);
    samples.windows.push(plan.windows);
    for (let snapshot = plan.next(); snapshot; snapshot = plan.next()) {
      (snapshot.kind === 'full' ? samples.fullSizes : samples.incrementalSizes).push(snapshot.size);
    }
  }
  return samples;
}

describe('statistics', () => {
  it('with the defaults, means match the flags (the original gave 1.65 full snapshots, not 2)', () => {
    const config = configFrom([]);
    const samples = samplePlans(config, 20_000);
    assertMatchesFlags(samples.full, drawn(config, 'fullSnapshotCount'), 1, false, 'full snapshots per session');
    assertMatchesFlags(samples.incremental, drawn(config, 'incrementalSnapshotCount'), 0, false, 'incremental snapshots per session');
    assertMatchesFlags(samples.fullSizes, drawn(config, 'fullSnapshotSize'), 1, true, 'full snapshot size');
    assertMatchesFlags(samples.incrementalSizes, drawn(config, 'incrementalSnapshotSize'), 1, false, 'incremental snapshot size');
  });

  it('for generated flags, means and standard deviations of counts, sizes and windows match', () => {
    // Spreads up to 1.5 times the mean: beyond that a log-normal's sample
    // deviation converges too slowly for any useful tolerance.
    const distribution = (min: number, max: number, floor: number) =>
      fc.record({ mean: fc.double({ min, max, noNaN: true }), cv: fc.double({ min: 0, max: 1.5, noNaN: true }) })
        .map(({ mean: m, cv }) => ({ mean: m, standardDeviation: cv * (m - floor) }));
    fc.assert(
      fc.property(distribution(1.2, 5, 1), distribution(0.5, 8, 0), distribution(50, 5000, 1), distribution(1, 3, 1), fc.integer(),
        (fullCount, incrementalCount, size, windows, seed) => {
          const config: Config = {
            ...configFrom([]), seedValue: seed, ...drawnFields('fullSnapshotCount', fullCount), ...drawnFields('incrementalSnapshotCount', incrementalCount),
            ...drawnFields('fullSnapshotSize', size), ...drawnFields('incrementalSnapshotSize', size), ...drawnFields('windowCount', windows),
          };
          const samples = samplePlans(config, 6000);
          assertMatchesFlags(samples.incremental, incrementalCount, 0, true, 'incremental snapshots per session');
          assertMatchesFlags(samples.fullSizes.concat(samples.incrementalSizes), size, 1, true, 'snapshot size');
          assertMatchesFlags(samples.windows, windows, 1, true, 'windows per session');
          // A session has at least as many full snapshots as windows: the full count is max(F, W), whose mean meanSessionMs uses.
          const expectedFull = (meanSessionMs(config) - MAX_LATENCY_MEAN_MS) / FLUSH_GAP_MEAN_MS - incrementalCount.mean;
          assertMatchesFlags(samples.full, { mean: expectedFull, standardDeviation: fullCount.standardDeviation + windows.standardDeviation }, 1, false, 'full snapshots per session');
        }),
      { numRuns: 10 },
    );
  });

  it('sessions in flight average --concurrency: Poisson arrivals at the rate Little\'s law gives', () => {
    // Counts with no spread make durations nearly constant, so the time-average converges fast:
    // its variance over a window T is about rate * E[D^2] / T for this M/G/infinity queue.
    for (const concurrency of [5, 200]) {
      const config = { ...configFrom(['--incremental-snapshot-count-standard-deviation', '2', '--full-snapshot-count-standard-deviation', '1']), concurrency, count: 4000 };
      const arrivals = new Arrivals(config);
      const intervals: [number, number][] = [];
      for (let index = 0; index < config.count; index++) {
        const { atMs } = arrivals.next();
        const plan = new SessionPlan(config, new SessionRandom(config.seedValue, index), atMs);
        let endUs = 0;
        for (let snapshot = plan.next(); snapshot; snapshot = plan.next()) endUs = snapshot.receivedAtUs;
        intervals.push([atMs * 1000, endUs]);
      }
      // Measure over the middle half of the arrivals, away from the ramp up and the drain.
      const [fromUs, toUs] = [intervals[config.count / 4]![0], intervals[(3 * config.count) / 4]![0]];
      let area = 0;
      for (const [start, end] of intervals) area += Math.max(0, Math.min(end, toUs) - Math.max(start, fromUs));
      const measured = area / (toUs - fromUs);
      const durations = intervals.map(([start, end]) => end - start);
      const rate = config.count / 2 / (toUs - fromUs);
      const tolerance = Z * Math.sqrt((rate * mean(durations.map((d) => d * d))) / (toUs - fromUs));
      assert.ok(Math.abs(measured - concurrency) <= tolerance, `${measured} in flight vs ${concurrency} ± ${tolerance}`);
    }
  });
});

// --- The command line -------------------------------------------------------------
//
// Each check here starts its processes as the file loads (a suite's body runs
// then; its tests later), so they run on the machine's other core while the
// properties above run on this one, and each test awaits its own. Output goes
// to files, so no process waits for this busy one to read a pipe. They run
// generate.ts as esbuild bundles it (the transform tsx applies, without tsx's
// 0.3 s of start-up in every process); one runs it through tsx as the README
// does, and some under node 22, Deno and Bun.

const WORK = mkdtempSync(join(tmpdir(), 'generate-test-'));
process.on('exit', () => rmSync(WORK, { recursive: true, force: true }));
const BUNDLE = join(WORK, 'generate.mjs');
buildSync({ entryPoints: [join(ROOT, 'generate.ts')], bundle: true, platform: 'node', format: 'esm', outfile: BUNDLE, logLevel: 'error' });

interface Finished {
  status: number | null;
  stdout: string;
  stderr: string;
}

let outputs = 0;
/** Runs `command` to completion, input closed, its stdout and stderr into files of WORK. */
async function finish(command: string, args: string[], env: Record<string, string> = {}): Promise<Finished> {
  const [stdoutPath, stderrPath] = [join(WORK, `${++outputs}.out`), join(WORK, `${outputs}.err`)];
  const [stdoutFd, stderrFd] = [openSync(stdoutPath, 'w'), openSync(stderrPath, 'w')];
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', stdoutFd, stderrFd], env: { ...process.env, ...env } });
  closeSync(stdoutFd);
  closeSync(stderrFd);
  const [status] = await once(child, 'close');
  return { status, stdout: readFileSync(stdoutPath, 'utf8'), stderr: readFileSync(stderrPath, 'utf8') };
}

/** The generator, run with `args`. */
/** The machine's own node, which runs npm; npm puts node 22 (a devDependency) first on the PATH of its scripts. */
const machineNode = process.env.npm_node_execpath ?? process.execPath;
const generate = (args: string[]) => finish(process.execPath, [BUNDLE, ...args]);
/** A bash script with the generator as `$GEN` and a scratch directory as `$WORK`. */
const shell = (script: string) => finish('bash', ['-c', script], { GEN: `${process.execPath} ${BUNDLE}`, WORK });

/** Asserts two long texts are equal, reporting where they part rather than both in full. */
function assertSameText(actual: string, expected: string, what: string) {
  if (actual === expected) return;
  let at = 0;
  while (actual[at] === expected[at]) at++;
  assert.fail(`${what}: differs at character ${at} of ${actual.length} (expected ${expected.length}): ` +
    `${JSON.stringify(actual.slice(at, at + 40))} vs ${JSON.stringify(expected.slice(at, at + 40))}`);
}

/** Bad inputs and the flag each error must name. */
const BAD_INPUTS: [what: string, args: string[], flag: string][] = [
  ['an unknown flag', ['--bogus'], '--bogus'],
  ['a stray argument', ['100'], '100'],
  ['a missing value', ['--count'], '--count'],
  ['a flag where a value is due', ['--count', '--verbose'], '--count'],
  ['a value for a switch', ['--verbose=yes'], '--verbose'],
  ['a non-number', ['--count', 'many'], '--count'],
  ['a fractional count', ['--count', '2.5'], '--count'],
  ['a negative count', ['--count', '-1'], '--count'],
  ['a negative standard deviation', ['--full-snapshot-size-standard-deviation=-5'], '--full-snapshot-size-standard-deviation'],
  ['a zero size mean', ['--incremental-snapshot-size-mean', '0'], '--incremental-snapshot-size-mean'],
  ['a zero incremental count mean', ['--incremental-snapshot-count-mean', '0'], '--incremental-snapshot-count-mean'],
  ['fewer than one full snapshot on average', ['--full-snapshot-count-mean', '0.5'], '--full-snapshot-count-mean'],
  ['a chunk size over the message limit', ['--chunk-size', '1000000'], '--chunk-size'],
  ['a message limit below the envelope (no --chunk-size given)', ['--max-message-bytes', '1000'], '--max-message-bytes'],
  ['a message limit too small for an items event', ['--format', 'snapshot-items', '--max-message-bytes', '5000'], '--max-message-bytes'],
  ['a token too long for the message limit', [`--token=${'t'.repeat(600_000)}`], '--token'],
  ['a token with a newline', ['--token', 'phc\nx'], '--token'],
  ['a zero chunk size', ['--chunk-size', '0'], '--chunk-size'],
  ['an unparsable start', ['--start', 'yesterday'], '--start'],
  ['an impossible date', ['--start', '2024-02-31T00:00:00Z'], '--start'],
  ['a fractional seed', ['--seed-value', '1.5'], '--seed-value'],
  ['an unknown format', ['--format', 'avro'], '--format'],
  ['an unknown payload', ['--payload', 'zeros'], '--payload'],
  ['a payload for snapshot-items', ['--format', 'snapshot-items', '--payload', 'rrweb'], '--payload'],
  ['a chunk size for snapshot-items', ['--format', 'snapshot-items', '--chunk-size', '1000'], '--chunk-size'],
  ['a message limit for vegeta', ['--format', 'vegeta', '--max-message-bytes', '1'], '--max-message-bytes'],
  ['a key on vegeta targets', ['--format', 'vegeta', '--key'], '--key'],
  ['headers on vegeta targets', ['--format', 'vegeta', '--headers'], '--headers'],
  ['a capture URL for a Kafka format', ['--capture-url', 'http://example.com/s/'], '--capture-url'],
  ['a team id for snapshot-items', ['--format', 'snapshot-items', '--team-id', '2'], '--team-id'],
  ['fewer than one window on average', ['--window-count-mean', '0.5'], '--window-count-mean'],
  ['windows beyond the cap', ['--window-count-mean', '5000'], '--window-count-mean'],
  ['rrweb snapshots beyond capture\'s limit', ['--payload', 'rrweb', '--full-snapshot-size-mean', '2e9'], '--full-snapshot-size-mean'],
  ['a shard index equal to the count', ['--shard', '3/3'], '--shard'],
  ['a shard count of zero', ['--shard', '0/0'], '--shard'],
  ['a shard that is not I/N', ['--shard', 'one/two'], '--shard'],
  ['a negative rate', ['--rate', '-5'], '--rate'],
  ['a rate too small for a double', ['--rate', '1e-400'], '--rate'],
  ['a capture URL that is not http', ['--format', 'vegeta', '--capture-url', 'ftp://example.com/s/'], '--capture-url'],
  ['a capture URL without a host', ['--format', 'vegeta', '--capture-url', 'http:foo'], '--capture-url'],
  ['a capture URL with a newline', ['--format', 'vegeta', '--capture-url', 'http://a/\nb'], '--capture-url'],
  ['both --progress and --no-progress', ['--progress', '--no-progress'], '--progress'],
  ['a speed without --realtime', ['--speed', '2'], '--speed'],
  ['a zero speed', ['--realtime', '--speed', '0'], '--speed'],
  ['a duration without a unit it knows', ['--duration', '10 minutes'], '--duration'],
  ['a zero concurrency', ['--concurrency', '0'], '--concurrency'],
  ['more jobs than the cap (each worker a heap of its own: 1,000 ran the machine out of memory)', ['--jobs', '65'], '--jobs'],
  ['an unknown order', ['--order', 'random'], '--order'],
  ['a mistyped flag, which names the flag it meant', ['--cout', '5'], 'did you mean --count?'],
  ['an unknown one-letter flag', ['-x'], "'-x'"],
  ['a flag given twice', ['--count', '3'], '--count'],
  ['a format given twice', ['--format', 'vegeta', '--format', 'snapshot'], '--format'],
  ['a duration with a unit twice', ['--duration', '1s1s'], '--duration'],
  ['a duration with its units out of order', ['--duration', '30m1h'], '--duration'],
  ['a token of one space', ['--token', ' '], '--token'],
  ['a token with a next-line character (NEL)', ['--token', 'phc\u0085x'], '--token'],
  ['a token with a comma, with --headers', ['--headers', '--token', 'a,b'], '--token'],
  ['so few in flight that arrivals pass 2200', ['--concurrency', '1e-12'], '--concurrency'],
  ['fewer in flight than a double holds', ['--concurrency', '1e-300'], '--concurrency'],
  ['sessions of snapshots that would outlast 2250', ['--incremental-snapshot-count-mean', '1e9'], '--incremental-snapshot-count'],
  ['an output that names a directory', ['--output', 'out/'], '--output'],
  ['Kafka for vegeta targets', ['--format', 'vegeta', '--kafka', 'localhost:9092'], '--kafka'],
  ['a broker without a host', ['--kafka', ':9092'], '--kafka'],
  ['a broker port out of range', ['--kafka', 'localhost:9092,localhost:70000'], '--kafka'],
  ['a topic without --kafka', ['--topic', 'recordings'], '--topic'],
  ['a topic name Kafka refuses', ['--kafka', 'localhost:9092', '--topic', 'a topic'], '--topic'],
  ['a producer setting without --kafka', ['--kafka-option', 'acks=1'], '--kafka-option'],
  ['an unknown producer setting', ['--kafka', 'localhost:9092', '--kafka-option', 'bogus=1'], '--kafka-option'],
  ['a producer setting without a value', ['--kafka', 'localhost:9092', '--kafka-option', 'acks'], '--kafka-option'],
  ['acks Kafka does not know', ['--kafka', 'localhost:9092', '--kafka-option', 'acks=2'], '--kafka-option'],
  ['an unknown compression', ['--kafka', 'localhost:9092', '--kafka-option', 'compression.type=brotli'], '--kafka-option'],
  ['batches larger than the message limit', ['--kafka', 'localhost:9092', '--kafka-option', 'batch.size=2000000'], '--kafka-option'],
  ['SASL without credentials', ['--kafka', 'localhost:9092', '--kafka-option', 'security.protocol=sasl_ssl'], '--kafka-option'],
  ['TLS files without TLS', ['--kafka', 'localhost:9092', '--kafka-option', 'ssl.ca.location=ca.pem'], '--kafka-option'],
  ['--key with --kafka, which writes no lines', ['--kafka', 'localhost:9092', '--key'], '--key'],
  ['--headers with --kafka, which writes no lines', ['--kafka', 'localhost:9092', '--headers'], '--headers'],
  ['--output with --kafka, which writes no lines', ['--kafka', 'localhost:9092', '--output', 'out.jsonl'], '--output'],
];

/** Every format of OUTPUT_FORMATS, and both payloads where --payload applies, as flags. */
const FORMATS = (Object.keys(OUTPUT_FORMATS) as Format[]).flatMap((format) =>
  (OUTPUT_FORMATS[format].flags as readonly string[]).includes('payload') ? [['--format', format], ['--format', format, '--payload', 'rrweb']] : [['--format', format]]);

/** Notes when each line arrives, in ms since it started, and prints them all at the end. */
const ARRIVAL_READER = `const started = performance.now(); let pending = ''; const lines = [];
process.stdin.on('data', (data) => { const atMs = performance.now() - started; pending += data;
  const complete = pending.split('\\n'); pending = complete.pop(); for (const line of complete) lines.push({ atMs, line }); });
process.stdin.on('end', () => process.stdout.write(JSON.stringify(lines)));`;

/**
 * Runs the generator into a reader process of its own, started with it, that
 * notes when each line arrives, so a busy test process cannot skew the times.
 */
async function timedRun(args: string[]): Promise<{ atMs: number; line: string }[]> {
  const result = await finish('bash', ['-c', '"$NODE" "$BUNDLE" "$@" | "$NODE" -e "$READER"', 'bash', ...args], { NODE: process.execPath, BUNDLE, READER: ARRIVAL_READER });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/**
 * A reader in a process of its own (this busy one could stall the pipe):
 * runs the generator with the given arguments, sends it a signal once it has
 * 3 MB, reads on to the end, and prints the exit status and what it read.
 */
const INTERRUPTER = `const { spawn } = require('node:child_process');
const [bundle, signal, pauseMs, ...args] = process.argv.slice(1);
const child = spawn(process.execPath, [bundle, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
const chunks = []; let received = 0;
child.stdout.on('data', (data) => {
  chunks.push(data); received += data.length;
  if (received > 3e6 && !child.killed) child.kill(signal);
  if (+pauseMs > 0) { child.stdout.pause(); setTimeout(() => child.stdout.resume(), +pauseMs); }
});
child.on('close', (status) => process.stdout.write(JSON.stringify({ status, output: Buffer.concat(chunks).toString('utf8') })));`;

/**
 * Stops the generator (with `args`) with `signal` once a reader has 3 MB of
 * its output: the exit status and what the reader got. A reader given
 * `pauseMs` waits that long after each read (of at most 64 KiB).
 */
async function interrupted(signal: NodeJS.Signals, { pauseMs = 0, args = ['--count', '100000', '--start', START, '--token', 't'] } = {}): Promise<{ status: number | null; output: string }> {
  const result = await finish(process.execPath, ['-e', INTERRUPTER, BUNDLE, signal, String(pauseMs), ...args]);
  return JSON.parse(result.stdout);
}

/** One merge case: a run's lines, the files they are split into (one fault put into one of them), and where each fault is. */
function mergeCase(spec: { seed: number; format: string; files: number; assignment: number[]; fault: string; where: number }, at: number) {
  const run = runLines(configFrom(['--count', '6', '--seed-value', String(spec.seed), ...SMALL, '--format', spec.format, '--token', 't']));
  const files: string[][] = Array.from({ length: spec.files }, () => []);
  run.forEach((line, index) => files[spec.assignment[index]! % spec.files]!.push(line));
  const bytes = files.map((lines) => lines.map((line) => Buffer.from(`${line}\n`)));
  const target = files.reduce((most, lines, index) => (lines.length > files[most]!.length ? index : most), 0);
  const lines = bytes[target]!;
  const j = Math.floor(spec.where * (lines.length - 1));
  /** File index to the 1-based line at which the merge must stop. */
  const faults = new Map<number, number>();
  if (spec.fault === 'truncate') {
    const line = lines[j]!;
    lines.splice(j, lines.length - j, line.subarray(0, 1 + Math.floor(spec.where * (line.length - 2))));
    faults.set(target, j + 1);
  } else if (spec.fault === 'duplicate') {
    lines.splice(j + 1, 0, lines[j]!);
    faults.set(target, j + 2);
  } else if (spec.fault === 'swap' && lines.length >= 2) {
    [lines[j], lines[j + 1]] = [lines[j + 1]!, lines[j]!];
    faults.set(target, j + 2);
  } else if (spec.fault === 'byte') {
    lines[j] = Buffer.concat([lines[j]!.subarray(0, 20), Buffer.from([0xff]), lines[j]!.subarray(21)]);
    faults.set(target, j + 1);
  } else if (spec.fault === 'duplicate-elsewhere' && spec.files >= 2) {
    // The line also in another file, at its place in the run's order there.
    const other = (target + 1) % spec.files;
    const place = run.indexOf(files[target]![j]!);
    const into = files[other]!.filter((line) => run.indexOf(line) < place).length;
    bytes[other]!.splice(into, 0, lines[j]!);
    faults.set(target, j + 1).set(other, into + 1);
  }
  bytes.forEach((fileLines, index) => writeFileSync(join(WORK, `merge-${at}-${index}.jsonl`), Buffer.concat(fileLines)));
  return { run: run.map((line) => `${line}\n`).join(''), files: bytes.map((fileLines) => fileLines.map((line) => line.toString('utf8').replace(/\n$/, ''))), faults };
}

/** Asserts a merge's output is whole lines, each the next line of one of the files, and none of `faulty` from `line` on. */
function assertNothingAfter(stdout: string, files: string[][], faulty: number, line: number) {
  assert.ok(stdout === '' || stdout.endsWith('\n'), 'whole lines');
  const next = files.map(() => 0);
  for (const written of stdout.split('\n').slice(0, -1)) {
    const file = files.findIndex((lines, index) => lines[next[index]!] === written);
    assert.ok(file >= 0, 'each line written is the next line of one of the files');
    next[file]!++;
  }
  assert.ok(next[faulty]! < line, `${next[faulty]} lines of the faulty file written, its line ${line} is bad`);
}

/** The node, Deno and Bun of devDependencies, each running generate.ts itself. */
const RUNTIMES: [name: string, command: string, args: string[]][] = [
  ['node 22 (type stripping)', join(ROOT, 'node_modules/.bin/node'), ['generate.ts']],
  ['Deno', join(ROOT, 'node_modules/.bin/deno'), ['run', '--allow-all', 'generate.ts']],
  ['Bun', join(ROOT, 'node_modules/.bin/bun'), ['generate.ts']],
];

describe('command line', { concurrency: true }, () => {
  const typeCheck = finish(join(ROOT, 'node_modules/.bin/tsc'), ['--noEmit', '--project', ROOT]);
  it('type-checks: strict, and erasable syntax only, which node strips', async () => {
    const result = await typeCheck;
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });

  it('refuses every bad input with a UsageError naming the flag at fault', () => {
    for (const [what, args, flag] of BAD_INPUTS) {
      assert.throws(() => parseFlags(['--count', '1', ...args]), (error: unknown) => {
        assert.ok(error instanceof UsageError, what);
        assert.ok(!error.message.includes('\n'), `${what}: one line`);
        assert.ok(error.message.includes(flag.replace(/\n.*/s, '')), `${what}: "${error.message}" names ${flag}`);
        return true;
      });
    }
  });

  it('reads one-letter flags, plain and compound durations, negative values and --version', () => {
    const config = configFrom(['-c', '5', '-f', 'snapshot-items', '-s', '-7', '-r', '20', '-d', '.5']);
    assert.deepEqual([config.count, config.format, config.seedValue, config.rate, config.duration], [5, 'snapshot-items', -7, 20, 500]);
    assert.equal(configFrom(['--jobs', '64']).jobs, 64, 'the cap itself is accepted');
    for (const [text, ms] of [['0.5', 500], ['90s', 90_000], ['1h30m', 5_400_000], ['1m250ms', 60_250], ['2d', 172_800_000]] as const) {
      assert.equal(configFrom(['--duration', text]).duration, ms, text);
    }
    assert.equal(parseFlags(['-V']), 'version');
    assert.equal(parseFlags(['-h']), 'help');
    assert.deepEqual(parseFlags(['--merge', '-o', 'all.jsonl', 'a', 'b']), { merge: ['a', 'b'], output: 'all.jsonl' });
  });

  const badInput = generate(['--count', '1', '--max-message-bytes', '1000']);
  it('bad input: exit 2, one line on stderr, nothing on stdout', async () => {
    const result = await badInput;
    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^generate\.ts: --max-message-bytes [^\n]+\n$/);
  });

  it('--help lists every flag with its default and format, and a kcat pipeline with the token header', () => {
    const help = helpText();
    const entries = help.split(/\n(?= {2}-)/).map((entry) => entry.replace(/\s+/g, ' ').trim());
    for (const [name, spec] of Object.entries(FLAGS)) {
      const entry = entries.find((text) => new RegExp(`^(-\\w, )?--${name}\\b`).test(text));
      assert.ok(entry, `--help lists --${name}`);
      if ('default' in spec) assert.ok(entry.includes(`(default ${spec.default})`), entry);
    }
    assert.match(help, /\| kcat -P -H token=/);
  });

  const printed = FORMATS.map((format) => generate(formatArgs(format)));
  const printedByTsx = finish(machineNode, ['--import', 'tsx', 'generate.ts', ...formatArgs(FORMATS[0]!)]);
  it("prints what the library renders, the same bytes in another process, for every format and payload, also through tsx on the machine's node", async () => {
    for (const [at, format] of FORMATS.entries()) {
      const result = await printed[at]!;
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stderr, '');
      assertSameText(result.stdout, runLines(configFrom(formatArgs(format))).join('\n') + '\n', `${format.join(' ')}: the command line against the library`);
    }
    assertSameText((await printedByTsx).stdout, (await printed[0]!).stdout, 'tsx against the bundle');
  });

  const manySessions = generate(formatArgs(FORMATS[0]!, 30));
  it('session i is the same whatever --count: the sessions of a run of 4 have the same lines in a run of 30', async () => {
    const bySession = (stdout: string) => {
      const sessions = new Map<string, string[]>();
      for (const line of stdout.split('\n').filter(Boolean)) {
        const { sessionId } = readLegacy(line);
        sessions.set(sessionId, [...(sessions.get(sessionId) ?? []), line]);
      }
      return sessions;
    };
    const [inFew, inMany] = [bySession((await printed[0]!).stdout), bySession((await manySessions).stdout)];
    assert.equal(inFew.size, 4);
    assert.equal(inMany.size, 30);
    for (const [sessionId, lines] of inFew) assert.deepEqual(inMany.get(sessionId), lines);
  });

  // The shards' files as --shard writes them (the library's lines: see "prints what the library renders").
  const shardConfig = configFrom(['--count', '12', '--seed-value', '6', ...SMALL, '--key', '--headers', '--token', 't']);
  const shardFiles = [0, 1, 2].map((index) => {
    const path = join(WORK, `shard-${index}.jsonl`);
    writeFileSync(path, runLines({ ...shardConfig, shard: { index, count: 3 } }).map((line) => `${line}\n`).join(''));
    return path;
  });
  const merged = generate(['--merge', ...shardFiles]);
  it('--merge joins shard files into the unsharded run, byte for byte', async () => {
    const result = await merged;
    assert.equal(result.status, 0, result.stderr);
    assertSameText(result.stdout, runLines(shardConfig).join('\n') + '\n', 'the merged shards against the unsharded run');
  });

  const mergeRefusals = shell(`cd "$WORK"; cp shard-0.jsonl part-0-of-3.jsonl; cp shard-2.jsonl part-2-of-3.jsonl
    for args in "$WORK" "shard-0.jsonl shard-0.jsonl" "shard-0.jsonl nothing.jsonl" "part-0-of-3.jsonl part-2-of-3.jsonl"; do
      $GEN --merge $args > merge.out 2> merge.err; echo "$? $(wc -c < merge.out) $(cat merge.err)"; done`);
  it('--merge refuses a directory, a file given twice or missing before writing, and says when shards are missing by their names', async () => {
    const [directory, twice, missing, incomplete] = (await mergeRefusals).stdout.trim().split('\n');
    assert.match(directory!, /^2 0 generate\.ts: --merge reads regular files: \S+ is a directory$/);
    assert.match(twice!, /^2 0 generate\.ts: --merge was given shard-0\.jsonl and shard-0\.jsonl, which are the same file$/);
    assert.match(missing!, /^2 0 generate\.ts: --merge cannot read nothing\.jsonl: ENOENT/);
    assert.match(incomplete!, /^0 [1-9]\d* generate\.ts: warning: --merge lacks shard 1 of 3/);
  });

  // Shards of a run large enough to stop midway: the reader has 3 MB when the signal comes.
  const mergeStopped = shell(`for i in 0 1; do $GEN --count 60 --token t --start ${START} --shard $i/2 > "$WORK/big-$i.jsonl"; done`)
    .then(() => interrupted('SIGTERM', { args: ['--merge', join(WORK, 'big-0.jsonl'), join(WORK, 'big-1.jsonl')] }));
  it('--merge stops after a whole line on SIGTERM, with status 143', async () => {
    const { status, output } = await mergeStopped;
    assert.equal(status, 143);
    assert.ok(output.length > 3_000_000 && output.endsWith('\n'), 'the last line is whole');
    for (const line of output.slice(0, -1).split('\n')) JSON.parse(line);
  });

  // A run's lines split among files (each in the run's order), with one fault of a kind users meet put into one file.
  const mergeCases = fc.sample(fc.record({
    seed: fc.integer({ min: 0, max: 3 }),
    format: fc.constantFrom(...KAFKA_FORMATS),
    files: fc.integer({ min: 1, max: 4 }),
    assignment: fc.array(fc.nat(), { minLength: 1000, maxLength: 1000 }),
    fault: fc.constantFrom('none', 'truncate', 'duplicate', 'duplicate-elsewhere', 'swap', 'byte'),
    where: fc.double({ min: 0, max: 0.999, noNaN: true }),
  }), 18).map((spec, at) => mergeCase(spec, at));
  const mergedCases = shell(mergeCases.map((_, at) => `$GEN --merge "$WORK"/merge-${at}-*.jsonl > "$WORK/merge-${at}.out" 2> "$WORK/merge-${at}.err"; echo $?`).join('\n'));
  it('--merge of any split of a run either gives the run byte for byte, or exits 2 naming the first bad file and line, with nothing after it', async () => {
    const statuses = (await mergedCases).stdout.trim().split('\n');
    for (const [at, { run, files, faults }] of mergeCases.entries()) {
      const stdout = readFileSync(join(WORK, `merge-${at}.out`), 'utf8');
      const stderr = readFileSync(join(WORK, `merge-${at}.err`), 'utf8');
      if (faults.size === 0) {
        assert.equal(statuses[at], '0', stderr);
        assertSameText(stdout, run, `case ${at}: the merged files against the run`);
        continue;
      }
      assert.equal(statuses[at], '2', `case ${at}: ${[...faults.keys()]}`);
      const [, path, line] = /^generate\.ts: --merge: \S+merge-\d+-(\d+)\.jsonl line (\d+) [^\n]+\n$/.exec(stderr) ?? [];
      assert.equal(faults.get(Number(path)), Number(line), `case ${at}: ${stderr}`);
      assertNothingAfter(stdout, files, Number(path), Number(line));
    }
  });

  const headOne = shell('$GEN --count 200 | head -1 > /dev/null; echo "${PIPESTATUS[0]}"');
  it('| head -1 ends quietly with status 0', async () => {
    const result = await headOne;
    assert.equal(result.stdout, '0\n');
    assert.equal(result.stderr.replace(/^generate\.ts: warning: no --token[^\n]*\n/, ''), '');
  });

  // With | head -1 the reader takes one line (and the pipe's buffer a few more).
  const statsArgs = ['--count', '300', ...SMALL, '--token', 't', '--start', START];
  const [statsWhole, statsCut] = [generate([...statsArgs, '--stats']), shell(`$GEN ${statsArgs.join(' ')} --stats | head -1 >/dev/null`)];
  it('--stats counts what the reader took, not what was made', async () => {
    const messages = (result: Finished) => Number(/^sessions \d+ done, messages (\d+)/m.exec(result.stderr)?.[1]);
    const [whole, cut] = [messages(await statsWhole), messages(await statsCut)];
    assert.equal(whole, (await statsWhole).stdout.split('\n').length - 1, 'all it wrote, when the reader took all');
    assert.ok(cut < whole / 2, `after | head -1: ${cut} of ${whole} messages`);
  });

  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    const stopped = interrupted(signal);
    it(`${signal} ends after a whole line, with status ${status}`, async () => {
      const { status: code, output } = await stopped;
      assert.equal(code, status);
      assert.ok(output.endsWith('\n'), 'the last line is whole');
      for (const line of output.slice(0, -1).split('\n')) JSON.parse(line);
    });
  }

  // 50 ms after each read of at most 64 KiB: a 1 MiB write takes 0.8 s, past the 0.4 s that means a stall for a fast reader.
  const slowStopped = interrupted('SIGINT', { pauseMs: 50 });
  it('a slow reader (as on a busy machine) is not taken for a stalled one: SIGINT still ends after a whole line', async () => {
    const { status, output } = await slowStopped;
    assert.equal(status, 130);
    assert.ok(output.endsWith('\n'), 'the last line is whole');
  });

  // The shell sends the signal and times the exit itself, so this busy process cannot stretch the time.
  const waitingStopped = shell(['0.001', '1e-9'].map((rate) => `
    $GEN --count 2 --rate ${rate} --token t > "$WORK/rate-${rate}.out" 2> "$WORK/rate-${rate}.err" & pid=$!
    until [ -s "$WORK/rate-${rate}.out" ]; do sleep 0.01; done
    kill -INT $pid; sent=$(date +%s%N); wait $pid; status=$?
    echo "$status $(( ($(date +%s%N) - sent) / 1000000 )) $(wc -c < "$WORK/rate-${rate}.err")"`).join('\n'));
  it('Ctrl-C while --rate waits ends at once, with 130 and no timer warnings, at any rate', async () => {
    const lines = (await waitingStopped).stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    for (const line of lines) {
      const [status, ms, stderrBytes] = line.split(' ').map(Number);
      assert.equal(status, 130);
      // A run that kept waiting would take 1,000 s (--rate 0.001) or forever; 10 s holds on a machine at load 20.
      assert.ok(ms! < 10_000, `it stopped waiting, in ${ms} ms`);
      assert.equal(stderrBytes, 0, 'nothing on stderr');
    }
  });

  const writeErrors = shell([
    '$GEN --count 2 --token t > /dev/full; echo "status $?"',
    '$GEN --help > /dev/full; echo "status $?"',
  ].join('; '));
  it('a write error gets one line and status 1: disk full, also for --help', async () => {
    const result = await writeErrors;
    assert.deepEqual(result.stdout.trim().split('\n'), ['status 1', 'status 1']);
    const errors = result.stderr.trim().split('\n');
    assert.equal(errors.length, 2, result.stderr);
    for (const error of errors) assert.match(error, /^generate\.ts: cannot write to stdout/);
  });

  // A node that runs its arguments as a command, stdout discarded as node's stdio 'ignore' does it.
  const ignoring = `${process.execPath} -e 'const [command, ...args] = process.argv.slice(1);
    process.exit(require("child_process").spawnSync(command, args, { stdio: [0, "ignore", 2] }).status)'`;
  const discards = shell([
    '$GEN --count 2 --token t > /dev/null; echo "status $?"',
    '$GEN --count 2 --token t >&-; echo "status $?"',
    '$GEN --count 2 --token t 1<> /dev/null; echo "status $?"',
    `${ignoring} $GEN --count 2 --token t; echo "status $?"`,
  ].join('; '));
  it("stdout discarded runs: a closed stdout (node's read-write /dev/null) with a warning, as the same /dev/null given on purpose", async () => {
    const result = await discards;
    assert.deepEqual(result.stdout.trim().split('\n'), ['status 0', 'status 0', 'status 0', 'status 0']);
    const warnings = result.stderr.trim().split('\n');
    assert.equal(warnings.length, 3, result.stderr);
    for (const warning of warnings) assert.match(warning, /^generate\.ts: warning: stdout is \/dev\/null opened read-write, .*\(>&-\)/);
  });

  const rate = 40;
  const paced = timedRun([...SMALL, '--count', '8', '--rate', String(rate), '--token', 't']);
  it('--rate spaces messages evenly: message k reaches the reader no sooner than k/rate after the first, less 0.1 s of catching up', async () => {
    const lines = await paced;
    // Measured from the first line, so start-up time cannot satisfy it; a timer never fires early, and a
    // generator slowed by a busy machine catches up by at most 0.1 s (--help). Another 0.5 s allows for the
    // first line reaching a busy reader late; a generator that ignored --rate would deliver all in a few ms.
    const slackMs = 100 + 500;
    const first = lines[0]!.atMs;
    lines.forEach(({ atMs }, k) => assert.ok(atMs - first >= (k * 1000) / rate - slackMs, `message ${k} at ${(atMs - first).toFixed(0)} ms`));
    assert.ok(((lines.length - 1) * 1000) / rate - slackMs > 300, `enough messages (${lines.length}) that the bound binds`);
  });

  const speed = 20;
  const live = timedRun([...SMALL, '--count', '4', '--realtime', '--speed', String(speed), '--token', 't', '--start', START]);
  it("--realtime writes each snapshot when its now comes, counted from the run's start", async () => {
    const lines = await live;
    const nowMs = (line: string) => Date.parse(JSON.parse(line).now);
    const spanMs = (nowMs(lines.at(-1)!.line) - START_MS) / speed;
    assert.ok(spanMs > 1000, `the run spans ${spanMs} ms of scaled time, more than start-up takes`);
    // The run's start comes after the process's: no line may reach the reader before its scaled time from it.
    for (const { atMs, line } of lines) assert.ok(atMs >= (nowMs(line) - START_MS) / speed, `a line due at ${(nowMs(line) - START_MS) / speed} ms came at ${atMs} ms`);
  });

  // Each run's own --stats says how long it took, so a busy machine's slow start-ups cannot stretch the figure;
  // `timeout` ends a run that would wait for its next message (50 s at --rate 0.02) or never end.
  const durations = shell([
    '--duration 1s --rate 500', '--duration 1s --rate 0.02', '--duration 1s --realtime --speed 0.001',
  ].map((flags, at) => `timeout 40 $GEN ${flags} ${SMALL.join(' ')} --token t --start ${START} --stats > "$WORK/duration-${at}.out" 2> "$WORK/duration-${at}.err"; echo $?`).join('; '));
  it('--duration ends a run without --count after whole lines, also while it waits for --rate or --realtime', async () => {
    assert.deepEqual((await durations).stdout.trim().split('\n'), ['0', '0', '0']);
    for (const at of [0, 1, 2]) {
      const stderr = readFileSync(join(WORK, `duration-${at}.err`), 'utf8');
      const seconds = Number(/ in ([\d.]+) s$/m.exec(stderr)?.[1]);
      // Waiting runs would take 50 s or more; 10 s allows for a machine at load 20.
      assert.ok(seconds >= 1 && seconds < 10, `run ${at} took ${seconds} s by its own clock`);
      assert.match(stderr, /^--duration reached after 0:\d\d: \d+ sessions unfinished$/m);
      const output = readFileSync(join(WORK, `duration-${at}.out`), 'utf8');
      assert.ok(output === '' || output.endsWith('\n'), 'whole lines');
    }
    assert.ok(readFileSync(join(WORK, 'duration-0.out'), 'utf8').length > 0, 'at --rate 500, lines until the duration ended the run');
  });

  // The reader takes 100 kB, then stalls; the generator is stopped once its writes must be waiting.
  const stalled = shell(['TERM', 'INT'].map((signal) => `
    rm -f "$WORK/fifo" "$WORK/started"; mkfifo "$WORK/fifo"
    { head -c 100000 > /dev/null; touch "$WORK/started"; sleep 60; } < "$WORK/fifo" & reader=$!
    $GEN --count 100000 --token t --stats > "$WORK/fifo" 2> "$WORK/stalled-${signal}.err" & pid=$!
    until [ -e "$WORK/started" ]; do sleep 0.02; done; sleep 0.5
    kill -${signal} $pid; sent=$(date +%s%N); wait $pid; status=$?
    echo "$status $(( ($(date +%s%N) - sent) / 1000000 ))"; pkill -P $reader; kill $reader`).join('\n'));
  it('SIGTERM and SIGINT end a run within 1 s while its reader has stalled, after the summary', async () => {
    const lines = (await stalled).stdout.trim().split('\n');
    for (const [at, [signal, status]] of [['TERM', 143], ['INT', 130]].entries()) {
      const [code, ms] = lines[at]!.split(' ').map(Number);
      assert.equal(code, status);
      // Within 1 s on an idle machine; a run that waited for its reader would take 60 s.
      assert.ok(ms! < 5000, `SIG${signal} ended the run in ${ms} ms`);
      assert.match(readFileSync(join(WORK, `stalled-${signal}.err`), 'utf8'), new RegExp(`^cut short by SIG${signal}.*sessions unfinished`, 'm'));
    }
  });

  const stderrFaults = shell([
    `$GEN --count 30 --token t --start ${START} --verbose --stats --progress 2>/dev/full | cksum; echo "status \${PIPESTATUS[0]}"`,
    `$GEN --count 30 --token t --start ${START} | cksum`,
    `$GEN --count 30 --token t --start ${START} --verbose 2>&1 > "$WORK/verbose.out" | head -1 > /dev/null; echo "status \${PIPESTATUS[0]}"; cksum < "$WORK/verbose.out"`,
    '$GEN --count x 2>/dev/full; echo "status $?"',
  ].join('\n'));
  it('stderr that fails (full, or its reader gone) changes neither stdout nor the exit status', async () => {
    const [full, fullStatus, expected, headStatus, throughHead, badStatus] = (await stderrFaults).stdout.trim().split('\n');
    assert.deepEqual([fullStatus, headStatus, badStatus], ['status 0', 'status 0', 'status 2']);
    assert.equal(full, expected);
    assert.equal(throughHead, expected);
  });

  const written = shell(`cd "$WORK" && $GEN -c 30 --token t --start ${START} -o out.jsonl; echo "status $?"; cksum < out.jsonl
    $GEN --count 30 --token t --start ${START} | cksum
    $GEN --count 100000 --rate 100 --token t -o cut.jsonl & pid=$!
    until ls -A | grep -q '^[.]cut[.]jsonl[.]'; do sleep 0.02; done; kill -INT $pid; wait $pid; echo "status $?"; ls -A | grep -c 'cut[.]jsonl' || true
    $GEN -c 1 -o missing/out.jsonl; echo "status $?"`);
  it('--output writes the run to a file only once it is whole: all of it, or nothing and no leftovers', async () => {
    const [status, file, expected, cutStatus, leftovers, missingStatus] = (await written).stdout.trim().split('\n');
    assert.deepEqual([status, cutStatus, leftovers, missingStatus], ['status 0', 'status 130', '0', 'status 2']);
    assert.equal(file, expected);
    assert.match((await written).stderr, /cut\.jsonl was not written/);
    assert.match((await written).stderr, /--output cannot write missing\/out\.jsonl/);
  });

  // A named pipe and a symbolic link stand for /dev/null and /dev/stdout, which a test must not risk replacing.
  const inPlace = shell(`mkdir "$WORK/in-place" && cd "$WORK/in-place" && mkfifo out.fifo && touch target.jsonl && ln -s target.jsonl link.jsonl
    timeout 20 cat out.fifo > read.jsonl & reader=$! # bounded: a pipe replaced by a file never gets a writer
    $GEN -c 30 --token t --start ${START} -o out.fifo; echo "status $?"; wait $reader; cksum < read.jsonl
    $GEN -c 30 --token t --start ${START} -o link.jsonl; echo "status $?"; cksum < target.jsonl
    $GEN -c 30 --token t --start ${START} | cksum
    mkfifo early.fifo && (head -c 100 early.fifo > /dev/null &) && $GEN -c 30 --token t -o early.fifo 2> early.err; echo "status $? stderr $(wc -c < early.err)"
    echo earlier > appended.jsonl && $GEN -c 30 --token t --start ${START} -o /dev/stdout >> appended.jsonl; echo "status $?"
    head -n 1 appended.jsonl; tail -n +2 appended.jsonl | cksum
    stat -c %F out.fifo link.jsonl; ls -A | grep -c '[.]tmp$' || true`);
  it('--output writes a named pipe, a device or /dev/stdout in place and keeps a symbolic link, never renaming a file over them', async () => {
    const [fifoStatus, fromFifo, linkStatus, throughLink, expected, earlyStatus, stdoutStatus, earlier, appended, fifoKind, linkKind, leftovers] =
      (await inPlace).stdout.trim().split('\n');
    assert.deepEqual([fifoStatus, linkStatus, stdoutStatus, fifoKind, linkKind, leftovers], ['status 0', 'status 0', 'status 0', 'fifo', 'symbolic link', '0']);
    assert.equal(earlyStatus, 'status 0 stderr 0', "a pipe's reader that stops early ends the run quietly, as | head does on stdout");
    assert.equal(fromFifo, expected, 'the reader of the pipe got the whole run');
    assert.equal(throughLink, expected, "the link's target holds the whole run");
    assert.equal(earlier, 'earlier', '-o /dev/stdout >> FILE appends, as stdout does, rather than replacing FILE');
    assert.equal(appended, expected, 'the run follows what FILE held');
  });

  const versions = shell('$GEN --version; $GEN -V; $GEN -h | cksum; $GEN --help | cksum');
  it('--version (-V) prints the version, the same as package.json; -h is --help', async () => {
    const [version, short, shortHelp, help] = (await versions).stdout.trim().split('\n');
    assert.equal(version, `generate.ts ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}`);
    assert.equal(short, version);
    assert.equal(shortHelp, help);
  });

  // Flag sets of every format (as the properties draw them), made on the main thread alone, on 1 worker, and on 1 and 2 workers
  // with the main thread making a job of its own.
  const JOB_COUNTS = [0, 1, 2, 3];
  const jobArgs = fc.sample(anyFlags, 6).map((flags, at) => ['--count', '5', '--start', START, ...flags, ...(at % 2 ? ['--order', 'session'] : [])]);
  const byJobs = shell(jobArgs.map((args) => JOB_COUNTS.map((jobs) => `$GEN ${args.map((arg) => `'${arg.replace(/'/g, "'\\''")}'`).join(' ')} --jobs ${jobs} 2>/dev/null | cksum`).join('; ')).join('\n'));
  it('--jobs 1, 2 and 3 write the very bytes --jobs 0 does, for flag sets of every format and both orders', async () => {
    const sums = (await byJobs).stdout.trim().split('\n');
    assert.equal(sums.length, JOB_COUNTS.length * jobArgs.length);
    for (let at = 0; at < jobArgs.length; at++) {
      const [inline, ...onWorkers] = sums.slice(JOB_COUNTS.length * at, JOB_COUNTS.length * (at + 1));
      for (const sum of onWorkers) assert.equal(sum, inline, jobArgs[at]!.join(' '));
    }
  });

  // The README's steps for copying generate.ts into another project, run in an empty folder: npm i (from npm's cache,
  // which npm ci filled), then the file under npx tsx on the machine's node, node 22, Deno and Bun, with no warning.
  const versionOf = (name: string) => JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  const copied = shell(`set -e; export PATH="${dirname(machineNode)}:/usr/bin:/bin"; mkdir "$WORK/copy"; cd "$WORK/copy"
    npm init -y > /dev/null; npm pkg set type=module
    npm i --prefer-offline --no-audit --no-fund --loglevel=error @faker-js/faker@${versionOf('@faker-js/faker')} pure-rand@${versionOf('pure-rand')} tsx@${versionOf('tsx')} > /dev/null
    cp "${join(ROOT, 'generate.ts')}" .
    npx tsx ./generate.ts --count 2 --token t --start ${START} > tsx.out
    npx tsx ./generate.ts --count 2 --token t --start ${START} --format snapshot-items --no-compress-events --jobs 2 > tsx-workers.out
    "${join(ROOT, 'node_modules/.bin/node')}" generate.ts --count 2 --token t --start ${START} > node22.out
    "${join(ROOT, 'node_modules/.bin/deno')}" run -A generate.ts --count 2 --token t --start ${START} > deno.out
    "${join(ROOT, 'node_modules/.bin/bun')}" generate.ts --count 2 --token t --start ${START} > bun.out
    cksum < tsx.out; cksum < node22.out; cksum < deno.out; cksum < bun.out`);
  const inRepository = generate(['--count', '2', '--token', 't', '--start', START]);
  const itemsInRepository = generate(['--count', '2', '--token', 't', '--start', START, '--format', 'snapshot-items', '--no-compress-events', '--jobs', '0']);
  it('copied into an empty project as the README says, runs under npx tsx (also on workers), node 22, Deno and Bun, without a warning', async () => {
    const result = await copied;
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '', 'no warnings');
    const expected = createHash('sha256').update((await inRepository).stdout).digest('hex');
    const sums = result.stdout.trim().split('\n');
    assert.equal(sums.length, 4);
    assert.equal(new Set(sums).size, 1, 'the same bytes under every runtime');
    assert.equal(createHash('sha256').update(readFileSync(join(WORK, 'copy', 'tsx.out'))).digest('hex'), expected, 'the same bytes as in this repository');
    // The machine's node through tsx, with worker threads, which load the file through tsx too.
    assertSameText(readFileSync(join(WORK, 'copy', 'tsx-workers.out'), 'utf8'), (await itemsInRepository).stdout, 'snapshot-items on 2 workers under npx tsx');
  });

  // Ctrl-C as a terminal sends it: to the process group, tsx's own process and generate.ts's alike. tsx kills a
  // child that does not answer within 30-60 ms; the rrweb formats are made on a worker, so the main thread answers.
  // A machine far busier than two cores can deny any process that much: this runs after the copy story's npm i,
  // with one worker, so that it does not meet the suite's own load.
  const underTsx = copied.then(() => shell(['--payload rrweb', '--format snapshot-items'].map((flags, at) => `
    export PATH="${dirname(machineNode)}:$PATH"
    setsid npx tsx ./generate.ts ${flags} --count 1000 --jobs 1 --token t --stats > "$WORK/tsx-${at}.out" 2> "$WORK/tsx-${at}.err" & group=$!
    until [ "$(stat -c %s "$WORK/tsx-${at}.out")" -gt 300000 ]; do sleep 0.05; done
    kill -INT -- -$group; wait $group; echo $?`).join('\n')));
  it('Ctrl-C under npx tsx keeps the summary and ends on a whole line, while the rrweb formats are being made', async () => {
    assert.deepEqual((await underTsx).stdout.trim().split('\n'), ['130', '130']);
    for (const at of [0, 1]) {
      assert.match(readFileSync(join(WORK, `tsx-${at}.err`), 'utf8'), /^cut short by SIGINT \(Ctrl-C\)/m);
      const output = readFileSync(join(WORK, `tsx-${at}.out`), 'utf8');
      assert.ok(output.endsWith('\n'), 'the last line is whole');
      for (const line of output.slice(0, -1).split('\n')) JSON.parse(line);
    }
  });

  // Where zlib is involved (every rrweb format but snapshot-items with --no-compress-events), Deno's
  // and Bun's zlib compress the same text to other bytes than node's, and sizes are met by compressing.
  const runtimeArgs = (format: string[]) => ['--count', '3', '--seed-value', '11', '--start', START, ...SMALL, ...format, '--key', '--headers', '--token', 't'];
  const withoutZlib = [['--format', 'snapshot'], ['--format', 'snapshot-items', '--no-compress-events']];
  const elsewhere = RUNTIMES.map(([, command, args]) => withoutZlib.map((format) => finish(command, [...args, ...runtimeArgs(format)])));
  it('runs under node 22, Deno and Bun, byte for byte where no zlib is involved: random payloads, and the whole rrweb model', async () => {
    for (const [at, [name]] of RUNTIMES.entries()) {
      for (const [which, format] of withoutZlib.entries()) {
        const result = await elsewhere[at]![which]!;
        assert.equal(result.status, 0, `${name}: ${result.stderr}`);
        assertSameText(result.stdout, runLines(configFrom(runtimeArgs(format))).join('\n') + '\n', `${name}, ${format.join(' ')}`);
      }
    }
  });
});

// --- Kafka ------------------------------------------------------------------------
//
// --kafka against a real Kafka-protocol broker: librdkafka's mock cluster as
// bench/kafka-mock.c starts it, compiled here with cc against Debian's
// librdkafka-dev, and read back with kcat. A machine without them skips
// these tests and says so on stderr; .ci/run installs both and sets
// GENERATE_KAFKA_TESTS=required, which makes their absence a failure. Like
// the command-line checks, every process starts as the file loads. The
// generator runs as a bundle inside node_modules, so it finds the client.

const KAFKA_WORK = mkdtempSync(join(ROOT, 'node_modules', '.generate-test-'));
process.on('exit', () => rmSync(KAFKA_WORK, { recursive: true, force: true }));
const KAFKA_BUNDLE = join(KAFKA_WORK, 'generate.mjs');
copyFileSync(BUNDLE, KAFKA_BUNDLE);
const KAFKA_MOCK = join(KAFKA_WORK, 'kafka-mock');
const KAFKA_PARTITIONS = 16;
/** Why the Kafka tests cannot run on this machine, or undefined once the broker is built and kcat is there. */
const kafkaMissing = shell(`cc -O2 -o "${KAFKA_MOCK}" bench/kafka-mock.c -lrdkafka 2>&1 | head -1 && test -x "${KAFKA_MOCK}" && command -v kcat >/dev/null`)
  .then(({ status, stdout }) => status === 0 ? undefined :
    `no Kafka-protocol broker here: cc could not build bench/kafka-mock.c, or kcat is missing (${stdout.trim() || 'kcat not found'}); ` +
      'apt-get install librdkafka-dev kcat, as .ci/run does, to run them');
let kafkaSkipSaid = false;

/** Skips a Kafka test where no broker can run, loudly, or fails it where .ci/run requires one. */
async function kafkaAvailable(t: TestContext): Promise<boolean> {
  const missing = await kafkaMissing;
  if (missing === undefined) return true;
  assert.notEqual(process.env.GENERATE_KAFKA_TESTS, 'required', missing);
  if (!kafkaSkipSaid) process.stderr.write(`\n*** KAFKA TESTS SKIPPED: ${missing} ***\n\n`);
  kafkaSkipSaid = true;
  t.skip('no Kafka-protocol broker on this machine: apt-get install librdkafka-dev kcat');
  return false;
}

interface Broker {
  address: string;
  stop: (signal?: NodeJS.Signals) => void;
}

let brokers = 0;
/** Starts kafka-mock (its options, then topics) once the build is there, resolving when it listens; undefined where none can run. */
async function startBroker(options: string[], topics: string[]): Promise<Broker | undefined> {
  if ((await kafkaMissing) !== undefined) return undefined;
  const addressFile = join(KAFKA_WORK, `broker-${++brokers}.address`);
  const child = spawn(KAFKA_MOCK, ['-p', String(KAFKA_PARTITIONS), ...options, addressFile, ...topics], { stdio: ['ignore', 'ignore', 'inherit'] });
  child.unref(); // the test process may exit before its brokers, which then end with it
  process.on('exit', () => child.kill());
  for (const startedMs = performance.now(); !existsSync(addressFile); await new Promise((resolve) => setTimeout(resolve, 20))) {
    assert.ok(child.exitCode === null && performance.now() - startedMs < 10_000, 'kafka-mock started');
  }
  return { address: readFileSync(addressFile, 'utf8').trim(), stop: (signal = 'SIGTERM') => child.kill(signal) };
}

/** A message as kcat reads it back. */
interface Consumed {
  partition: number;
  offset: number;
  key: string;
  headers: [string, string][];
  value: string;
}

/** A message's value in short, for assertions that print it: its uuid and a hash of every byte. */
const messageId = (value: string) => `${/"uuid": ?"([^"]+)"/.exec(value)?.[1]} ${createHash('sha256').update(value).digest('hex')}`;

/** Every message of the topic, as kcat reads them (-J: one JSON object each), in partition and offset order. */
async function consume(address: string, topic: string): Promise<Consumed[]> {
  const result = await bounded('kcat', ['-C', '-e', '-q', '-J', '-b', address, '-t', topic, '-o', 'beginning']);
  assert.equal(result.status, 0, result.stderr);
  const messages = result.stdout.split('\n').filter(Boolean).map((text): Consumed => {
    const { partition, offset, key, headers = [], payload } = JSON.parse(text);
    const pairs: [string, string][] = [];
    for (let at = 0; at < headers.length; at += 2) pairs.push([headers[at], headers[at + 1]]);
    return { partition, offset, key, headers: pairs, value: payload };
  });
  return messages.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** A run that outlasts this has hung: timeout(1) ends it (status 124, or 137 if a stop does not stop it), so no test waits forever. */
const HUNG_SECONDS = 90;
const bounded = (command: string, args: string[]) => finish('timeout', ['-k', '5', String(HUNG_SECONDS), command, ...args]);
/** A node the Kafka client runs on (22 or later): this one, or the project's own when the tests run under an older node. */
const KAFKA_NODE = Number(process.versions.node.split('.')[0]) >= 22 ? process.execPath : join(ROOT, 'node_modules/.bin/node');
/** The generator with `args`, run from inside node_modules so --kafka finds its client. */
const produce = (args: string[]) => bounded(KAFKA_NODE, [KAFKA_BUNDLE, ...args]);
/** How long a run may take to notice its broker is gone: retries and backoff, on a busy machine. */
const FAULT_BOUND_MS = 30_000;
/** Retries kept short, so a fault ends a run in about a second. */
const QUICK_RETRIES = ['--kafka-option', 'retries=2', '--kafka-option', 'retry.backoff.ms=200'];
/** Runs stopped midway go this slowly (messages a second), so they are still running whenever the stop comes. */
const SLOW_RATE = 20;
/** The headers capture-rs sets on today's topic, in its order; the legacy topic's Python capture set the first two. */
const CAPTURE_RS_HEADERS = ['token', 'distinct_id', 'session_id', 'timestamp', 'event', 'uuid', 'now'];

/**
 * Each Kafka format: flags, delivery flags, and shards. The random payload's
 * run goes through batches and a buffer a few messages large (backpressure
 * at nearly every message), made by two shards at once into one topic, as
 * two machines would.
 */
const KAFKA_CASES = [
  {
    topic: 'legacy-random', flags: formatArgs(FORMATS[0]!, 12), shards: 2,
    delivery: ['--kafka-option', 'batch.size=8000', '--kafka-option', 'buffer.memory=20000', '--kafka-option', 'linger.ms=0'],
  },
  { topic: 'legacy-rrweb', flags: formatArgs(FORMATS[1]!, 12), delivery: [] as string[], shards: 1 },
  { topic: 'items', flags: formatArgs(FORMATS[2]!, 12), delivery: [], shards: 1 },
];

/** A message's key and short value for each session, sessions in key order: what order a session's messages keep. */
function bySession(messages: { key: string | undefined; value: string }[]): [string, string[]][] {
  const sessions = new Map<string, string[]>();
  for (const { key, value } of messages) sessions.set(key!, [...(sessions.get(key!) ?? []), messageId(value)]);
  return [...sessions].sort(([a], [b]) => (a < b ? -1 : 1));
}

describe('--kafka', { concurrency: true }, () => {
  // The client takes most of a second to load: after every process here has started, not before.
  const client = import('@platformatic/kafka');
  const shared = startBroker(['-u', 'missing'], [...KAFKA_CASES.map(({ topic }) => topic), 'stopped', 'untouched']);
  const delivered = KAFKA_CASES.map(async ({ topic, flags, delivery, shards }) => {
    const broker = await shared;
    if (!broker) return undefined;
    const shardFlags = (index: number) => (shards === 1 ? [] : ['--shard', `${index}/${shards}`]);
    const runs = await Promise.all(Array.from({ length: shards }, (_, index) =>
      produce([...flags, ...shardFlags(index), '--kafka', broker.address, '--topic', topic, '--stats', ...delivery])));
    const expectedConfig = configFrom([...flags, '--key', '--headers']);
    const expected = runLines(expectedConfig).map((line) => splitLine(expectedConfig, line));
    return { topic, runs, shards, expected, consumed: await consume(broker.address, topic) };
  });

  it('every message made is acknowledged and read back: as many, keys and values byte for byte as the stdout run of the same flags', async (t) => {
    if (!(await kafkaAvailable(t))) return;
    for (const produced of delivered) {
      const { topic, runs, expected, consumed } = (await produced)!;
      let acknowledged = 0;
      for (const run of runs) {
        assert.equal(run.status, 0, `${topic}: ${run.stderr}`);
        assert.match(run.stderr, /^acknowledged by Kafka topic \S+ \(bytes of values\): produce latency p50 [\d.]+ ms, p99 [\d.]+ ms$/m);
        acknowledged += Number(/^sessions \d+ done, messages (\d+)/m.exec(run.stderr)?.[1]);
      }
      assert.equal(acknowledged, expected.length, `${topic}: --stats counts every message acknowledged`);
      assert.equal(consumed.length, expected.length, `${topic}: messages read back`);
      const pairs = (messages: { key: string | undefined; value: string }[]) => messages.map(({ key, value }) => `${key} ${messageId(value)}`).sort();
      assert.deepEqual(pairs(consumed), pairs(expected), `${topic}: keys and values (their uuid and SHA-256)`);
    }
  });

  it("every message carries the headers --headers prints, matching its body: capture-rs's seven on today's topic", async (t) => {
    if (!(await kafkaAvailable(t))) return;
    for (const produced of delivered) {
      const { topic, expected, consumed } = (await produced)!;
      const headersOf = new Map(expected.map(({ value, headers }) => [value, [...headers!]]));
      for (const message of consumed) assert.deepEqual(message.headers, headersOf.get(message.value), `${topic}: headers`);
      const names = topic === 'items' ? CAPTURE_RS_HEADERS : CAPTURE_RS_HEADERS.slice(0, 2);
      for (const message of consumed) assert.deepEqual(message.headers.map(([name]) => name), names, `${topic}: header names`);
    }
  });

  it("each session's messages go to its key's partition, by Kafka's murmur2, in the order of the stdout run (each session's, from shards)", async (t) => {
    if (!(await kafkaAvailable(t))) return;
    for (const produced of delivered) {
      const { topic, shards, expected, consumed } = (await produced)!;
      const { murmur2 } = await client;
      const partitionOfKey = (key: string) => (murmur2(Buffer.from(key)) & 0x7fffffff) % KAFKA_PARTITIONS;
      for (let partition = 0; partition < KAFKA_PARTITIONS; partition++) {
        const inPartition = consumed.filter((message) => message.partition === partition);
        for (const message of inPartition) assert.equal(partitionOfKey(message.key), partition, `${topic}: key ${message.key}`);
        const inOrder = expected.filter(({ key }) => partitionOfKey(key!) === partition);
        if (shards === 1) assert.deepEqual(inPartition.map(({ value }) => messageId(value)), inOrder.map(({ value }) => messageId(value)), `${topic}: partition ${partition} in order`);
        else assert.deepEqual(bySession(inPartition), bySession(inOrder), `${topic}: partition ${partition}, each session in order`);
      }
      assert.ok(new Set(consumed.map(({ partition }) => partition)).size > 3, `${topic}: spread over partitions`);
    }
  });

  const downAtStart = produce([...formatArgs(FORMATS[2]!, 3), '--kafka', '127.0.0.1:1', ...QUICK_RETRIES]);
  it('a broker down at start: one line naming it and why, status 1, nothing produced', async () => {
    const result = await downAtStart;
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /^generate\.ts: cannot produce to Kafka topic session_recording_snapshot_item_events at 127\.0\.0\.1:1: [^\n]*ECONNREFUSED[^\n]*; nothing was sent\n$/);
  });

  const missingTopic = shared.then((broker) => broker && produce([...formatArgs(FORMATS[2]!, 3), '--kafka', broker.address, '--topic', 'missing', ...QUICK_RETRIES]));
  it('a topic the broker does not have: one line naming it, status 1, nothing produced', async (t) => {
    if (!(await kafkaAvailable(t))) return;
    const result = (await missingTopic)!;
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /^generate\.ts: cannot produce to Kafka topic missing at \S+: [^\n]*Unknown topic missing[^\n]*allow\.auto\.create\.topics=true\)?; nothing was sent\n$/);
  });

  // The mock checks no size itself: it answers every produce request with MESSAGE_TOO_LARGE, as a broker with a lower limit would.
  const refused = startBroker(['-r', '10:100000'], ['refused']).then((broker) => broker && produce([...formatArgs(FORMATS[2]!, 3), '--kafka', broker.address, '--topic', 'refused']));
  it("a broker refusing messages as too large: one line with how many were not delivered and the broker's reason, status 1", async (t) => {
    if (!(await kafkaAvailable(t))) return;
    const result = (await refused)!;
    assert.equal(result.status, 1, result.stderr);
    const [, lost, made] = /^generate\.ts: (\d+) of (\d+) messages not delivered to Kafka topic refused: MESSAGE_TOO_LARGE[^\n]*\n$/.exec(result.stderr) ?? [];
    assert.ok(Number(made) >= 1 && lost === made, result.stderr);
  });

  // Stopped (SIGKILL) once kcat sees the run's first message, so some were acknowledged and more are coming.
  const stoppedMidRun = startBroker([], ['stopping']).then(async (broker) => {
    if (!broker) return undefined;
    const run = produce([...formatArgs(FORMATS[2]!, 100), '--rate', String(SLOW_RATE), '--kafka', broker.address, '--topic', 'stopping', ...QUICK_RETRIES]);
    await shell(`timeout ${HUNG_SECONDS} kcat -C -q -c 1 -o beginning -b ${broker.address} -t stopping > /dev/null`);
    broker.stop('SIGKILL');
    const startedMs = performance.now();
    return { ...(await run), ms: performance.now() - startedMs };
  });
  it('a broker stopped mid-run: one line with how many of those made were not delivered and why, status 1, never 0', async (t) => {
    if (!(await kafkaAvailable(t))) return;
    const result = (await stoppedMidRun)!;
    assert.equal(result.status, 1, result.stderr);
    const [, lost, made] = /^generate\.ts: (\d+) of (\d+) messages not delivered to Kafka topic stopping: [^\n]+\n$/.exec(result.stderr) ?? [];
    assert.ok(Number(lost) >= 1 && Number(lost) <= Number(made), result.stderr);
    assert.ok(result.ms < FAULT_BOUND_MS, `ended ${result.ms.toFixed(0)} ms after the broker stopped`);
  });

  const interruptedRun = shared.then(async (broker) => {
    if (!broker) return undefined;
    const result = await finish('bash', ['-c', `timeout -k 5 ${HUNG_SECONDS} "$NODE" "$BUNDLE" ${formatArgs(FORMATS[2]!, 100).join(' ')} --rate ${SLOW_RATE} --kafka ${broker.address} --topic stopped & pid=$!
      timeout ${HUNG_SECONDS} kcat -C -q -c 1 -o beginning -b ${broker.address} -t stopped > /dev/null; kill -TERM $pid; wait $pid; echo $?`], { NODE: KAFKA_NODE, BUNDLE: KAFKA_BUNDLE });
    return { ...result, consumed: await consume(broker.address, 'stopped') };
  });
  it('SIGTERM mid-run: what was made is flushed and acknowledged, said in one line, status 143', async (t) => {
    if (!(await kafkaAvailable(t))) return;
    const result = (await interruptedRun)!;
    assert.equal(result.stdout, '143\n', result.stderr);
    const [, made] = /^generate\.ts: stopped after (\d+) messages, every one acknowledged by Kafka\n$/.exec(result.stderr) ?? [];
    assert.ok(Number(made) >= 1, result.stderr);
    assert.equal(result.consumed.length, Number(made), 'the topic holds every message acknowledged');
  });

  const badOption = shared.then((broker) => broker && produce([...formatArgs(FORMATS[2]!, 3), '--kafka', broker.address, '--topic', 'untouched', '--kafka-option', 'acks=2']));
  it('bad input with --kafka: one line, status 2, nothing produced', async (t) => {
    if (!(await kafkaAvailable(t))) return;
    const result = (await badOption)!;
    assert.equal(result.status, 2);
    assert.equal(result.stderr, "generate.ts: --kafka-option acks accepts 0, 1 or all, got '2'\n");
    assert.deepEqual(await consume((await shared)!.address, 'untouched'), []);
  });

  const withoutClient = generate(['--count', '1', '--token', 't', '--kafka', '127.0.0.1:1']);
  it('without its client package (a copy of the file alone): one line naming it, status 2', async () => {
    const result = await withoutClient;
    assert.equal(result.status, 2);
    assert.match(result.stderr, /^generate\.ts: --kafka needs [^\n]*@platformatic\/kafka[^\n]*\n$/);
  });

  it("a message at the limit fits a broker's max.message.bytes in a batch of its own, as the client encodes it", async () => {
    const { createRecordsBatch } = await client;
    const limit = 60_000;
    for (const args of [['--token', 'phc_t'], ['--format', 'snapshot-items', '--token', 'phc_t'], [`--token=phc_${'x'.repeat(3000)}`]]) {
      const config = configFrom(['--count', '2', '--max-message-bytes', String(limit), ...args, '--key', '--headers']);
      let largest = 0;
      for (const line of runLines(config)) {
        const { headers, key, value } = splitLine(config, line);
        const record = { key: Buffer.from(key!), value: Buffer.from(value), headers: new Map([...headers!].map(([name, text]) => [Buffer.from(name), Buffer.from(text)])), topic: 't' };
        largest = Math.max(largest, createRecordsBatch([record]).length);
      }
      assert.ok(largest <= limit && largest > limit - 2000, `${args.join(' ')}: the largest batch takes ${largest} bytes of ${limit}`);
    }
  });
});

// --- vegeta -----------------------------------------------------------------------

describe('--format vegeta', () => {
  it('posts, as vegeta would, gzip bodies of posthog-js $snapshot batches a server can read', async () => {
    const received: { url: string; batch: any[] }[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      // As capture answers: 400 for a body that is not gzip of a JSON batch, or not posted as one.
      request.on('end', () => {
        try {
          assert.equal(request.method, 'POST');
          assert.match(request.headers['content-type'] ?? '', /^(text\/plain|application\/json)/);
          received.push({ url: request.url!, batch: JSON.parse(gunzipSync(Buffer.concat(chunks)).toString()) });
          response.end('{"status":1}');
        } catch (error) {
          response.statusCode = 400;
          response.end(String(error));
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const config = configFrom([...SMALL, '--format', 'vegeta', '--count', '2', '--token', 'phc_t', '--capture-url', `http://127.0.0.1:${port}/s/?compression=gzip-js`]);
      const targets = runLines(config).map((line) => JSON.parse(line));
      for (const target of targets) {
        assert.deepEqual(Object.keys(target), ['method', 'url', 'body', 'header']);
        const headers = Object.fromEntries(Object.entries(target.header as Record<string, string[]>).map(([name, values]) => [name, values.join(', ')]));
        const response = await fetch(target.url, { method: target.method, headers, body: Buffer.from(target.body, 'base64') });
        assert.equal(response.status, 200, await response.text());
      }
      assert.equal(received.length, targets.length);
      for (const { url, batch } of received) {
        assert.match(url, /^\/s\/\?compression=gzip-js&_=\d{13}&ver=\d+\.\d+\.\d+$/);
        assert.equal(batch.length, 1);
        const [{ uuid, event, properties }] = batch;
        assert.match(uuid, UUID_V7);
        assert.equal(event, '$snapshot');
        assert.deepEqual(Object.keys(properties), ['$snapshot_bytes', '$snapshot_data', '$session_id', '$window_id', '$lib', '$lib_version', 'token', 'distinct_id']);
        assert.equal(properties.token, 'phc_t');
        assert.equal(properties.$snapshot_bytes, JSON.stringify(properties.$snapshot_data).length);
      }
    } finally {
      server.close();
    }
  });
});
