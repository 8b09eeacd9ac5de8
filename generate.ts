#!/usr/bin/env -S npx tsx
/**
 * generate.ts: synthetic session-recording traffic for benchmarking ingestion.
 *
 * A session recording is what rrweb, running in a visitor's browser, captures
 * of one visit: everything under one `$session_id`. A session can span several
 * browser windows (tabs), each with its own `$window_id`. rrweb sends the
 * recording as a series of snapshots:
 *
 * - a full snapshot is the whole page: every DOM node, its attributes and text,
 *   and assets such as images inlined as base64. rrweb takes one when a page
 *   loads, so every recording (and every window) starts with one, and later
 *   page loads add more among the incrementals;
 * - an incremental snapshot is a batch of changes since: DOM mutations, mouse
 *   moves, clicks, scrolls, input.
 *
 * PostHog's capture compresses each batch (gzip, then base64) and, if it is
 * large, splits the text into chunks that share one `chunk_id`, one Kafka
 * message per chunk. Production figures behind the defaults, per session: on
 * average 2 full snapshots (standard deviation 4) of 185 kB (sd 160 kB), and
 * 40 incremental snapshots (sd 214) of 14 kB (sd 50 kB). Counts and sizes are
 * modelled as log-normal with that mean and standard deviation.
 *
 * This script prints those Kafka message values, one JSON document per line, on
 * stdout, for piping into kcat or kafka-console-producer:
 *
 *   npx tsx ./generate.ts --count 100 | kcat -P -b localhost:9092 -t session_recording_events
 *
 * It rebuilds PostHog's `generate_session_recordings_messages.py` and keeps the
 * promises that script broke: counts and sizes have the mean and standard
 * deviation the flags ask for (it truncated with int()); every session starts
 * with a full snapshot; each snapshot's size is drawn on its own; full
 * snapshots fall among the incrementals; all chunks of a snapshot share one
 * `chunk_id`; properties carry their `$` names. Session `i` is generated from a
 * random stream derived from (`--seed-value`, `i`) alone, so the same flags and
 * `--start` give the same bytes, and memory stays flat however many sessions
 * are asked for.
 *
 * The data flows through the sections below in order: parse flags → sample a
 * session → plan its snapshots → encode payloads → chunk → emit lines. Each
 * piece is exported so it can be imported and tested; running this file as a
 * script calls `main`. `--help` documents every flag.
 */

import { createCipheriv, createHash, type Cipher } from 'node:crypto';
import { realpathSync, write as writeToFd } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { faker } from '@faker-js/faker/locale/en';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

// ---------------------------------------------------------------------------
// Parse flags: the command line, its validation and `--help`. Everything the
// run will do is decided here; bad input stops before a byte reaches stdout.
// ---------------------------------------------------------------------------

/** Mean and standard deviation of a log-normal quantity, as the flags give them. */
export interface Distribution {
  mean: number;
  standardDeviation: number;
}

/** Everything a run needs, parsed and checked. */
export interface Config {
  count: number;
  fullSnapshotCount: Distribution;
  fullSnapshotSize: Distribution;
  incrementalSnapshotCount: Distribution;
  incrementalSnapshotSize: Distribution;
  seed: number;
  verbose: boolean;
  teamId: number | null;
  token: string | null;
  /** Milliseconds since the epoch at which session 0 starts. */
  startMs: number;
  chunkSize: number;
  maxMessageBytes: number;
  key: boolean;
}

/** Bad command-line input: main prints the message as one line and exits 2. */
export class UsageError extends Error {}

/** A value parser: turns a flag's text into a value or throws UsageError. */
type Parse<T> = (text: string, flag: string) => T;

const NUMBER = /^\+?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A non-negative decimal number (scientific notation allowed) of at least `min`. */
const numberAtLeast = (min: number, what = `a number >= ${min}`): Parse<number> => (text, flag) => {
  const value = Number(text);
  if (!NUMBER.test(text) || !Number.isFinite(value) || value < min) {
    throw new UsageError(`--${flag} accepts ${what}, got '${text}'`);
  }
  return value;
};

/** A whole number of at least `min`, exactly representable. */
const wholeNumberAtLeast = (min: number): Parse<number> => (text, flag) => {
  const value = numberAtLeast(min, `a whole number >= ${min}`)(text, flag);
  if (!Number.isSafeInteger(value)) throw new UsageError(`--${flag} accepts a whole number >= ${min}, got '${text}'`);
  return value;
};

const anyWholeNumber: Parse<number> = (text, flag) => {
  const value = Number(text);
  if (!/^[+-]?\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw new UsageError(`--${flag} accepts a whole number, got '${text}'`);
  }
  return value;
};

/** ISO-8601 date or date-time; one without a zone is taken as UTC so runs agree across machines. */
const ISO_TIME = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/i;
const isoTime: Parse<number> = (text, flag) => {
  const [, date = '', clock = '00:00', zone = 'Z'] = ISO_TIME.exec(text) ?? [];
  const ms = Date.parse(`${date}T${clock}${zone}`);
  const midnight = Date.parse(`${date}T00:00:00Z`);
  // Date.parse rolls 2024-02-31 over into March; a real date names the day it parses to.
  const realDate = Number.isFinite(midnight) && new Date(midnight).toISOString().startsWith(date);
  // Four-digit years keep every timestamp the same width in the output.
  if (!realDate || !Number.isFinite(ms) || ms < 0 || ms >= Date.UTC(9999, 0, 1)) {
    throw new UsageError(`--${flag} accepts an ISO-8601 UTC time such as 2024-05-01T12:00:00Z, got '${text}'`);
  }
  return ms;
};

interface FlagSpec {
  /** Default shown in --help; absent means "not set". */
  default?: string;
  help: string;
  /** Absent for boolean switches. */
  parse?: Parse<unknown>;
  valueName?: string;
}

/**
 * Every flag, in the order `--help` lists them. The original script's flags keep
 * its names and defaults.
 */
export const FLAGS = {
  count: { default: '100', parse: wholeNumberAtLeast(0), valueName: 'N', help: 'number of sessions to generate' },
  'full-snapshot-count-mean': {
    default: '2', parse: numberAtLeast(1, 'a number >= 1 (every session starts with a full snapshot)'), valueName: 'N',
    help: 'mean number of full snapshots per session, at least 1: every session starts with one',
  },
  'full-snapshot-count-standard-deviation': {
    default: '4', parse: numberAtLeast(0), valueName: 'N', help: 'standard deviation of that number',
  },
  'full-snapshot-size-mean': {
    default: '185000', parse: numberAtLeast(1), valueName: 'CHARS', help: 'mean size of a full snapshot, in characters of data',
  },
  'full-snapshot-size-standard-deviation': {
    default: '160000', parse: numberAtLeast(0), valueName: 'CHARS', help: 'standard deviation of that size',
  },
  'incremental-snapshot-count-mean': {
    default: '40', parse: numberAtLeast(Number.MIN_VALUE, 'a number > 0'), valueName: 'N',
    help: 'mean number of incremental snapshots per session',
  },
  'incremental-snapshot-count-standard-deviation': {
    default: '214', parse: numberAtLeast(0), valueName: 'N', help: 'standard deviation of that number',
  },
  'incremental-snapshot-size-mean': {
    default: '14000', parse: numberAtLeast(1), valueName: 'CHARS', help: 'mean size of an incremental snapshot, in characters of data',
  },
  'incremental-snapshot-size-standard-deviation': {
    default: '50000', parse: numberAtLeast(0), valueName: 'CHARS', help: 'standard deviation of that size',
  },
  'seed-value': { default: '0', parse: anyWholeNumber, valueName: 'N', help: 'seed of every random choice: ids, counts, sizes, times and data' },
  start: {
    parse: isoTime, valueName: 'TIME',
    help: 'ISO-8601 time at which the first session starts, UTC unless it names a zone (default: the time of the run); give it for byte-identical reruns',
  },
  'team-id': { parse: anyWholeNumber, valueName: 'N', help: 'team_id of every message (default: null)' },
  token: { parse: (text: string) => text, valueName: 'TOKEN', help: 'project token of every message (default: null)' },
  'chunk-size': {
    default: '900000', parse: wholeNumberAtLeast(1), valueName: 'CHARS',
    help: 'split snapshot data into chunks of at most this many characters, one message each',
  },
  'max-message-bytes': {
    default: '1000000', parse: wholeNumberAtLeast(1), valueName: 'BYTES',
    help: "hard limit on the bytes of every message value; librdkafka's (so kcat's) default message.max.bytes",
  },
  key: { help: "prefix each line with its Kafka key, the $session_id, and a tab (kcat -K '\\t', kafka-console-producer --property parse.key=true)" },
  verbose: { help: 'describe each session on stderr as it is written' },
  help: { help: 'show this help and exit' },
} satisfies Record<string, FlagSpec>;

type FlagName = keyof typeof FLAGS;

/** Wraps `text` into lines of at most `width` columns, each starting with `indent`. */
function wrap(text: string, indent: string, width = 80): string {
  const lines: string[] = [];
  let line = indent;
  for (const word of text.split(' ')) {
    if (line.length + word.length + 1 > width && line.trim()) {
      lines.push(line.trimEnd());
      line = indent;
    }
    line += `${word} `;
  }
  return [...lines, line.trimEnd()].join('\n');
}

/** The `--help` text: what the tool does, every flag with its default, and pipelines. */
export function helpText(): string {
  const flags = Object.entries(FLAGS).map(([name, spec]: [string, FlagSpec]) => {
    const fallback = spec.default === undefined ? '' : ` (default ${spec.default})`;
    return `  --${name}${spec.valueName ? ` ${spec.valueName}` : ''}\n${wrap(spec.help + fallback, '        ')}`;
  });
  return `Usage: generate.ts [flags] > messages.jsonl

Prints synthetic session-recording traffic for load-testing ingestion: the
Kafka messages PostHog's capture wrote to session_recording_events, one JSON
value per line on stdout. Nothing else goes to stdout.

Each session starts with a full snapshot; further full snapshots (page loads)
fall among the incremental ones. Counts per session and sizes per snapshot are
log-normal with the mean and standard deviation given below, rounded to whole
numbers without bias. Sizes count characters of snapshot data (base64 text);
data longer than --chunk-size is split into chunks sharing one chunk_id, and no
message value exceeds --max-message-bytes. now and sent_at move forward through
each session; session i starts about i seconds after --start.

Session i comes from a random stream derived from (--seed-value, i) alone: the
same flags and --start give the same bytes, and memory stays flat.

Flags:
${flags.join('\n')}

Examples:
  npx tsx ./generate.ts --count 100 | kcat -P -b localhost:9092 -t session_recording_events
  npx tsx ./generate.ts --count 100 --key | kcat -P -K '\\t' -b localhost:9092 -t session_recording_events
  npx tsx ./generate.ts --count 100 | kafka-console-producer.sh --topic session_recording_events --bootstrap-server localhost:9092

Exit status: 0 when done, or when the reader goes away (| head); 2 on bad input
(one line on stderr, nothing on stdout); 130 after Ctrl-C, which stops after
the line being written.
`;
}

/**
 * Joins `--flag -5` into `--flag=-5`: parseArgs takes a value starting with a
 * dash for a flag of its own, so a negative seed would be refused as such.
 */
function attachNegativeValues(argv: readonly string[]): string[] {
  const args: string[] = [];
  for (let at = 0; at < argv.length; at++) {
    const arg = argv[at]!;
    const next = argv[at + 1];
    const takesValue = arg.startsWith('--') && (FLAGS as Record<string, FlagSpec>)[arg.slice(2)]?.parse !== undefined;
    if (takesValue && next !== undefined && /^-[\d.]/.test(next)) {
      args.push(`${arg}=${next}`);
      at++;
    } else {
      args.push(arg);
    }
  }
  return args;
}

/**
 * Parses the command line into a Config, or returns 'help'.
 *
 * @example
 * parseFlags(['--count', '10', '--start', '2024-01-01']).count; // 10
 * parseFlags(['--count', '-1']); // throws UsageError
 */
export function parseFlags(argv: readonly string[], now = Date.now()): Config | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(
      Object.entries(FLAGS).map(([name, spec]: [string, FlagSpec]) => [name, { type: spec.parse ? 'string' : 'boolean' } as const]),
    );
    ({ values } = parseArgs({ args: attachNegativeValues(argv), options, strict: true, allowPositionals: false }));
  } catch (error) {
    // parseArgs names the flag in the first line of its message; later lines only suggest '--flag=-value'.
    // Its "argument is ambiguous" means a flag came where a value was due.
    const firstLine = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    const message = firstLine.replace(/\.$/, '').replace('argument is ambiguous', 'needs a value, not another flag');
    throw new UsageError(`${message} (see --help)`);
  }
  if (values.help) return 'help';

  const get = <T>(name: FlagName): T | undefined => {
    const spec: FlagSpec = FLAGS[name];
    const text = values[name] ?? spec.default;
    return text === undefined || typeof text === 'boolean' ? (text as T | undefined) : (spec.parse!(text, name) as T);
  };
  const distribution = (prefix: string): Distribution => ({
    mean: get<number>(`${prefix}-mean` as FlagName)!,
    standardDeviation: get<number>(`${prefix}-standard-deviation` as FlagName)!,
  });

  const config: Config = {
    count: get<number>('count')!,
    fullSnapshotCount: distribution('full-snapshot-count'),
    fullSnapshotSize: distribution('full-snapshot-size'),
    incrementalSnapshotCount: distribution('incremental-snapshot-count'),
    incrementalSnapshotSize: distribution('incremental-snapshot-size'),
    seed: get<number>('seed-value')!,
    verbose: get<boolean>('verbose') ?? false,
    teamId: get<number>('team-id') ?? null,
    token: get<string>('token') ?? null,
    startMs: get<number>('start') ?? now,
    chunkSize: get<number>('chunk-size')!,
    maxMessageBytes: get<number>('max-message-bytes')!,
    key: get<boolean>('key') ?? false,
  };

  const room = config.maxMessageBytes - maxEnvelopeBytes(config);
  if (room < 1) {
    throw new UsageError(
      `--max-message-bytes accepts at least ${maxEnvelopeBytes(config) + 1} (each message adds up to ` +
        `${maxEnvelopeBytes(config)} bytes around its chunk of data), got ${config.maxMessageBytes}`,
    );
  }
  if (config.chunkSize > room) {
    throw new UsageError(
      `--chunk-size accepts at most ${room} with --max-message-bytes ${config.maxMessageBytes} ` +
        `(each message adds up to ${maxEnvelopeBytes(config)} bytes around its chunk), got ${config.chunkSize}`,
    );
  }
  return config;
}

// ---------------------------------------------------------------------------
// Sample a session: seeded random streams, the log-normal draws, and the
// per-session identity (ids, ip, site). Nothing here depends on other sessions.
// ---------------------------------------------------------------------------

/**
 * A random stream for one purpose of one session, derived from (seed, session,
 * purpose) alone by hashing, so any session can be generated on its own.
 *
 * @example
 * const rng = sessionStream(0, 7, 'session'); // the same numbers every time
 */
export function sessionStream(seed: number, session: number, purpose: string): RandomGenerator {
  const digest = createHash('sha256').update(`${seed}/${session}/${purpose}`).digest();
  const state = [0, 4, 8, 12].map((offset) => digest.readInt32LE(offset));
  // xoroshiro128+ must not start from the all-zero state.
  return xoroshiro128plusFromState(state.some((word) => word !== 0) ? state : [1, 0, 0, 0]);
}

/** The 16-byte key and 16-byte counter block that seed a session's AES-CTR byte stream. */
function sessionKeystream(seed: number, session: number, purpose: string): Cipher {
  const digest = createHash('sha256').update(`${seed}/${session}/${purpose}`).digest();
  return createCipheriv('aes-128-ctr', digest.subarray(0, 16), digest.subarray(16, 32));
}

/** Uniform in [0, 1). */
export const uniform = (rng: RandomGenerator): number => uniformFloat64(rng);

/** Standard normal, by Box-Muller. */
export function standardNormal(rng: RandomGenerator): number {
  const u = 1 - uniform(rng); // in (0, 1], so the log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform(rng));
}

/**
 * A log-normal draw whose distribution has the given mean and standard
 * deviation (not those of its logarithm): sigma² = ln(1 + (sd/mean)²),
 * mu = ln(mean) - sigma²/2, as in the original script.
 */
export function logNormal(rng: RandomGenerator, { mean, standardDeviation }: Distribution): number {
  const sigmaSquared = Math.log1p((standardDeviation / mean) ** 2);
  return Math.exp(Math.log(mean) - sigmaSquared / 2 + Math.sqrt(sigmaSquared) * standardNormal(rng));
}

/** Rounds down or up with the probabilities that keep the expectation: 2.3 gives 3 three times in ten. */
export function stochasticRound(rng: RandomGenerator, value: number): number {
  const floor = Math.floor(value);
  return floor + (uniform(rng) < value - floor ? 1 : 0);
}

/**
 * A whole number of at least `minimum` with the given mean and standard
 * deviation: `minimum` plus a stochastically rounded log-normal draw of mean
 * `mean - minimum`. Shifting rather than clamping keeps the mean exact;
 * rounding adds at most 1/4 to the variance.
 *
 * @example
 * sampleWholeNumber(rng, { mean: 2, standardDeviation: 4 }, 1); // 1, 2, 3, ... averaging 2
 */
export function sampleWholeNumber(rng: RandomGenerator, distribution: Distribution, minimum: number): number {
  const excess = distribution.mean - minimum;
  if (excess <= 0) return minimum;
  return minimum + stochasticRound(rng, logNormal(rng, { mean: excess, standardDeviation: distribution.standardDeviation }));
}

const HEX_BYTE = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));
/** Scratch space for uuid4: four random words seen as sixteen bytes. */
const uuidWords = new Int32Array(4);
const uuidBytes = new Uint8Array(uuidWords.buffer);

/** A version-4 UUID drawn from the stream. */
export function uuid4(rng: RandomGenerator): string {
  for (let word = 0; word < 4; word++) uuidWords[word] = rng.next();
  // Version nibble 4 and variant bits 10, as RFC 9562 sets them.
  uuidBytes[6] = (uuidBytes[6]! & 0x0f) | 0x40;
  uuidBytes[8] = (uuidBytes[8]! & 0x3f) | 0x80;
  let text = '';
  for (let byte = 0; byte < 16; byte++) {
    if (byte === 4 || byte === 6 || byte === 8 || byte === 10) text += '-';
    text += HEX_BYTE[uuidBytes[byte]!];
  }
  return text;
}

/** Who and where one session is. */
export interface Session {
  index: number;
  sessionId: string;
  windowId: string;
  distinctId: string;
  ip: string;
  siteUrl: string;
}

/**
 * Draws session `index`'s identity from its own stream (faker, for the ip and
 * site, is seeded from it).
 *
 * @example
 * sampleSession(config, 0).sessionId; // a UUID, the same for the same seed
 */
export function sampleSession(config: Config, index: number): Session {
  const rng = sessionStream(config.seed, index, 'identity');
  faker.seed(rng.next());
  return {
    index,
    sessionId: uuid4(rng),
    windowId: uuid4(rng),
    distinctId: uuid4(rng),
    ip: faker.internet.ipv4(),
    siteUrl: faker.internet.url({ appendSlash: false }),
  };
}

// ---------------------------------------------------------------------------
// Plan its snapshots: how many of each kind, in what order, how large, when.
// ---------------------------------------------------------------------------

export type SnapshotKind = 'full' | 'incremental';

/** One snapshot batch as the browser sends it. Times are ms since the epoch. */
export interface PlannedSnapshot {
  kind: SnapshotKind;
  /** Characters of snapshot data as it travels in the message. */
  size: number;
  /** When the browser sent the batch (`sent_at`). */
  sentAtMs: number;
  /** When capture received it (`now`). */
  receivedAtMs: number;
}

/** Sessions start this far apart on average, spread over the run from --start. */
const SESSION_SPACING_MS = 1000;
/** posthog-js flushes its buffer of events at most every 2 s; idle spells stretch the gaps. */
const MIN_FLUSH_GAP_MS = 2000;
const MEAN_EXTRA_GAP_MS = 3000;
/** Network latency between sending and capture receiving. */
const MAX_LATENCY_MS = 250;

/**
 * Plans a session: F >= 1 full and I >= 0 incremental snapshots, the first one
 * full and the remaining full ones placed at random among the incrementals,
 * each with its own size, at increasing times.
 *
 * @example
 * planSnapshots(config, 0)[0].kind; // 'full'
 */
export function planSnapshots(config: Config, index: number): PlannedSnapshot[] {
  const rng = sessionStream(config.seed, index, 'plan');
  let fullLeft = sampleWholeNumber(rng, config.fullSnapshotCount, 1);
  let incrementalLeft = sampleWholeNumber(rng, config.incrementalSnapshotCount, 0);
  const plan: PlannedSnapshot[] = [];
  let sentAtMs = config.startMs + (index + uniform(rng)) * SESSION_SPACING_MS;
  while (fullLeft + incrementalLeft > 0) {
    // The first snapshot is full; after it, each remaining snapshot is equally
    // likely to come next, which interleaves the kinds uniformly at random.
    const full = plan.length === 0 || uniform(rng) * (fullLeft + incrementalLeft) < fullLeft;
    if (full) fullLeft--;
    else incrementalLeft--;
    const kind: SnapshotKind = full ? 'full' : 'incremental';
    const size = sampleWholeNumber(rng, full ? config.fullSnapshotSize : config.incrementalSnapshotSize, 1);
    if (plan.length > 0) sentAtMs += MIN_FLUSH_GAP_MS - MEAN_EXTRA_GAP_MS * Math.log(1 - uniform(rng));
    const receivedAtMs = sentAtMs + uniform(rng) * MAX_LATENCY_MS;
    plan.push({ kind, size, sentAtMs: Math.floor(sentAtMs), receivedAtMs: Math.floor(receivedAtMs) });
  }
  return plan;
}

// ---------------------------------------------------------------------------
// Encode payloads: the snapshot data itself, written straight into the output
// buffer. `random` is opaque base64 text of exactly the planned size.
// ---------------------------------------------------------------------------

/** Snapshot data read front to back: each call writes the next `count` characters. */
export interface PayloadText {
  writeNext(target: Buffer, offset: number, count: number): void;
}

/** Base64 of at most 48 KiB per call stays on node's fast path (TOOLCHAIN.md). */
const BASE64_PIECE_CHARS = 48 * 1024;
const ZEROS = Buffer.alloc((BASE64_PIECE_CHARS / 4) * 3);

/**
 * Random base64 text from a seeded AES-CTR keystream: the alphabet and
 * entropy of real gzip-base64 data, at memory speed. One per session; its
 * snapshots read consecutive stretches of it.
 *
 * @example
 * const text = new RandomBase64(sessionKeystream(0, 0, 'payload'));
 * text.writeNext(buffer, 0, 100); // 100 characters of [A-Za-z0-9+/]
 */
export class RandomBase64 implements PayloadText {
  /** Characters encoded but not yet written, so text is the same however it is split. */
  private carry = '';
  constructor(private readonly keystream: Cipher) {}

  writeNext(target: Buffer, offset: number, count: number): void {
    const fromCarry = Math.min(count, this.carry.length);
    target.write(this.carry.slice(0, fromCarry), offset, 'latin1');
    this.carry = this.carry.slice(fromCarry);
    let done = fromCarry;
    while (done < count) {
      const want = Math.min(count - done, BASE64_PIECE_CHARS);
      const bytes = Math.ceil(want / 4) * 3;
      const text = this.keystream.update(ZEROS.subarray(0, bytes)).toString('base64');
      target.write(text, offset + done, want, 'latin1');
      if (text.length > want) this.carry = text.slice(want);
      done += want;
    }
  }
}

/** The random payload stream of session `index`. */
export const randomPayload = (config: Config, index: number): PayloadText =>
  new RandomBase64(sessionKeystream(config.seed, index, 'payload'));

// ---------------------------------------------------------------------------
// Chunk: split each snapshot's data into messages that fit the limit, and
// frame each chunk in the message JSON.
// ---------------------------------------------------------------------------

/** The fields of one chunk's message besides its data: ids, numbers and times, none needing JSON escaping. */
export interface ChunkFields {
  uuid: string;
  windowId: string;
  chunkId: string;
  chunkIndex: number;
  chunkCount: number;
  hasFullSnapshot: boolean;
  /** ISO-8601 times. */
  now: string;
  sentAt: string;
}

const json = JSON.stringify;
/** A JSON value as it reads inside the `data` string, where it is escaped once more. */
const jsonInData = (value: unknown): string => json(json(value)).slice(1, -1);

/**
 * The text of SPEC format 1 before and after a chunk's data: the envelope keys
 * in capture's order, `data` the JSON string of the `$snapshot` event. The
 * session's own fields are escaped once, here; each message only splices in
 * fields that need no escaping, because JSON.stringify per message cost a
 * third of the run. Base64 data needs no escaping either, so head + data +
 * tail is the message.
 *
 * @example
 * const frame = new SnapshotFrame(config, session);
 * frame.head(fields) + data + frame.tail(fields); // one message value
 */
export class SnapshotFrame {
  private readonly identity: string;
  private readonly properties: string;
  private readonly teamId: string;
  private readonly token: string;

  constructor(config: Config, session: Session) {
    this.identity =
      `"distinct_id":${json(session.distinctId)},"ip":${json(session.ip)},"site_url":${json(session.siteUrl)}`;
    this.properties =
      `\\"distinct_id\\":${jsonInData(session.distinctId)},\\"$session_id\\":${jsonInData(session.sessionId)}`;
    this.teamId = json(config.teamId);
    this.token = json(config.token);
  }

  head(chunk: ChunkFields): string {
    return (
      `{"uuid":"${chunk.uuid}",${this.identity},"data":"{\\"event\\":\\"$snapshot\\",\\"properties\\":{${this.properties},` +
      `\\"$window_id\\":\\"${chunk.windowId}\\",\\"$snapshot_data\\":{\\"chunk_id\\":\\"${chunk.chunkId}\\",` +
      `\\"chunk_index\\":${chunk.chunkIndex},\\"chunk_count\\":${chunk.chunkCount},\\"data\\":\\"`
    );
  }

  tail(chunk: ChunkFields): string {
    return (
      `\\",\\"compression\\":\\"gzip-base64\\",\\"has_full_snapshot\\":${chunk.hasFullSnapshot}}}}",` +
      `"team_id":${this.teamId},"now":"${chunk.now}","sent_at":"${chunk.sentAt}","token":${this.token}}`
    );
  }

  /** Bytes a message adds around its chunk, at most: for the longest chunk numbers possible. */
  maxEnvelopeBytes(): number {
    const widest: ChunkFields = {
      uuid: UUID_SHAPE, windowId: UUID_SHAPE, chunkId: UUID_SHAPE, chunkIndex: Number.MAX_SAFE_INTEGER,
      chunkCount: Number.MAX_SAFE_INTEGER, hasFullSnapshot: false, now: ISO_SHAPE, sentAt: ISO_SHAPE,
    };
    return Buffer.byteLength(this.head(widest)) + Buffer.byteLength(this.tail(widest));
  }
}

const UUID_SHAPE = '00000000-0000-4000-8000-000000000000';
const ISO_SHAPE = '2000-01-01T00:00:00.000Z';

/** Longer than any site faker makes; a longer one would only shrink chunks, never break the limit. */
const MAX_SITE_URL_LENGTH = 100;

/** The widest envelope any message can have around its chunk: widest ip, long site, longest numbers. */
function maxEnvelopeBytes(config: Config): number {
  const widest: Session = {
    index: 0, sessionId: UUID_SHAPE, windowId: UUID_SHAPE, distinctId: UUID_SHAPE, ip: '255.255.255.255',
    siteUrl: `https://${'w'.repeat(MAX_SITE_URL_LENGTH - 8)}`,
  };
  return new SnapshotFrame(config, widest).maxEnvelopeBytes();
}

/** One line of output: a head and tail of text around `dataLength` characters of payload. */
export interface Message {
  /** The Kafka key, written before the value (and a tab) when --key is given. */
  key: string;
  head: string;
  /** Where the data comes from: the next `dataLength` characters of this text. */
  data: PayloadText;
  dataLength: number;
  tail: string;
}

/** A session's identity and plan, and its messages to be read once, in order. */
export interface SessionOutput {
  session: Session;
  plan: PlannedSnapshot[];
  messages: Generator<Message>;
}

/**
 * Generates session `index`. Its messages must be consumed in order: each
 * one's data continues the session's payload stream.
 *
 * @example
 * for (const message of generateSession(config, 0).messages) process.stdout.write(renderLine(config, message));
 */
export function generateSession(config: Config, index: number): SessionOutput {
  const session = sampleSession(config, index);
  const plan = planSnapshots(config, index);
  return { session, plan, messages: snapshotMessages(config, session, plan) };
}

function* snapshotMessages(config: Config, session: Session, plan: PlannedSnapshot[]): Generator<Message> {
  const ids = sessionStream(config.seed, session.index, 'ids');
  const payload = randomPayload(config, session.index);
  const frame = new SnapshotFrame(config, session);
  const capacity = Math.min(config.chunkSize, config.maxMessageBytes - frame.maxEnvelopeBytes());
  for (const snapshot of plan) {
    const fields: ChunkFields = {
      uuid: '',
      windowId: session.windowId,
      chunkId: uuid4(ids),
      chunkIndex: 0,
      chunkCount: Math.ceil(snapshot.size / capacity),
      hasFullSnapshot: snapshot.kind === 'full',
      now: new Date(snapshot.receivedAtMs).toISOString(),
      sentAt: new Date(snapshot.sentAtMs).toISOString(),
    };
    for (let chunkIndex = 0; chunkIndex < fields.chunkCount; chunkIndex++) {
      fields.uuid = uuid4(ids);
      fields.chunkIndex = chunkIndex;
      yield {
        key: session.sessionId,
        head: frame.head(fields),
        data: payload,
        dataLength: Math.min(capacity, snapshot.size - chunkIndex * capacity),
        tail: frame.tail(fields),
      };
    }
  }
}

// ---------------------------------------------------------------------------
// Emit lines: lay messages out as bytes and write them to stdout in large
// blocks, never a partial line; stop quietly when the reader goes away.
// ---------------------------------------------------------------------------

/** Bytes `message` takes as a line (key, value, newline). */
export function lineBytes(config: Config, message: Message): number {
  const keyBytes = config.key ? Buffer.byteLength(message.key) + 1 : 0;
  return keyBytes + Buffer.byteLength(message.head) + message.dataLength + Buffer.byteLength(message.tail) + 1;
}

/**
 * Writes `message` as a line at `offset`, returning the offset after it.
 * Throws if the value would exceed --max-message-bytes: a bug, never output.
 */
export function writeLine(config: Config, message: Message, target: Buffer, offset: number): number {
  let at = offset;
  if (config.key) {
    at += target.write(message.key, at, 'utf8');
    target[at++] = 0x09; // tab
  }
  const valueStart = at;
  at += target.write(message.head, at, 'utf8');
  message.data.writeNext(target, at, message.dataLength);
  at += message.dataLength;
  at += target.write(message.tail, at, 'utf8');
  if (at - valueStart > config.maxMessageBytes) {
    throw new Error(`internal error: a message of ${at - valueStart} bytes exceeds --max-message-bytes`);
  }
  target[at++] = 0x0a; // newline
  return at;
}

/** One message as a complete line, for tests and for code that imports this file. */
export function renderLine(config: Config, message: Message): Buffer {
  const line = Buffer.allocUnsafe(lineBytes(config, message));
  writeLine(config, message, line, 0);
  return line;
}

/**
 * Collects lines into blocks and writes each block to a file descriptor from
 * node's thread pool while the next one fills: generation and the write
 * system call overlap, about twice as fast as process.stdout.write here.
 */
export class BlockWriter {
  private blocks: [Buffer, Buffer];
  private filled = 0;
  private inFlight: Promise<void> = Promise.resolve();
  /** Set once the reader has gone away (EPIPE); later writes are dropped. */
  closed = false;
  /**
   * Set if the descriptor turns out to be non-blocking after all (EAGAIN):
   * from then on process.stdout, which waits for the pipe to drain, takes
   * every write.
   */
  private useStream = false;

  constructor(private readonly fd: number, blockBytes: number) {
    this.blocks = [Buffer.allocUnsafe(blockBytes), Buffer.allocUnsafe(blockBytes)];
  }

  /** Room left in the block being filled. */
  get room(): number {
    return this.blocks[0].length - this.filled;
  }

  /** Adds a line; the caller makes room first with flush() when `room` is short. */
  put(config: Config, message: Message): void {
    this.filled = writeLine(config, message, this.blocks[0], this.filled);
  }

  /** Starts writing the filled block and swaps in the other once its own write is done. */
  async flush(): Promise<void> {
    await this.inFlight;
    if (this.filled === 0) return;
    const block = this.blocks[0].subarray(0, this.filled);
    this.blocks = [this.blocks[1], this.blocks[0]];
    this.filled = 0;
    this.inFlight = this.writeAll(block);
  }

  /** Flushes and waits until every byte is written or the reader has gone. */
  async close(): Promise<void> {
    await this.flush();
    await this.inFlight;
  }

  private async writeAll(block: Buffer): Promise<void> {
    let written = 0;
    while (written < block.length && !this.closed && !this.useStream) {
      try {
        written += await new Promise<number>((resolve, reject) =>
          writeToFd(this.fd, block, written, block.length - written, null, (error, bytes) => (error ? reject(error) : resolve(bytes))),
        );
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') this.closed = true;
        else if (code === 'EAGAIN') this.switchToStream();
        else throw error;
      }
    }
    if (this.useStream && !this.closed && written < block.length) {
      await new Promise((resolve) => process.stdout.write(block.subarray(written), resolve));
    }
  }

  private switchToStream(): void {
    this.useStream = true;
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      this.closed = true;
    });
  }
}

/**
 * Makes stdout and stderr block again: node's stream for a pipe sets the
 * shared descriptor non-blocking (tsx touches it before this file runs), and
 * thread-pool writes to a non-blocking pipe fail with EAGAIN when it fills.
 * `_handle.setBlocking` is node's own switch for this (used on Windows).
 */
export function makeStdioBlocking(): void {
  for (const stream of [process.stdout, process.stderr]) {
    (stream as unknown as { _handle?: { setBlocking?: (blocking: boolean) => number } })._handle?.setBlocking?.(true);
  }
}

/** Smallest block: large writes amortize the system call; a block holds at least one whole line. */
const MIN_BLOCK_BYTES = 1 << 20;

const MB = 1e6;

/**
 * Runs the generator: parses `argv`, writes every session's lines to fd 1,
 * and returns the exit status.
 */
export async function main(argv: readonly string[]): Promise<number> {
  let config: Config | 'help';
  try {
    config = parseFlags(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`generate.ts: ${error.message}\n`);
    return 2;
  }
  if (config === 'help') {
    process.stdout.write(helpText());
    return 0;
  }

  let interrupted = false;
  process.on('SIGINT', () => {
    interrupted = true;
  });

  makeStdioBlocking();
  // The longest line: the key (a UUID), a tab, a value at the limit, a newline.
  const writer = new BlockWriter(1, Math.max(MIN_BLOCK_BYTES, config.maxMessageBytes + 64));
  for (let index = 0; index < config.count && !interrupted && !writer.closed; index++) {
    const { session, plan, messages } = generateSession(config, index);
    let lines = 0;
    let bytes = 0;
    for (const message of messages) {
      const size = lineBytes(config, message);
      if (size > writer.room) await writer.flush();
      writer.put(config, message);
      lines++;
      bytes += size;
      if (interrupted || writer.closed) break;
    }
    if (config.verbose) {
      const full = plan.filter((snapshot) => snapshot.kind === 'full').length;
      process.stderr.write(
        `session ${index + 1}/${config.count} ${session.sessionId}: ${full} full and ${plan.length - full} ` +
          `incremental snapshots in ${lines} messages, ${(bytes / MB).toFixed(2)} MB\n`,
      );
    }
  }
  await writer.close();
  return interrupted ? 130 : 0;
}

const executedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (executedDirectly) {
  process.exitCode = await main(process.argv.slice(2));
}
