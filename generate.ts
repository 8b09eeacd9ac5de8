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
 * in either of PostHog's formats: `--format snapshot`, the `$snapshot` events
 * of the `session_recording_events` topic, whose data is opaque random base64
 * (`--payload random`) or real rrweb events, gzipped (`--payload rrweb`); or
 * `--format snapshot-items`, today's `$snapshot_items` events carrying rrweb
 * events as JSON. The rrweb events come from a model of each window's page: a
 * full snapshot serializes a new page (a node tree with text, styles and
 * inline images); incremental ones change it (mutations, mouse moves, clicks,
 * scrolls, input) and load an image, which sizes each batch exactly.
 *
 * It rebuilds PostHog's `generate_session_recordings_messages.py` and keeps the
 * promises that script broke: counts and sizes have the mean and standard
 * deviation the flags ask for (it truncated with int()); every session starts
 * with a full snapshot; each snapshot's size is drawn on its own; full
 * snapshots fall among the incrementals; all chunks of a snapshot share one
 * `chunk_id`; properties carry their `$` names. Session `i` is generated from
 * random streams derived from (`--seed-value`, `i`) alone, so the same flags
 * and `--start` give the same bytes, and memory stays flat however many
 * sessions are asked for.
 *
 * The data flows through the sections below in order: parse flags → sample a
 * session → plan its snapshots → encode payloads → chunk → emit lines. Each
 * piece is exported so it can be imported and tested; running this file as a
 * script calls `main`. `--help` documents every flag.
 */

import { createCipheriv, createHash } from 'node:crypto';
import { realpathSync, write as writeToFd } from 'node:fs';
import { constants as zlibConstants, crc32, deflateRawSync, gzipSync } from 'node:zlib';
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

/** What each line is: a message of `session_recording_events` or `session_recording_snapshot_item_events`, or a vegeta target. */
export type Format = 'snapshot' | 'snapshot-items' | 'vegeta';
/** What `--format snapshot` carries as snapshot data: opaque random text or real rrweb events. */
export type Payload = 'random' | 'rrweb';

/** Everything a run needs, parsed and checked. */
export interface Config {
  count: number;
  format: Format;
  payload: Payload;
  windowCount: Distribution;
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
  /** Where vegeta targets post. */
  captureUrl: string;
  /** Messages a second at most; 0 for as fast as possible. */
  rate: number;
  /** This run makes the sessions whose index is `index` modulo `count`. */
  shard: { index: number; count: number };
  /** The live progress line: asked for, refused, or on when stderr is a terminal. */
  progress: 'on' | 'off' | 'auto';
  stats: boolean;
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

/** One of a fixed list of words. */
const oneOf = <T extends string>(...choices: T[]): Parse<T> => (text, flag) => {
  if (!(choices as string[]).includes(text)) throw new UsageError(`--${flag} accepts ${choices.join(' or ')}, got '${text}'`);
  return text as T;
};

/** `I/N` with 0 <= I < N. */
const shardSpec: Parse<{ index: number; count: number }> = (text, flag) => {
  const match = /^(\d+)\/(\d+)$/.exec(text);
  const [index, count] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(count >= 1 && index < count) || !Number.isSafeInteger(count)) {
    throw new UsageError(`--${flag} accepts I/N with N >= 1 and 0 <= I < N (shard I of N), got '${text}'`);
  }
  return { index, count };
};

const httpUrl: Parse<string> = (text, flag) => {
  if (!URL.canParse(text) || !/^https?:$/.test(new URL(text).protocol)) {
    throw new UsageError(`--${flag} accepts an http or https URL, got '${text}'`);
  }
  return text;
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
  format: {
    default: 'snapshot', parse: oneOf<Format>('snapshot', 'snapshot-items', 'vegeta'), valueName: 'FORMAT',
    help: 'snapshot: $snapshot messages of the session_recording_events topic, data chunked; snapshot-items: ' +
      '$snapshot_items messages of session_recording_snapshot_item_events, rrweb events as JSON, split at event boundaries; ' +
      'vegeta: one target per snapshot for vegeta attack -lazy -format=json, posting it to --capture-url as posthog-js does',
  },
  payload: {
    parse: oneOf<Payload>('random', 'rrweb'), valueName: 'PAYLOAD',
    help: 'for --format snapshot, the snapshot data: random (opaque base64 text of exactly the sampled size) or rrweb ' +
      '(base64 of gzip of UTF-16 JSON of real rrweb events, within 5% of the sampled size) (default random)',
  },
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
  'window-count-mean': {
    default: '1', parse: numberAtLeast(1), valueName: 'N',
    help: 'mean number of browser windows per session, each with its own $window_id and first snapshot full ' +
      '(a session has at least as many full snapshots as windows)',
  },
  'window-count-standard-deviation': {
    default: '0', parse: numberAtLeast(0), valueName: 'N', help: 'standard deviation of that number',
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
  'capture-url': {
    default: 'http://127.0.0.1:8000/s/?compression=gzip-js', parse: httpUrl, valueName: 'URL',
    help: "PostHog's capture endpoint for recordings, which vegeta targets post to",
  },
  rate: {
    default: '0', parse: numberAtLeast(0), valueName: 'N',
    help: 'at most N messages (or targets) a second, evenly spaced; 0 for as fast as possible',
  },
  shard: {
    default: '0/1', parse: shardSpec, valueName: 'I/N',
    help: 'make only the sessions whose index is I modulo N; the N shards together are exactly the run without --shard',
  },
  progress: { help: 'a live line on stderr: sessions, messages, MB, MB/s, time left (on when stderr is a terminal)' },
  'no-progress': { help: 'no progress line, even on a terminal' },
  stats: { help: 'a summary on stderr at the end: totals, speed, size percentiles per kind and a histogram of sizes' },
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

Prints synthetic session-recording traffic for load-testing ingestion, one
message value per line on stdout; nothing else goes to stdout. --format snapshot
writes what PostHog's capture wrote to session_recording_events ($snapshot
events, data gzip-base64 and chunked); --format snapshot-items what today's
capture writes to session_recording_snapshot_item_events (rrweb events as JSON).

Each session has one or more windows; each window starts with a full snapshot
(a page: Meta and FullSnapshot events, with inline images), and further full
snapshots (page loads) fall among the incremental ones (mutations, mouse moves,
clicks, scrolls, input, and an image loaded). Counts and sizes are log-normal
with the mean and standard deviation given below, rounded to whole numbers
without bias. Sizes count characters of snapshot data as it travels: base64
text for --format snapshot, event JSON for snapshot-items. No message value
exceeds --max-message-bytes: snapshot data is split into chunks sharing one
chunk_id, snapshot items into messages at event boundaries. now and sent_at
move forward through each session; session i starts about i seconds after
--start, and its events fall between its batches' sent_at times.

Session i comes from random streams derived from (--seed-value, i) alone: the
same flags and --start give the same bytes, memory stays flat, and the N
shards of --shard I/N together are exactly the run without it. --rate,
--progress and --stats never change a byte of stdout.

Flags:
${flags.join('\n')}

Examples:
  npx tsx ./generate.ts --count 100 | kcat -P -b localhost:9092 -t session_recording_events
  npx tsx ./generate.ts --count 100 --key | kcat -P -K '\\t' -b localhost:9092 -t session_recording_events
  npx tsx ./generate.ts --count 100 --payload rrweb | kafka-console-producer.sh --topic session_recording_events --bootstrap-server localhost:9092
  npx tsx ./generate.ts --count 100 --format snapshot-items --key | kcat -P -K '\\t' -b localhost:9092 -t session_recording_snapshot_item_events
  npx tsx ./generate.ts --count 1000 --format vegeta --token phc_x | vegeta attack -lazy -format=json -rate=200 | vegeta report
  npx tsx ./generate.ts --count 10000 --rate 500 --stats --shard 0/4 | kcat -P -b localhost:9092 -t session_recording_events

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

  const format = get<Format>('format')!;
  if (format !== 'snapshot' && values.payload !== undefined) {
    throw new UsageError(`--payload applies to --format snapshot only; --format ${format} always carries rrweb events`);
  }
  if (format === 'vegeta' && values.key) throw new UsageError('--key applies to the Kafka formats, not --format vegeta: its targets have no key');
  if (values.progress && values['no-progress']) throw new UsageError('--progress and --no-progress contradict each other');
  const config: Config = {
    count: get<number>('count')!,
    format,
    payload: get<Payload>('payload') ?? 'random',
    windowCount: distribution('window-count'),
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
    captureUrl: get<string>('capture-url')!,
    rate: get<number>('rate')!,
    shard: get<{ index: number; count: number }>('shard')!,
    progress: values.progress ? 'on' : values['no-progress'] ? 'off' : 'auto',
    stats: get<boolean>('stats') ?? false,
  };

  // Vegeta targets are HTTP requests, bounded by capture's limit on bodies, not Kafka's on messages.
  if (config.format === 'vegeta') return config;
  const envelope = maxEnvelopeBytes(config);
  // A snapshot message needs room for one character of data; an items message for a whole rrweb event.
  const least = envelope + (config.format === 'snapshot' ? 1 : MIN_EVENT_ROOM_BYTES);
  if (config.maxMessageBytes < least) {
    throw new UsageError(
      `--max-message-bytes accepts at least ${least} for --format ${config.format} (each message adds up to ` +
        `${envelope} bytes around its data), got ${config.maxMessageBytes}`,
    );
  }
  const room = config.maxMessageBytes - envelope;
  if (config.format === 'snapshot' && config.chunkSize > room) {
    throw new UsageError(
      `--chunk-size accepts at most ${room} with --max-message-bytes ${config.maxMessageBytes} ` +
        `(each message adds up to ${envelope} bytes around its chunk), got ${config.chunkSize}`,
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
  const digest = sessionDigest(seed, session, purpose);
  const state = [0, 4, 8, 12].map((offset) => digest.readInt32LE(offset));
  // xoroshiro128+ must not start from the all-zero state.
  return xoroshiro128plusFromState(state.some((word) => word !== 0) ? state : [1, 0, 0, 0]);
}

/** 32 bytes that (seed, session, purpose) alone determine. */
const sessionDigest = (seed: number, session: number, purpose: string): Buffer =>
  createHash('sha256').update(`${seed}/${session}/${purpose}`).digest();

/**
 * Random bytes in bulk for one purpose of one session: an AES-128-CTR
 * keystream keyed by the digest, at memory speed. Each call returns the next
 * `count` bytes.
 */
function sessionBytes(seed: number, session: number, purpose: string): (count: number) => Buffer {
  const digest = sessionDigest(seed, session, purpose);
  const keystream = createCipheriv('aes-128-ctr', digest.subarray(0, 16), digest.subarray(16, 32));
  // The keystream is the encryption of zeros; the shared zero buffer serves the usual small requests.
  return (count) => keystream.update(count <= ZEROS.length ? ZEROS.subarray(0, count) : Buffer.alloc(count));
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
  /** One per window, in the order the windows open. */
  windowIds: string[];
  distinctId: string;
  ip: string;
  siteUrl: string;
}

/**
 * Draws session `index`'s identity, with `windows` window ids, from its own
 * stream: ids, a public-looking ip, and a site named from faker's words (as
 * faker's own url() does; calling it costs 50 µs a session for reseeding).
 *
 * @example
 * sampleSession(config, 0, 1).sessionId; // a UUID, the same for the same seed
 */
export function sampleSession(config: Config, index: number, windows: number): Session {
  const rng = sessionStream(config.seed, index, 'identity');
  const { domain_suffix: suffixes = ['com'] } = faker.definitions.internet;
  return {
    index,
    sessionId: uuid4(rng),
    distinctId: uuid4(rng),
    ip: [between(rng, 1, 223), between(rng, 0, 255), between(rng, 0, 255), between(rng, 1, 254)].join('.'),
    siteUrl: `https://${pick(rng, words())}-${pick(rng, words())}.${pick(rng, suffixes)}`,
    windowIds: Array.from({ length: windows }, () => uuid4(rng)),
  };
}

// ---------------------------------------------------------------------------
// Plan its snapshots: how many of each kind, in what order, how large, when.
// ---------------------------------------------------------------------------

export type SnapshotKind = 'full' | 'incremental';

/** One snapshot batch as the browser sends it. Times are ms since the epoch. */
export interface PlannedSnapshot {
  kind: SnapshotKind;
  /** Which of the session's windows (0, 1, ...) recorded it. */
  window: number;
  /** Characters of snapshot data as it travels in the message. */
  size: number;
  /** When its first event happened: as the session's previous batch was sent. */
  firstEventMs: number;
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
 * Plans a session: W >= 1 windows, F >= 1 full and I >= 0 incremental
 * snapshots, each with its own size, at increasing times. The first snapshot
 * is full and the remaining full ones fall at random among the incrementals.
 * Every window starts with a full snapshot (so F is at least W): the first W
 * full snapshots open the windows, and every other snapshot goes to a window
 * already open, so the windows' snapshots interleave.
 *
 * @example
 * planSnapshots(config, 0)[0].kind; // 'full'
 */
export function planSnapshots(config: Config, index: number): PlannedSnapshot[] {
  const rng = sessionStream(config.seed, index, 'plan');
  const windows = sampleWholeNumber(rng, config.windowCount, 1);
  let fullLeft = Math.max(sampleWholeNumber(rng, config.fullSnapshotCount, 1), windows);
  let incrementalLeft = sampleWholeNumber(rng, config.incrementalSnapshotCount, 0);
  const plan: PlannedSnapshot[] = [];
  let openWindows = 0;
  let clockMs = config.startMs + (index + uniform(rng)) * SESSION_SPACING_MS;
  while (fullLeft + incrementalLeft > 0) {
    // The first snapshot is full; after it, each remaining snapshot is equally
    // likely to come next, which interleaves the kinds uniformly at random.
    const full = plan.length === 0 || uniform(rng) * (fullLeft + incrementalLeft) < fullLeft;
    if (full) fullLeft--;
    else incrementalLeft--;
    const window = full && openWindows < windows ? openWindows++ : Math.floor(uniform(rng) * openWindows);
    const size = sampleWholeNumber(rng, full ? config.fullSnapshotSize : config.incrementalSnapshotSize, 1);
    const firstEventMs = Math.floor(clockMs);
    clockMs += MIN_FLUSH_GAP_MS - MEAN_EXTRA_GAP_MS * Math.log(1 - uniform(rng));
    const receivedAtMs = clockMs + uniform(rng) * MAX_LATENCY_MS;
    plan.push({
      kind: full ? 'full' : 'incremental',
      window,
      size,
      firstEventMs,
      sentAtMs: Math.floor(clockMs),
      receivedAtMs: Math.floor(receivedAtMs),
    });
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
 * Base64 text of a stream of bytes, written front to back in pieces of any
 * length: the text is the same however it is split.
 *
 * @example
 * const text = new Base64Text((count) => randomBytes(count));
 * text.writeNext(buffer, 0, 100); // 100 characters of [A-Za-z0-9+/]
 */
export class Base64Text implements PayloadText {
  /** Characters encoded but not yet written. */
  private carry = '';
  /** @param nextBytes returns the next `count` bytes of the stream (fewer at its end). */
  constructor(private readonly nextBytes: (count: number) => Buffer) {}

  writeNext(target: Buffer, offset: number, count: number): void {
    const fromCarry = Math.min(count, this.carry.length);
    target.write(this.carry.slice(0, fromCarry), offset, 'latin1');
    this.carry = this.carry.slice(fromCarry);
    let done = fromCarry;
    while (done < count) {
      const want = Math.min(count - done, BASE64_PIECE_CHARS);
      const text = this.nextBytes(Math.ceil(want / 4) * 3).toString('base64');
      target.write(text, offset + done, want, 'latin1');
      if (text.length > want) this.carry = text.slice(want);
      done += want;
    }
  }
}

/**
 * Random base64 text from a seeded AES-CTR keystream: the alphabet and
 * entropy of real gzip-base64 data, at memory speed. One per session; its
 * snapshots read consecutive stretches of it.
 */
export function randomPayload(config: Config, index: number): PayloadText {
  return new Base64Text(sessionBytes(config.seed, index, 'payload'));
}

/** Base64 of a whole buffer, such as a gzip member, and its length in characters. */
export function base64Of(bytes: Buffer): { text: PayloadText; length: number } {
  let at = 0;
  return { text: new Base64Text((count) => bytes.subarray(at, (at += count))), length: Math.ceil(bytes.length / 3) * 4 };
}

// ---------------------------------------------------------------------------
// Encode payloads, rrweb: a model of each window's page, the rrweb events a
// browser records of it, and their text with holes for inline image data.
// Sizing and encoding these events follow in the next section.
// ---------------------------------------------------------------------------

/** rrweb's event types, incremental sources and node types (@rrweb/types). */
export const EventType = { FullSnapshot: 2, IncrementalSnapshot: 3, Meta: 4 } as const;
export const IncrementalSource = { Mutation: 0, MouseMove: 1, MouseInteraction: 2, Scroll: 3, ViewportResize: 4, Input: 5 } as const;
export const NodeType = { Document: 0, DocumentType: 1, Element: 2, Text: 3 } as const;
/** MouseUp, MouseDown, Click (three times as likely), Focus, Blur, TouchStart, TouchEnd. */
const MOUSE_INTERACTIONS = [0, 1, 2, 2, 2, 5, 6, 7, 9];

type Attributes = Record<string, string | number | null>;
interface SerializedElement {
  type: typeof NodeType.Element;
  tagName: string;
  attributes: Attributes;
  childNodes: SerializedNode[];
  id: number;
}
type SerializedNode =
  | SerializedElement
  | { type: typeof NodeType.Text; textContent: string; isStyle?: true; id: number }
  | { type: typeof NodeType.DocumentType; name: string; publicId: string; systemId: string; id: number }
  | { type: typeof NodeType.Document; childNodes: SerializedNode[]; id: number };

/** Where random image data goes in an event's JSON; vocabulary and ids never contain it. */
const IMAGE_MARK = '@image@';
const IMAGE_PREFIXES = ['data:image/jpeg;base64,', 'data:image/png;base64,', 'data:image/webp;base64,'];
const VIEWPORTS = [[1280, 800], [1440, 900], [1920, 1080], [1366, 768], [1536, 864], [390, 844], [412, 915]] as const;

/** Uniform in [0, 1) from one 32-bit draw: plenty to pick words and pixels, at half the cost of `uniform`. */
const unit = (rng: RandomGenerator): number => (rng.next() >>> 0) * 2 ** -32;
const between = (rng: RandomGenerator, min: number, max: number): number => min + Math.floor(unit(rng) * (max - min + 1));
const pick = <T>(rng: RandomGenerator, items: readonly T[]): T => items[Math.floor(unit(rng) * items.length)]!;

let vocabulary: string[] | undefined;
/** Plain lower-case English words from faker's lists, loaded on first use. */
function words(): string[] {
  if (vocabulary) return vocabulary;
  const { adjective = [], noun = [], verb = [], adverb = [] } = faker.definitions.word;
  vocabulary = [...adjective, ...noun, ...verb, ...adverb].filter((word) => /^[a-z]+(-[a-z]+)*$/.test(word));
  return vocabulary;
}

function phrase(rng: RandomGenerator, minWords: number, maxWords: number): string {
  const vocabulary = words();
  const count = between(rng, minWords, maxWords);
  let text = pick(rng, vocabulary);
  for (let word = 1; word < count; word++) text += ` ${pick(rng, vocabulary)}`;
  return text;
}

function sentence(rng: RandomGenerator): string {
  const text = phrase(rng, 4, 16);
  return `${text[0]!.toUpperCase()}${text.slice(1)}.`;
}

const className = (rng: RandomGenerator) => `${pick(rng, words())}-${pick(rng, words())}`;
const color = (rng: RandomGenerator) => `hsl(${between(rng, 0, 359)}, ${between(rng, 20, 90)}%, ${between(rng, 15, 85)}%)`;
const CSS_PROPERTIES: ((rng: RandomGenerator) => string)[] = [
  (rng) => `color: ${color(rng)}`,
  (rng) => `background: ${color(rng)}`,
  (rng) => `margin: ${between(rng, 0, 32)}px ${between(rng, 0, 32)}px`,
  (rng) => `padding: ${between(rng, 0, 24)}px`,
  (rng) => `display: ${pick(rng, ['flex', 'grid', 'block', 'inline-block', 'none'])}`,
  (rng) => `font-size: ${between(rng, 10, 40)}px`,
  (rng) => `border: 1px solid ${color(rng)}`,
  (rng) => `gap: ${between(rng, 2, 24)}px`,
  (rng) => `max-width: ${between(rng, 200, 1400)}px`,
];

/** CSS rules of about `chars` characters. */
function stylesheet(rng: RandomGenerator, chars: number): string {
  const rules: string[] = [];
  let length = 0;
  while (length < chars) {
    const declarations = Array.from({ length: between(rng, 1, 5) }, () => pick(rng, CSS_PROPERTIES)(rng));
    const rule = `.${className(rng)} { ${declarations.join('; ')}; }`;
    rules.push(rule);
    length += rule.length;
  }
  return rules.join('');
}

interface PageNode {
  parentId: number;
  childIds: number[];
  /** null for a text node. */
  tagName: string | null;
  /** Under <body>: a node events may touch. */
  inBody: boolean;
}

/**
 * One window's page as rrweb's mirror of it: which node ids exist and where.
 * Serialized nodes are built through it so every id is registered, and the
 * incremental events drawn from it only refer to nodes that exist.
 *
 * @example
 * const page = new Page();
 * const html = page.element(page.document().id, 'html', {});
 */
export class Page {
  private readonly nodes = new Map<number, PageNode>();
  private nextId = 1;
  /** Nodes events may pick; ids removed since are dropped as they are met. */
  private readonly candidates = { element: [] as number[], text: [] as number[], input: [] as number[], image: [] as number[] };
  /** About how many characters of JSON the nodes built so far take. */
  builtChars = 0;
  bodyId = 0;

  has(id: number): boolean {
    return this.nodes.has(id);
  }

  document(): Extract<SerializedNode, { type: 0 }> {
    return { type: NodeType.Document, childNodes: [], id: this.register(0, '#document') };
  }

  doctype(parent: { childNodes: SerializedNode[]; id: number }): void {
    parent.childNodes.push({ type: NodeType.DocumentType, name: 'html', publicId: '', systemId: '', id: this.register(parent.id, '!doctype') });
  }

  /** A new element under `parentId`, registered; the caller places it in the tree. */
  element(parentId: number, tagName: string, attributes: Attributes): SerializedElement {
    for (const [key, value] of Object.entries(attributes)) this.builtChars += key.length + String(value).length + 6;
    const id = this.register(parentId, tagName);
    return { type: NodeType.Element, tagName, attributes, childNodes: [], id };
  }

  /** A new element appended to `parent`'s children. */
  child(parent: SerializedElement, tagName: string, attributes: Attributes = {}): SerializedElement {
    const element = this.element(parent.id, tagName, attributes);
    parent.childNodes.push(element);
    return element;
  }

  /** A new text node appended to `parent`'s children. */
  text(parent: SerializedElement, textContent: string, isStyle = false): void {
    const id = this.register(parent.id, null);
    this.builtChars += textContent.length;
    parent.childNodes.push(isStyle ? { type: NodeType.Text, textContent, isStyle: true, id } : { type: NodeType.Text, textContent, id });
  }

  /** Removes a node and everything under it. */
  remove(id: number): void {
    const node = this.nodes.get(id);
    if (!node) return;
    const siblings = this.nodes.get(node.parentId)?.childIds;
    siblings?.splice(siblings.indexOf(id), 1);
    const stack = [id];
    while (stack.length > 0) {
      const next = stack.pop()!;
      stack.push(...(this.nodes.get(next)?.childIds ?? []));
      this.nodes.delete(next);
    }
  }

  parentOf(id: number): number {
    return this.nodes.get(id)!.parentId;
  }

  /** A random existing node of the kind under <body>, if there is one. */
  pick(rng: RandomGenerator, kind: keyof Page['candidates']): number | undefined {
    const pool = this.candidates[kind];
    while (pool.length > 0) {
      const at = Math.floor(unit(rng) * pool.length);
      const id = pool[at]!;
      if (this.nodes.has(id)) return id;
      pool[at] = pool[pool.length - 1]!; // drop a removed id: swap in the last, shorten
      pool.pop();
    }
    return undefined;
  }

  private register(parentId: number, tagName: string | null): number {
    const id = this.nextId++;
    const parent = this.nodes.get(parentId);
    const inBody = parent !== undefined && (parent.inBody || parentId === this.bodyId);
    this.nodes.set(id, { parentId, childIds: [], tagName, inBody });
    parent?.childIds.push(id);
    this.builtChars += 40 + (tagName?.length ?? 0);
    if (inBody) {
      if (tagName === null) this.candidates.text.push(id);
      else this.candidates.element.push(id);
      if (tagName === 'input' || tagName === 'textarea') this.candidates.input.push(id);
      if (tagName === 'img') this.candidates.image.push(id);
    }
    return id;
  }
}

/** An rrweb event as JSON text, split where random image data goes: parts[0] image parts[1] image ... */
export interface EventText {
  parts: string[];
  /** Relative sizes of the images, drawn with the page. */
  imageWeights: number[];
  /** Characters of each image's data, set when the snapshot is sized. */
  imageChars: number[];
}

/** An rrweb event of any kind, as recorded. */
interface RrwebEvent {
  type: number;
  data: object;
  timestamp: number;
}

function eventText(rng: RandomGenerator, event: RrwebEvent): EventText {
  const parts = JSON.stringify(event).split(IMAGE_MARK);
  const imageWeights = parts.slice(1).map(() => 0.2 + unit(rng));
  return { parts, imageWeights, imageChars: imageWeights.map(() => 0) };
}

/** An inline image: random data fills the mark when the snapshot is sized. */
function imageAttributes(rng: RandomGenerator): Attributes {
  return {
    alt: phrase(rng, 1, 4),
    width: String(between(rng, 16, 800)),
    height: String(between(rng, 16, 600)),
    src: imageSource(rng),
  };
}

const imageSource = (rng: RandomGenerator) => pick(rng, IMAGE_PREFIXES) + IMAGE_MARK;

/** Pages with less structure than this have no stylesheets, navigation or footer. */
const FURNISHED_PAGE_CHARS = 3000;

/** Blocks of a page's <main>, each building a few nodes. */
const SECTION_BLOCKS: ((page: Page, rng: RandomGenerator, section: SerializedElement) => void)[] = [
  (page, rng, section) => {
    for (let paragraph = between(rng, 1, 3); paragraph > 0; paragraph--) {
      const p = page.child(section, 'p');
      page.text(p, Array.from({ length: between(rng, 1, 4) }, () => sentence(rng)).join(' '));
      if (unit(rng) < 0.3) page.text(page.child(p, 'a', { href: `/${pick(rng, words())}` }), phrase(rng, 1, 3));
    }
  },
  (page, rng, section) => {
    const list = page.child(section, 'ul', { class: className(rng) });
    for (let item = between(rng, 2, 7); item > 0; item--) page.text(page.child(list, 'li'), sentence(rng));
  },
  (page, rng, section) => {
    const figure = page.child(section, 'figure');
    page.child(figure, 'img', imageAttributes(rng));
    page.text(page.child(figure, 'figcaption'), sentence(rng));
  },
  (page, rng, section) => {
    const form = page.child(section, 'form', { action: `/${pick(rng, words())}`, method: 'post' });
    page.text(page.child(form, 'label', { for: 'name' }), phrase(rng, 1, 2));
    page.child(form, 'input', { type: 'text', name: pick(rng, words()), value: '' });
    page.child(form, 'textarea', { name: pick(rng, words()), rows: '4' });
    page.text(page.child(form, 'button', { type: 'submit' }), phrase(rng, 1, 2));
  },
  (page, rng, section) => {
    const cards = page.child(section, 'div', { class: 'cards' });
    for (let card = between(rng, 2, 4); card > 0; card--) {
      const div = page.child(cards, 'div', { class: `card ${className(rng)}`, style: `color: ${color(rng)}` });
      page.text(page.child(div, 'h3'), phrase(rng, 1, 4));
      page.text(page.child(div, 'p'), sentence(rng));
    }
  },
];

/**
 * A page load, as rrweb records it: a Meta event, then a FullSnapshot of a
 * new page (ids from 1, as rrweb numbers a new document) whose structure
 * (head with styles, body with header, sections, footer) takes about
 * `structureChars` characters of JSON, with inline images marked for data.
 */
export function loadPage(rng: RandomGenerator, structureChars: number, href: string, viewport: readonly [number, number], atMs: number): { page: Page; events: RrwebEvent[] } {
  const page = new Page();
  const document = page.document();
  page.doctype(document);
  const html = page.element(document.id, 'html', { lang: 'en' });
  document.childNodes.push(html);
  const head = page.child(html, 'head');
  page.child(head, 'meta', { charset: 'utf-8' });
  page.text(page.child(head, 'title'), phrase(rng, 2, 5));
  // A page of a few hundred bytes is bare; anything larger has the usual furniture.
  const furnished = structureChars >= FURNISHED_PAGE_CHARS;
  if (furnished) {
    page.child(head, 'meta', { name: 'viewport', content: 'width=device-width, initial-scale=1' });
    // Stylesheets take about a quarter of a page's structure, as rrweb inlines them.
    page.child(head, 'link', { rel: 'stylesheet', href: `/static/${pick(rng, words())}.css`, _cssText: stylesheet(rng, structureChars / 8) });
    page.text(page.child(head, 'style'), stylesheet(rng, structureChars / 8), true);
    page.child(head, 'script', { src: `/static/${pick(rng, words())}.js`, defer: '' });
  }
  const body = page.child(html, 'body', { class: className(rng) });
  page.bodyId = body.id;
  const header = page.child(body, 'header');
  page.child(header, 'img', { class: 'logo', ...imageAttributes(rng) });
  if (furnished) {
    const nav = page.child(page.child(header, 'nav'), 'ul');
    for (let link = between(rng, 3, 7); link > 0; link--) {
      page.text(page.child(page.child(nav, 'li'), 'a', { href: `/${pick(rng, words())}` }), phrase(rng, 1, 2));
    }
  }
  const main = page.child(body, 'main');
  while (page.builtChars < structureChars) {
    const section = page.child(main, 'section', { id: className(rng) });
    page.text(page.child(section, 'h2'), phrase(rng, 2, 6));
    for (let block = between(rng, 1, 3); block > 0; block--) pick(rng, SECTION_BLOCKS)(page, rng, section);
  }
  if (furnished) page.text(page.child(page.child(body, 'footer'), 'p'), sentence(rng));
  const [width, height] = viewport;
  return {
    page,
    events: [
      { type: EventType.Meta, data: { href, width, height }, timestamp: atMs },
      { type: EventType.FullSnapshot, data: { node: document, initialOffset: { left: 0, top: 0 } }, timestamp: atMs + 1 },
    ],
  };
}

/**
 * A mutation that loads an image: a new `src` for an image on the page (a
 * carousel, a lazy-loaded picture), or a new image where there is none.
 */
export function imageMutation(page: Page, rng: RandomGenerator, atMs: number): RrwebEvent {
  const id = page.pick(rng, 'image');
  if (id !== undefined) return mutationEvent({ texts: [], attributes: [{ id, attributes: { src: imageSource(rng) } }], removes: [], adds: [] }, atMs);
  const parentId = page.pick(rng, 'element') ?? page.bodyId;
  const node = page.element(parentId, 'img', imageAttributes(rng));
  return mutationEvent({ texts: [], attributes: [], removes: [], adds: [{ parentId, nextId: null, node }] }, atMs);
}

function mutationEvent(mutation: { texts: object[]; attributes: object[]; removes: object[]; adds: object[] }, atMs: number): RrwebEvent {
  return { type: EventType.IncrementalSnapshot, data: { source: IncrementalSource.Mutation, ...mutation }, timestamp: atMs };
}

/** A small subtree a script might add: a list item, a message, a card. */
function addedSubtree(page: Page, rng: RandomGenerator, parentId: number): SerializedElement {
  const tag = pick(rng, ['li', 'div', 'p', 'span']);
  const node = page.element(parentId, tag, unit(rng) < 0.5 ? { class: className(rng) } : {});
  page.text(node, sentence(rng));
  if (tag === 'div' && unit(rng) < 0.5) page.text(page.child(node, 'button', { type: 'button' }), phrase(rng, 1, 2));
  return node;
}

/** Removes, then adds, then text and attribute changes: the order rrweb applies them in. */
function mutation(page: Page, rng: RandomGenerator, atMs: number): RrwebEvent {
  const removes: { parentId: number; id: number }[] = [];
  for (let count = between(rng, 0, 2); count > 0; count--) {
    const id = page.pick(rng, unit(rng) < 0.5 ? 'element' : 'text');
    if (id === undefined) break;
    removes.push({ parentId: page.parentOf(id), id });
    page.remove(id);
  }
  const adds: { parentId: number; nextId: null; node: SerializedElement }[] = [];
  for (let count = between(rng, removes.length === 0 ? 1 : 0, 3); count > 0; count--) {
    const parentId = page.pick(rng, 'element') ?? page.bodyId;
    adds.push({ parentId, nextId: null, node: addedSubtree(page, rng, parentId) });
  }
  const texts: { id: number; value: string }[] = [];
  for (let count = between(rng, 0, 2); count > 0; count--) {
    const id = page.pick(rng, 'text');
    if (id !== undefined) texts.push({ id, value: sentence(rng) });
  }
  const attributes: { id: number; attributes: Attributes }[] = [];
  for (let count = between(rng, 0, 2); count > 0; count--) {
    const id = page.pick(rng, 'element');
    if (id !== undefined) attributes.push({ id, attributes: unit(rng) < 0.5 ? { class: className(rng) } : { style: `color: ${color(rng)}` } });
  }
  return mutationEvent({ texts, attributes, removes, adds }, atMs);
}

/** One incremental event of user activity at `atMs` on nodes that exist. */
function activityEvent(page: Page, rng: RandomGenerator, viewport: readonly [number, number], atMs: number, light: boolean): RrwebEvent {
  const [width, height] = viewport;
  const target = () => page.pick(rng, 'element') ?? page.bodyId;
  // Light activity (a batch of a few hundred bytes) is a click, a scroll or a few mouse positions.
  const roll = light ? 0.2 + unit(rng) * 0.5 : unit(rng);
  let data: object;
  let input: number | undefined;
  if (roll < 0.35) {
    const count = between(rng, 1, light ? 3 : 12);
    const positions = Array.from({ length: count }, (_, at) => ({
      x: between(rng, 0, width), y: between(rng, 0, height), id: target(), timeOffset: (at - count + 1) * between(rng, 10, 60),
    }));
    data = { source: IncrementalSource.MouseMove, positions };
  } else if (roll < 0.55) {
    data = { source: IncrementalSource.MouseInteraction, type: pick(rng, MOUSE_INTERACTIONS), id: target(), x: between(rng, 0, width), y: between(rng, 0, height) };
  } else if (roll < 0.7) {
    data = { source: IncrementalSource.Scroll, id: unit(rng) < 0.7 ? 1 : target(), x: 0, y: between(rng, 0, 8000) };
  } else if (roll < 0.8 && (input = page.pick(rng, 'input')) !== undefined) {
    data = { source: IncrementalSource.Input, text: phrase(rng, 1, 8), isChecked: false, id: input };
  } else if (roll < 0.82) {
    data = { source: IncrementalSource.ViewportResize, width: between(rng, 320, 2560), height: between(rng, 480, 1440) };
  } else {
    return mutation(page, rng, atMs);
  }
  return { type: EventType.IncrementalSnapshot, data, timestamp: atMs };
}

/** About how many characters an activity event's JSON takes, to spread timestamps. */
const TYPICAL_ACTIVITY_EVENT_CHARS = 200;
/** Below this many characters to go, only light events (a mutation can take a thousand). */
const LIGHT_ACTIVITY_CHARS = 800;

/**
 * User activity between `fromMs` and `toMs`: mouse moves, clicks, scrolls,
 * input and mutations, about `chars` characters of JSON, at increasing times.
 */
export function activity(page: Page, rng: RandomGenerator, chars: number, viewport: readonly [number, number], fromMs: number, toMs: number, text: (event: RrwebEvent) => EventText): EventText[] {
  const events: EventText[] = [];
  const step = (toMs - fromMs) / (chars / TYPICAL_ACTIVITY_EVENT_CHARS + 1);
  let length = 0;
  do {
    const atMs = Math.min(toMs, Math.floor(fromMs + (events.length + 1) * step));
    const event = text(activityEvent(page, rng, viewport, atMs, chars - length < LIGHT_ACTIVITY_CHARS));
    events.push(event);
    length += event.parts[0]!.length + 1;
  } while (length < chars);
  return events;
}

// ---------------------------------------------------------------------------
// Encode payloads, sizing: a session's recorded events brought to each
// snapshot's planned size, as JSON or as gzip-base64.
// ---------------------------------------------------------------------------

/**
 * Of a full snapshot's JSON, the share that is page structure rather than
 * image data; of an incremental one's, the share that is activity rather than
 * a lazy-loaded image. Images are what make real snapshots large and poorly
 * compressible, and sizing by them is exact.
 */
const STRUCTURE_SHARE = { full: 0.1, incremental: 0.2 } as const;
/**
 * Level-1 gzip of UTF-16 event JSON, bytes per character (measured: 0.36 for
 * large batches to 0.65 for the smallest): a high guess, so that the text and
 * earlier images rarely take bytes the last image needs.
 */
const TEXT_BYTES_PER_CHAR = 0.45;
/** Deflated random letters take a byte each (see `letterCode`). */
const IMAGE_BYTES_PER_CHAR = 1;
/** Below this many bytes left, an incremental snapshot gets no image: its text alone is as close as it gets. */
const MIN_IMAGE_EVENT_BYTES = 160;

/**
 * Records a session's windows as rrweb would: one page per window, replaced
 * by each full snapshot (a page load) and changed by each incremental one.
 * Draws from the session's own content stream; each snapshot's image data
 * comes from a keystream of its own.
 *
 * @example
 * const recorder = new Recorder(config, session);
 * const events = recorder.record(plan[0], 20000); // Meta and FullSnapshot of a new page
 */
export class Recorder {
  private readonly rng: RandomGenerator;
  private readonly windows = new Map<number, { page: Page; viewport: readonly [number, number] }>();

  constructor(config: Config, private readonly session: Session) {
    this.rng = sessionStream(config.seed, session.index, 'content');
  }

  /** The snapshot's events, with about `textChars` characters of JSON besides image data. */
  record(snapshot: PlannedSnapshot, textChars: number): EventText[] {
    const text = (event: RrwebEvent) => eventText(this.rng, event);
    if (snapshot.kind === 'full') {
      const viewport = this.windows.get(snapshot.window)?.viewport ?? pick(this.rng, VIEWPORTS);
      const href = `${this.session.siteUrl}/${pick(this.rng, words())}`;
      const { page, events } = loadPage(this.rng, textChars, href, viewport, snapshot.firstEventMs);
      this.windows.set(snapshot.window, { page, viewport });
      return events.map(text);
    }
    const { page, viewport } = this.windows.get(snapshot.window)!;
    return activity(page, this.rng, textChars, viewport, snapshot.firstEventMs, snapshot.sentAtMs - 1, text);
  }

  /** One more event adding a lazy-loaded image to the snapshot's window, at its end. */
  imageEvent(snapshot: PlannedSnapshot): EventText {
    return eventText(this.rng, imageMutation(this.windows.get(snapshot.window)!.page, this.rng, snapshot.sentAtMs));
  }
}

/**
 * The random bytes behind snapshot `ordinal`'s image data: a keystream of its
 * own, so how much one snapshot draws never shifts another's.
 */
export function imageRandom(seed: number, session: number, ordinal: number): (bytes: number) => Buffer {
  return sessionBytes(seed, session, `images/${ordinal}`);
}

/** Characters of the events as a JSON array, images included. */
export function jsonLength(events: readonly EventText[]): number {
  let length = 1 + events.length; // brackets and commas
  for (const event of events) {
    for (const part of event.parts) length += part.length;
    for (const chars of event.imageChars) length += chars;
  }
  return length;
}

/** Shares `total` characters out among the events' images by their weights. */
function shareImageChars(events: readonly EventText[], total: number): void {
  const weights = events.flatMap((event) => event.imageWeights);
  const sum = weights.reduce((a, b) => a + b, 0);
  let given = 0;
  let seen = 0;
  for (const event of events) {
    event.imageChars = event.imageWeights.map((weight) => {
      seen += weight;
      // Cumulative rounding: the shares add up to exactly `total`.
      const upTo = Math.round((total * seen) / sum);
      const chars = upTo - given;
      given = upTo;
      return chars;
    });
  }
}

/** The events as JSON text, image data drawn in order from `imageData`. */
export function renderEvents(events: readonly EventText[], imageData: (chars: number) => string): string {
  return `[${events.map((event) => renderEvent(event, imageData)).join(',')}]`;
}

function renderEvent(event: EventText, imageData: (chars: number) => string): string {
  let text = event.parts[0]!;
  for (let image = 0; image < event.imageChars.length; image++) text += imageData(event.imageChars[image]!) + event.parts[image + 1]!;
  return text;
}

/**
 * A snapshot's events whose JSON takes `targetChars` characters (or as few
 * as its smallest form, for tiny targets): page or activity text first, then
 * image data for the rest. `maxEventChars` caps each event; images that do not
 * fit go into events of their own that add them after the page loads.
 */
export function eventsOfLength(recorder: Recorder, snapshot: PlannedSnapshot, targetChars: number, maxEventChars = Infinity): { events: EventText[]; spread: boolean } {
  // Half the cap: escaping for a `data` string can double the text (never the images).
  const events = recorder.record(snapshot, Math.min(targetChars * STRUCTURE_SHARE[snapshot.kind], maxEventChars / 2));
  if (snapshot.kind === 'incremental') events.push(recorder.imageEvent(snapshot));
  shareImageChars(events, Math.max(0, targetChars - jsonLength(events)));
  let overflow = 0;
  for (const event of Number.isFinite(maxEventChars) ? events : []) {
    // Trim the event's images, last first, until it fits.
    let excess = escapedLength(event) - maxEventChars;
    for (let image = event.imageChars.length - 1; image >= 0 && excess > 0; image--) {
      const cut = Math.min(excess, event.imageChars[image]!);
      event.imageChars[image]! -= cut;
      overflow += cut;
      excess -= cut;
    }
  }
  const spread = overflow > 0;
  while (overflow > 0) {
    const event = recorder.imageEvent(snapshot);
    const ownChars = jsonLength([event]) - 1; // what it adds to the snapshot besides its image: its text and a comma
    event.imageChars = [Math.max(0, Math.min(overflow - ownChars, maxEventChars - escapedLength(event)))];
    overflow -= ownChars + event.imageChars[0]!;
    events.push(event);
  }
  return { events, spread };
}

/** Characters of the event's JSON once escaped to sit in a `data` string; image data needs no escaping. */
function escapedLength(event: EventText): number {
  let length = 0;
  for (const part of event.parts) length += escapeInData(part).length;
  for (const chars of event.imageChars) length += chars;
  return length;
}

const gzip = {
  header: Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]), // deflate, no name, no time, unknown OS
  /** The empty final block that ends a deflate stream whose blocks were flushed. */
  end: Buffer.from([0x03, 0x00]),
  trailerBytes: 8,
  bom: Buffer.from([0xff, 0xfe]),
  /** What a member takes besides its deflate blocks: header, final block, trailer. */
  get frameBytes(): number {
    return this.header.length + this.end.length + this.trailerBytes;
  },
};
const TEXT_DEFLATE = { level: 1, finishFlush: zlibConstants.Z_SYNC_FLUSH };
/** Short text between images is stored, not compressed: a call to zlib costs about 10 µs whatever its size. */
const MIN_DEFLATED_TEXT_BYTES = 256;

/** UTF-16 text for a deflate stream: level 1, or for short text a stored block (5 bytes more than the text). */
function deflateText(plain: Buffer, first: boolean): Buffer {
  if (first || plain.length >= MIN_DEFLATED_TEXT_BYTES) return deflateRawSync(plain, TEXT_DEFLATE);
  const header = Buffer.alloc(5); // not last, stored, byte-aligned after a flush; LEN and NLEN
  header.writeUInt16LE(plain.length, 1);
  header.writeUInt16LE(~plain.length & 0xffff, 3);
  return Buffer.concat([header, plain]);
}

/** Writes bits least significant first, as deflate packs them. */
class BitWriter {
  readonly bytes: number[] = [];
  /** Bits not yet making a whole byte, and how many. */
  pending = 0;
  pendingBits = 0;

  write(value: number, bits: number): void {
    this.pending |= value << this.pendingBits;
    this.pendingBits += bits;
    while (this.pendingBits >= 8) {
      this.bytes.push(this.pending & 0xff);
      this.pending >>>= 8;
      this.pendingBits -= 8;
    }
  }

  /** A Huffman code, which deflate writes most significant bit first. */
  code(code: number, length: number): void {
    for (let bit = length - 1; bit >= 0; bit--) this.write((code >> bit) & 1, 1);
  }
}

/** Canonical Huffman codes for code lengths (RFC 1951, 3.2.2). */
function canonicalCodes(lengths: readonly number[]): number[] {
  const count = new Array<number>(16).fill(0);
  for (const length of lengths) if (length) count[length]!++;
  const next = new Array<number>(16).fill(0);
  let code = 0;
  for (let bits = 1; bits < 16; bits++) next[bits] = code = (code + count[bits - 1]!) << 1;
  return lengths.map((length) => (length ? next[length]!++ : 0));
}

/** Huffman code lengths for symbol frequencies, merging the two lightest until one tree is left. */
function huffmanLengths(frequencies: readonly number[]): number[] {
  const lengths = frequencies.map(() => 0);
  const trees = frequencies.flatMap((weight, symbol) => (weight > 0 ? [{ weight, symbols: [symbol] }] : []));
  while (trees.length > 1) {
    trees.sort((a, b) => a.weight - b.weight || a.symbols[0]! - b.symbols[0]!);
    const [a, b] = trees.splice(0, 2) as [(typeof trees)[0], (typeof trees)[0]];
    for (const symbol of [...a.symbols, ...b.symbols]) lengths[symbol]!++;
    trees.push({ weight: a.weight + b.weight, symbols: [...a.symbols, ...b.symbols] });
  }
  return lengths;
}

/** Base64's letters but '/', which random image data draws from; why 63: see `letterCode`. */
const IMAGE_LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+';
/** The letter each random byte stands for (four letters come up 1/64 more often: 256 = 4 × 63 + 4). */
const LETTER_OF_BYTE = Uint8Array.from({ length: 256 }, (_, byte) => IMAGE_LETTERS.charCodeAt(byte % IMAGE_LETTERS.length));

/** Random image data as text: one letter per random byte. */
export function lettersOf(random: Buffer): string {
  const letters = Buffer.allocUnsafe(random.length);
  for (let at = 0; at < random.length; at++) letters[at] = LETTER_OF_BYTE[random[at]!]!;
  return letters.toString('latin1');
}

/**
 * A deflate code for random letters in UTF-16, as gzip's Huffman coder would
 * build for them, written directly because zlib takes 9 ns a character to
 * find it: the zero byte of every UTF-16 unit gets 1 bit, each of the 63
 * letters and end-of-block 7, a complete code. Every letter with its zero
 * byte is exactly one byte of output, so a block's size is known before it is
 * made; and the block's header is made a whole number of bytes, so each
 * letter's code is a byte looked up in a table. Built on first use.
 */
let letterCode: { header: Buffer; letterByte: Uint8Array; tail: Buffer } | undefined;

function buildLetterCode(): NonNullable<typeof letterCode> {
  // Length and distance codes declared but unused change only the header's length:
  // take the first counts of them that end the header on a byte boundary.
  for (let unusedLengths = 0; unusedLengths <= 29; unusedLengths++) {
    for (let unusedDistances = 0; unusedDistances <= 29; unusedDistances++) {
      const code = letterCodeDeclaring(unusedLengths, unusedDistances);
      if (code) return code;
    }
  }
  throw new Error('internal error: no header for the letter code ends on a byte boundary');
}

/** The letter code with unused codes declared (zero-length), if its header is whole bytes. */
function letterCodeDeclaring(unusedLengths: number, unusedDistances: number): NonNullable<typeof letterCode> | undefined {
  const literalLengths = new Array<number>(257 + unusedLengths).fill(0);
  literalLengths[0] = 1;
  for (const letter of IMAGE_LETTERS) literalLengths[letter.charCodeAt(0)] = 7;
  literalLengths[256] = 7;
  const literalCodes = canonicalCodes(literalLengths);
  // No distances are used; one code of one bit says so.
  const distanceLengths = [1, ...new Array<number>(unusedDistances).fill(0)];

  // The code lengths, run-length coded: 16 repeats the previous length 3-6 times, 17 and 18 are runs of zeros.
  const lengths = [...literalLengths, ...distanceLengths];
  const runs: [symbol: number, extra: number, extraBits: number][] = [];
  for (let at = 0; at < lengths.length; ) {
    const value = lengths[at]!;
    let run = 1;
    while (lengths[at + run] === value) run++;
    at += run;
    if (value === 0) {
      for (; run >= 11; run -= Math.min(run, 138)) runs.push([18, Math.min(run, 138) - 11, 7]);
      if (run >= 3) runs.push([17, run - 3, 3]);
      else for (; run > 0; run--) runs.push([0, 0, 0]);
    } else {
      runs.push([value, 0, 0]);
      for (run--; run >= 3; run -= Math.min(run, 6)) runs.push([16, Math.min(run, 6) - 3, 2]);
      for (; run > 0; run--) runs.push([value, 0, 0]);
    }
  }
  const frequencies = new Array<number>(19).fill(0);
  for (const [symbol] of runs) frequencies[symbol]!++;
  const runLengths = huffmanLengths(frequencies);
  const runCodes = canonicalCodes(runLengths);
  const order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
  let sent = order.length;
  while (runLengths[order[sent - 1]!] === 0) sent--;

  const header = new BitWriter();
  header.write(0, 1); // not the last block
  header.write(2, 2); // dynamic Huffman codes
  header.write(literalLengths.length - 257, 5);
  header.write(distanceLengths.length - 1, 5);
  header.write(sent - 4, 4);
  for (const symbol of order.slice(0, sent)) header.write(runLengths[symbol]!, 3);
  for (const [symbol, extra, extraBits] of runs) {
    header.code(runCodes[symbol]!, runLengths[symbol]!);
    header.write(extra, extraBits);
  }
  if (header.pendingBits !== 0) return undefined;

  const reversed = (code: number, length: number) => {
    let bits = 0;
    for (let bit = 0; bit < length; bit++) bits |= ((code >> bit) & 1) << (length - 1 - bit);
    return bits;
  };
  const zeroByte = reversed(literalCodes[0]!, 1) << 7;
  const letterByte = Uint8Array.from(LETTER_OF_BYTE, (letter) => reversed(literalCodes[letter]!, 7) | zeroByte);
  const tail = new BitWriter();
  tail.code(literalCodes[256]!, 7); // end of block
  tail.write(0, 3); // then an empty stored block, as zlib's sync flush ends: not last, stored...
  tail.write(0, 8 - tail.pendingBits); // ...to the byte...
  return { header: Buffer.from(header.bytes), letterByte, tail: Buffer.from([...tail.bytes, 0x00, 0x00, 0xff, 0xff]) }; // ...LEN 0, NLEN
}

/** Bytes a block of `letters` random letters takes: its header, one a letter, its end. */
function letterBlockBytes(letters: number): number {
  letterCode ??= buildLetterCode();
  return letterCode.header.length + letters + letterCode.tail.length;
}

/** Scratch UTF-16 text of letters for their checksum; odd bytes stay zero. */
const letterText = Buffer.alloc(2 * 32768);

/**
 * Writes a deflate block of random letters, one per byte of `random`, into
 * `target` at `offset`, ending at a flush point. Returns the checksum of the
 * letters' UTF-16 text continued from `crc`.
 */
function writeLetterBlock(random: Buffer, target: Buffer, offset: number, crc: number): number {
  letterCode ??= buildLetterCode();
  const { header, letterByte, tail } = letterCode;
  target.set(header, offset);
  let at = offset + header.length;
  for (let start = 0; start < random.length; start += letterText.length / 2) {
    const end = Math.min(random.length, start + letterText.length / 2);
    for (let letter = start; letter < end; letter++) {
      const byte = random[letter]!;
      letterText[2 * (letter - start)] = LETTER_OF_BYTE[byte]!;
      target[at++] = letterByte[byte]!;
    }
    crc = crc32(letterText.subarray(0, 2 * (end - start)), crc);
  }
  target.set(tail, at);
  return crc;
}

/**
 * Encodes events as PostHog's capture did: gzip of the UTF-16LE text (with
 * byte-order mark) of their JSON, `targetBytes` long. The deflate stream is a
 * series of blocks joined at flush points, each compressed once: the text
 * around images at level 1 (or stored, if short) first, so what it costs is
 * known; then each
 * image's random letters, coded as gzip would (a byte a letter) and sized to
 * its share of the bytes left, the last image to the byte.
 *
 * When the text alone takes more than `targetBytes`, the result is larger;
 * events without images come out as long as their text does.
 *
 * @example
 * gunzipSync(gzipEvents(events, 10_000, random)).subarray(2).toString('utf16le'); // the events' JSON
 */
export function gzipEvents(events: readonly EventText[], targetBytes: number, random: (bytes: number) => Buffer): Buffer {
  // The JSON text cut at each image: texts[k] comes before image k.
  const texts: string[] = ['['];
  events.forEach((event, at) => {
    texts[texts.length - 1] += (at > 0 ? ',' : '') + event.parts[0];
    texts.push(...event.parts.slice(1));
  });
  texts[texts.length - 1] += ']';
  const plainTexts = texts.map((text) => Buffer.from(text, 'utf16le'));
  plainTexts[0] = Buffer.concat([gzip.bom, plainTexts[0]!]);
  const deflatedTexts = plainTexts.map((text, at) => deflateText(text, at === 0));
  let left = targetBytes - gzip.frameBytes;
  for (const bytes of deflatedTexts) left -= bytes.length;

  const slots = events.flatMap((event) => event.imageWeights.map((weight, image) => ({ event, image, weight })));
  const totalWeight = slots.reduce((sum, slot) => sum + slot.weight, 0);
  const budget = left;
  const letters = slots.map(({ event, image, weight }, at) => {
    const bytes = at === slots.length - 1 ? left : Math.floor((budget * weight) / totalWeight);
    event.imageChars[image] = Math.max(0, bytes - letterBlockBytes(0));
    if (event.imageChars[image] > 0) left -= letterBlockBytes(event.imageChars[image]);
    return event.imageChars[image];
  });

  // The member, written in place: header, text and image blocks in order, end, trailer.
  const member = Buffer.allocUnsafe(targetBytes - left);
  member.set(gzip.header);
  let at = gzip.header.length;
  let crc = 0;
  let size = 0;
  plainTexts.forEach((text, index) => {
    member.set(deflatedTexts[index]!, at);
    at += deflatedTexts[index]!.length;
    crc = crc32(text, crc);
    size += text.length;
    const count = letters[index] ?? 0;
    if (count > 0) {
      crc = writeLetterBlock(random(count), member, at, crc);
      at += letterBlockBytes(count);
      size += 2 * count;
    }
  });
  member.set(gzip.end, at);
  member.writeUInt32LE(crc >>> 0, at + gzip.end.length);
  member.writeUInt32LE(size >>> 0, at + gzip.end.length + 4); // ISIZE: the length modulo 2^32
  return member;
}

/**
 * A snapshot's data for `--payload rrweb`: the gzip of its events, whose
 * base64 lands within 5% of `snapshot.size` characters (never below the
 * smallest batch of its kind). Call it in plan order: it records the events
 * of the snapshot's window.
 */
export function rrwebSnapshotData(recorder: Recorder, snapshot: PlannedSnapshot, random: (bytes: number) => Buffer): Buffer {
  const targetBytes = Math.floor((snapshot.size * 3) / 4);
  const fixedBytes = gzip.frameBytes + gzip.bom.length;
  const share = STRUCTURE_SHARE[snapshot.kind];
  // JSON characters for which text at TEXT_BYTES_PER_CHAR takes `share` of the bytes and images the rest.
  const jsonChars = (targetBytes - fixedBytes) / (share * TEXT_BYTES_PER_CHAR + (1 - share) * IMAGE_BYTES_PER_CHAR);
  const events = recorder.record(snapshot, share * jsonChars);
  // An image only where the bytes left for it are expected to be worth an event.
  if (snapshot.kind === 'incremental' && (1 - share) * targetBytes >= MIN_IMAGE_EVENT_BYTES) events.push(recorder.imageEvent(snapshot));
  return gzipEvents(events, targetBytes, random);
}

// ---------------------------------------------------------------------------
// Chunk: split each snapshot's data into messages that fit the limit, and
// frame them in each format's JSON: chunks of `$snapshot` data, batches of
// `$snapshot_items` events, vegeta targets.
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
const jsonInData = (value: unknown): string => escapeInData(json(value));
/** JSON text as it reads inside the `data` string. */
const escapeInData = (text: string): string => json(text).slice(1, -1);

/**
 * The message text around each message's data, for both Kafka formats: the
 * envelope keys in capture's order, `data` the JSON string of the event. The
 * session's own fields are escaped once, here; each message only splices in
 * fields that need no escaping, because JSON.stringify per message cost a
 * third of the run.
 *
 * @example
 * const frame = new MessageFrame(config, session);
 * frame.snapshotHead(fields) + base64 + frame.snapshotTail(fields); // a format-1 value
 */
export class MessageFrame {
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

  /** Format 1 up to the chunk's data: base64, which needs no escaping. */
  snapshotHead(chunk: ChunkFields): string {
    return (
      `${this.envelopeHead(chunk.uuid)}{\\"event\\":\\"$snapshot\\",\\"properties\\":{${this.properties},` +
      `\\"$window_id\\":\\"${chunk.windowId}\\",\\"$snapshot_data\\":{\\"chunk_id\\":\\"${chunk.chunkId}\\",` +
      `\\"chunk_index\\":${chunk.chunkIndex},\\"chunk_count\\":${chunk.chunkCount},\\"data\\":\\"`
    );
  }

  snapshotTail(chunk: ChunkFields): string {
    return `\\",\\"compression\\":\\"gzip-base64\\",\\"has_full_snapshot\\":${chunk.hasFullSnapshot}}}}${this.envelopeTail(chunk)}`;
  }

  /** Format 2 up to the events: their JSON, escaped once to sit in the `data` string. */
  itemsHead(fields: ItemsFields): string {
    return (
      `${this.envelopeHead(fields.uuid)}{\\"event\\":\\"$snapshot_items\\",\\"properties\\":{${this.properties},` +
      `\\"$window_id\\":\\"${fields.windowId}\\",\\"$snapshot_source\\":\\"web\\",\\"$lib\\":\\"web\\",\\"$snapshot_items\\":`
    );
  }

  itemsTail(fields: ItemsFields): string {
    return `}}${this.envelopeTail(fields)}`;
  }

  /** Bytes a message of `format` adds around its data, at most: for the longest chunk numbers possible. */
  maxEnvelopeBytes(format: Format): number {
    const widest: ChunkFields = {
      uuid: UUID_SHAPE, windowId: UUID_SHAPE, chunkId: UUID_SHAPE, chunkIndex: Number.MAX_SAFE_INTEGER,
      chunkCount: Number.MAX_SAFE_INTEGER, hasFullSnapshot: false, now: ISO_SHAPE, sentAt: ISO_SHAPE,
    };
    const [head, tail] = format === 'snapshot'
      ? [this.snapshotHead(widest), this.snapshotTail(widest)]
      : [this.itemsHead(widest), this.itemsTail(widest)];
    return Buffer.byteLength(head) + Buffer.byteLength(tail);
  }

  private envelopeHead(uuid: string): string {
    return `{"uuid":"${uuid}",${this.identity},"data":"`;
  }

  private envelopeTail(times: { now: string; sentAt: string }): string {
    return `","team_id":${this.teamId},"now":"${times.now}","sent_at":"${times.sentAt}","token":${this.token}}`;
  }
}

/** The per-message fields of format 2 besides its events. */
export type ItemsFields = Pick<ChunkFields, 'uuid' | 'windowId' | 'now' | 'sentAt'>;

const UUID_SHAPE = '00000000-0000-4000-8000-000000000000';
const ISO_SHAPE = '2000-01-01T00:00:00.000Z';

/** Longer than any site faker makes; a longer one would only shrink chunks, never break the limit. */
const MAX_SITE_URL_LENGTH = 100;
/** An items message must hold any single activity event and a small page. */
const MIN_EVENT_ROOM_BYTES = 8192;

/** The widest envelope any message of the run can have around its data: widest ip, long site, longest numbers. */
function maxEnvelopeBytes(config: Config): number {
  const widest: Session = {
    index: 0, sessionId: UUID_SHAPE, windowIds: [UUID_SHAPE], distinctId: UUID_SHAPE, ip: '255.255.255.255',
    siteUrl: `https://${'w'.repeat(MAX_SITE_URL_LENGTH - 8)}`,
  };
  return new MessageFrame(config, widest).maxEnvelopeBytes(config.format);
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
  /** On the first message of each snapshot: its kind and the size its data came to. */
  snapshot?: { kind: SnapshotKind; size: number };
}

/** A message's data when it is all in its head and tail. */
const NO_DATA: PayloadText = { writeNext() {} };

/** What a session's generation had to adjust, for --verbose; filled in as its messages are read. */
export interface SessionNotes {
  /** Snapshot-items snapshots whose images went into events of their own to fit --max-message-bytes. */
  imagesSpread: number;
}

/** A session's identity and plan, and its messages to be read once, in order. */
export interface SessionOutput {
  session: Session;
  plan: PlannedSnapshot[];
  messages: Iterable<Message>;
  notes: SessionNotes;
}

/**
 * Generates session `index`. Its messages must be consumed in order: each
 * one's data continues the session's payload and page streams.
 *
 * @example
 * for (const message of generateSession(config, 0).messages) process.stdout.write(renderLine(config, message));
 */
export function generateSession(config: Config, index: number): SessionOutput {
  const plan = planSnapshots(config, index);
  const session = sampleSession(config, index, 1 + Math.max(...plan.map((snapshot) => snapshot.window)));
  const notes: SessionNotes = { imagesSpread: 0 };
  const messages =
    config.format === 'snapshot' ? snapshotMessages(config, session, plan)
    : config.format === 'snapshot-items' ? itemsMessages(config, session, plan, notes)
    : vegetaTargets(config, session, plan);
  return { session, plan, messages, notes };
}

const DAY_MS = 86_400_000;
const twoDigits = (value: number) => (value < 10 ? `0${value}` : `${value}`);
let isoDay = { day: NaN, prefix: '' };

/**
 * `new Date(ms).toISOString()`, five times faster: two a message made it 5%
 * of a run. The date part is kept from the last call; the time is arithmetic.
 *
 * @example
 * isoString(1704067261234); // '2024-01-01T00:01:01.234Z'
 */
export function isoString(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  if (day !== isoDay.day) isoDay = { day, prefix: new Date(day * DAY_MS).toISOString().slice(0, 11) };
  const time = ms - day * DAY_MS;
  const millis = time % 1000;
  return (
    `${isoDay.prefix}${twoDigits(Math.floor(time / 3_600_000))}:${twoDigits(Math.floor(time / 60_000) % 60)}:` +
    `${twoDigits(Math.floor(time / 1000) % 60)}.${millis < 100 ? (millis < 10 ? '00' : '0') : ''}${millis}Z`
  );
}

/** Format 1: each snapshot's data (random text or rrweb gzip-base64) in chunks of one chunk_id. */
function* snapshotMessages(config: Config, session: Session, plan: PlannedSnapshot[]): Generator<Message> {
  const ids = sessionStream(config.seed, session.index, 'ids');
  const frame = new MessageFrame(config, session);
  const capacity = Math.min(config.chunkSize, config.maxMessageBytes - frame.maxEnvelopeBytes('snapshot'));
  const random = randomPayload(config, session.index);
  const recorder = config.payload === 'rrweb' ? new Recorder(config, session) : undefined;
  for (const [ordinal, snapshot] of plan.entries()) {
    const data = recorder
      ? base64Of(rrwebSnapshotData(recorder, snapshot, imageRandom(config.seed, session.index, ordinal)))
      : { text: random, length: snapshot.size };
    const fields: ChunkFields = {
      uuid: '',
      windowId: session.windowIds[snapshot.window]!,
      chunkId: uuid4(ids),
      chunkIndex: 0,
      chunkCount: Math.ceil(data.length / capacity),
      hasFullSnapshot: snapshot.kind === 'full',
      now: isoString(snapshot.receivedAtMs),
      sentAt: isoString(snapshot.sentAtMs),
    };
    for (let chunkIndex = 0; chunkIndex < fields.chunkCount; chunkIndex++) {
      fields.uuid = uuid4(ids);
      fields.chunkIndex = chunkIndex;
      yield {
        key: session.sessionId,
        head: frame.snapshotHead(fields),
        data: data.text,
        dataLength: Math.min(capacity, data.length - chunkIndex * capacity),
        tail: frame.snapshotTail(fields),
        ...(chunkIndex === 0 && { snapshot: { kind: snapshot.kind, size: data.length } }),
      };
    }
  }
}

/**
 * Format 2: each snapshot's rrweb events as JSON, as many to a message as fit
 * --max-message-bytes, split at event boundaries as capture splits batches.
 */
function* itemsMessages(config: Config, session: Session, plan: PlannedSnapshot[], notes: SessionNotes): Generator<Message> {
  const ids = sessionStream(config.seed, session.index, 'ids');
  const recorder = new Recorder(config, session);
  const frame = new MessageFrame(config, session);
  const room = config.maxMessageBytes - frame.maxEnvelopeBytes('snapshot-items') - 2; // 2: the list's brackets
  for (const [ordinal, snapshot] of plan.entries()) {
    const { events, spread } = eventsOfLength(recorder, snapshot, snapshot.size, room);
    if (spread) notes.imagesSpread++;
    const random = imageRandom(config.seed, session.index, ordinal);
    const images = (chars: number) => lettersOf(random(chars));
    const fields: ItemsFields = {
      uuid: '', windowId: session.windowIds[snapshot.window]!, now: isoString(snapshot.receivedAtMs), sentAt: isoString(snapshot.sentAtMs),
    };
    let first: Message['snapshot'] = { kind: snapshot.kind, size: jsonLength(events) };
    const message = (batch: string[]): Message => {
      fields.uuid = uuid4(ids);
      const head = frame.itemsHead(fields) + `[${batch.join(',')}]` + frame.itemsTail(fields);
      const result: Message = { key: session.sessionId, head, data: NO_DATA, dataLength: 0, tail: '', snapshot: first };
      first = undefined;
      return result;
    };
    let batch: string[] = [];
    let batchBytes = 0;
    for (const event of events) {
      const text = escapeInData(renderEvent(event, images));
      if (batch.length > 0 && batchBytes + 1 + text.length > room) {
        yield message(batch);
        batch = [];
        batchBytes = -1;
      }
      batch.push(text);
      batchBytes += 1 + text.length;
    }
    yield message(batch);
  }
}

/** Rust capture's limit on a recording request's body. */
const CAPTURE_MAX_BODY_BYTES = 25_000_000;
/** gzip level for vegeta bodies: level 1 keeps the generator ahead; the server reads any level alike. */
const BODY_GZIP = { level: 1 };

/**
 * Format 3: one vegeta target per snapshot (`vegeta attack -lazy
 * -format=json`), posting to --capture-url what posthog-js sends: a gzipped
 * JSON list holding one `$snapshot` event with the batch's rrweb events.
 * Targets have exactly vegeta's keys; the body is base64, as vegeta requires.
 */
function* vegetaTargets(config: Config, session: Session, plan: PlannedSnapshot[]): Generator<Message> {
  const recorder = new Recorder(config, session);
  const head = `{"method":"POST","url":${json(config.captureUrl)},"body":"`;
  const tail = '","header":{"Content-Type":["application/json"]}}';
  for (const [ordinal, snapshot] of plan.entries()) {
    // JSON compresses, so a batch of no more JSON than capture's limit has a body within it.
    const { events } = eventsOfLength(recorder, snapshot, Math.min(snapshot.size, CAPTURE_MAX_BODY_BYTES - 1000));
    const random = imageRandom(config.seed, session.index, ordinal);
    const snapshotData = renderEvents(events, (chars) => lettersOf(random(chars)));
    const properties =
      `{"token":${json(config.token)},"distinct_id":${json(session.distinctId)},"$session_id":${json(session.sessionId)},` +
      `"$window_id":${json(session.windowIds[snapshot.window])},"$snapshot_bytes":${snapshotData.length},"$snapshot_data":${snapshotData}}`;
    const body = base64Of(gzipSync(`[{"event":"$snapshot","properties":${properties}}]`, BODY_GZIP));
    yield { key: session.sessionId, head, data: body.text, dataLength: body.length, tail, snapshot: { kind: snapshot.kind, size: snapshotData.length } };
  }
}

// ---------------------------------------------------------------------------
// Emit lines: lay messages out as bytes and write them to stdout in large
// blocks, never a partial line; stop quietly when the reader goes away. Pace
// them for --rate, count them for --progress and --stats, pick the sessions
// of --shard.
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
  if (at - valueStart > maxValueBytes(config)) {
    throw new Error(`internal error: a line of ${at - valueStart} bytes exceeds its limit of ${maxValueBytes(config)}`);
  }
  target[at++] = 0x0a; // newline
  return at;
}

/** The most bytes a line's value may take: a Kafka message's limit, or for vegeta a target whose body capture accepts. */
export function maxValueBytes(config: Config): number {
  return config.format === 'vegeta' ? Math.ceil(CAPTURE_MAX_BODY_BYTES / 3) * 4 + 1000 : config.maxMessageBytes;
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

  /**
   * Adds a line of `bytes` bytes if it fits in the block being filled, and
   * says whether it did; if not, the caller awaits `addAfterFlush`. (Most
   * lines fit: awaiting for each would cost a tenth of the run.)
   */
  add(config: Config, message: Message, bytes: number): boolean {
    if (bytes > this.blocks[0].length - this.filled) return false;
    this.filled = writeLine(config, message, this.blocks[0], this.filled);
    return true;
  }

  /** Writes the filled block, then adds the line; a line longer than a block is written on its own. */
  async addAfterFlush(config: Config, message: Message, bytes: number): Promise<void> {
    await this.flush();
    if (this.add(config, message, bytes)) return;
    await this.inFlight;
    this.inFlight = this.writeAll(renderLine(config, message));
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

/** Block size: large writes amortize the system call; a block holds a whole Kafka message. */
const MIN_BLOCK_BYTES = 1 << 20;

const MB = 1e6;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Spaces messages at a steady rate: message k is written no sooner than k/rate
 * seconds after the first. A generator that falls behind (a slow reader, a
 * stall) does not burst to catch up by more than MAX_CATCH_UP_MS: a producer
 * under test sees an even stream.
 *
 * @example
 * const pacer = new Pacer(100);
 * for (const message of messages) { await pacer.wait(() => writer.flush()); await writer.add(...); }
 */
export class Pacer {
  private originMs = performance.now();
  private sent = 0;
  constructor(private readonly perSecond: number) {}

  /** Waits until the next message is due, first handing what is written so far (`flush`) to the reader. */
  async wait(flush: () => Promise<void>): Promise<void> {
    const dueMs = this.originMs + (this.sent++ * 1000) / this.perSecond;
    let nowMs = performance.now();
    if (nowMs - dueMs > MAX_CATCH_UP_MS) this.originMs += nowMs - dueMs - MAX_CATCH_UP_MS;
    if (dueMs > nowMs) await flush();
    // Timers count whole milliseconds and may round down: sleep until the due time has truly passed.
    for (; dueMs > nowMs; nowMs = performance.now()) await sleep(Math.ceil(dueMs - nowMs));
  }
}

const MAX_CATCH_UP_MS = 100;

/** Log-scale buckets: this many to a doubling, about 4.4% wide, so percentiles are that close. */
const BUCKETS_PER_DOUBLING = 16;

/**
 * The distribution of snapshot sizes in log-scale buckets: percentiles and a
 * histogram in flat memory, however long the run.
 */
export class SizeHistogram {
  count = 0;
  max = 0;
  readonly buckets = new Float64Array(BUCKETS_PER_DOUBLING * 64);

  add(size: number): void {
    this.count++;
    this.max = Math.max(this.max, size);
    this.buckets[SizeHistogram.bucketOf(size)]!++;
  }

  static bucketOf(size: number): number {
    return Math.max(0, Math.ceil(Math.log2(size) * BUCKETS_PER_DOUBLING));
  }

  /** The size below which a share `q` of sizes fall: a bucket's upper edge, never above the maximum. */
  quantile(q: number): number {
    let seen = 0;
    for (let bucket = 0; bucket < this.buckets.length; bucket++) {
      seen += this.buckets[bucket]!;
      if (seen >= q * this.count) return Math.min(this.max, Math.round(2 ** (bucket / BUCKETS_PER_DOUBLING)));
    }
    return this.max;
  }

  /** How many sizes fall in (2^(k-1), 2^k], for the histogram's doublings. */
  perDoubling(): number[] {
    const counts: number[] = [];
    this.buckets.forEach((count, bucket) => {
      const doubling = Math.ceil(bucket / BUCKETS_PER_DOUBLING);
      counts[doubling] = (counts[doubling] ?? 0) + count;
    });
    return counts;
  }
}

/** What a run wrote, for --progress and --stats. */
export class RunStats {
  sessions = 0;
  messages = 0;
  bytes = 0;
  readonly sizes = { full: new SizeHistogram(), incremental: new SizeHistogram() };
  private readonly startMs = performance.now();

  constructor(readonly totalSessions: number) {}

  get seconds(): number {
    return (performance.now() - this.startMs) / 1000;
  }

  /** One live line: sessions done of total, messages, MB, MB/s, time left. */
  progressLine(): string {
    const seconds = this.seconds;
    const left = this.sessions > 0 ? (seconds / this.sessions) * (this.totalSessions - this.sessions) : NaN;
    const eta = Number.isFinite(left) ? `${Math.floor(left / 60)}:${String(Math.round(left % 60)).padStart(2, '0')}` : '?';
    return `sessions ${this.sessions}/${this.totalSessions}, ${this.messages} messages, ${(this.bytes / MB).toFixed(1)} MB, ` +
      `${(this.bytes / MB / seconds).toFixed(1)} MB/s, ETA ${eta}`;
  }

  /** The --stats summary: totals, speed, per kind the count and size percentiles, and a histogram in 80 columns. */
  summary(): string {
    const seconds = this.seconds;
    const lines = [
      `sessions ${this.sessions}, messages ${this.messages}, bytes ${this.bytes} (${(this.bytes / MB).toFixed(1)} MB) in ${seconds.toFixed(2)} s`,
      `${(this.bytes / MB / seconds).toFixed(1)} MB/s, ${(this.messages / seconds).toFixed(0)} messages/s`,
      'snapshot sizes (characters of data; percentiles within 5%):',
      `  ${'kind'.padEnd(12)}${'count'.padStart(10)}${'p50'.padStart(11)}${'p90'.padStart(11)}${'p99'.padStart(11)}${'max'.padStart(11)}`,
    ];
    for (const [kind, sizes] of Object.entries(this.sizes)) {
      const cells = [0.5, 0.9, 0.99].map((q) => String(sizes.quantile(q)).padStart(11)).join('');
      lines.push(`  ${kind.padEnd(12)}${String(sizes.count).padStart(10)}${cells}${String(sizes.max).padStart(11)}`);
    }
    const full = this.sizes.full.perDoubling();
    const incremental = this.sizes.incremental.perDoubling();
    const doublings = [...full.keys(), ...incremental.keys()].filter((k) => (full[k] ?? 0) + (incremental[k] ?? 0) > 0);
    if (doublings.length > 0) {
      const label = (k: number) => `${shortSize(k === 0 ? 0 : 2 ** (k - 1))}-${shortSize(2 ** k)}`.padStart(11);
      const most = Math.max(...doublings.map((k) => (full[k] ?? 0) + (incremental[k] ?? 0)));
      const width = 80 - 11 - 2 - 1 - 10; // label, " |", a space, the count
      lines.push(`histogram of sizes (# full, = incremental):`);
      for (let k = Math.min(...doublings); k <= Math.max(...doublings); k++) {
        const [f, i] = [full[k] ?? 0, incremental[k] ?? 0];
        const bar = '#'.repeat(Math.round((f / most) * width)) + '='.repeat(Math.round((i / most) * width));
        lines.push(`${label(k)} |${bar.padEnd(width)} ${String(f + i).padStart(9)}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}

/** 1536 as 1.5k, 3145728 as 3M: sizes in a histogram label. */
function shortSize(size: number): string {
  for (const [unit, scale] of [['G', 2 ** 30], ['M', 2 ** 20], ['k', 2 ** 10]] as const) {
    if (size >= scale) return `${+(size / scale).toFixed(1)}${unit}`;
  }
  return String(size);
}

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
  const writer = new BlockWriter(1, Math.max(MIN_BLOCK_BYTES, config.maxMessageBytes + 64)); // 64: key, tab, newline
  const { index: first, count: step } = config.shard;
  const stats = new RunStats(Math.ceil(Math.max(0, config.count - first) / step));
  const pacer = config.rate > 0 ? new Pacer(config.rate) : undefined;
  const progress = config.progress === 'on' || (config.progress === 'auto' && process.stderr.isTTY);
  // On a terminal the line is rewritten in place; elsewhere a new line each second.
  const [progressEvery, progressEnd] = process.stderr.isTTY ? [250, '\x1b[K\r'] : [1000, '\n'];
  let progressAtMs = 0;
  for (let index = first; index < config.count && !interrupted && !writer.closed; index += step) {
    const { session, plan, messages, notes } = generateSession(config, index);
    let lines = 0;
    let bytes = 0;
    for (const message of messages) {
      if (pacer) await pacer.wait(() => writer.flush());
      const size = lineBytes(config, message);
      if (!writer.add(config, message, size)) await writer.addAfterFlush(config, message, size);
      lines++;
      bytes += size;
      if (message.snapshot) stats.sizes[message.snapshot.kind].add(message.snapshot.size);
      if (interrupted || writer.closed) break;
    }
    stats.sessions++;
    stats.messages += lines;
    stats.bytes += bytes;
    if (config.verbose) {
      const full = plan.filter((snapshot) => snapshot.kind === 'full').length;
      process.stderr.write(
        `session ${index + 1}/${config.count} ${session.sessionId}: ${full} full and ${plan.length - full} ` +
          `incremental snapshots in ${lines} messages, ${(bytes / MB).toFixed(2)} MB` +
          (notes.imagesSpread > 0 ? `; ${notes.imagesSpread} with images moved into events of their own to fit --max-message-bytes` : '') +
          '\n',
      );
    }
    if (progress && performance.now() - progressAtMs >= progressEvery) {
      progressAtMs = performance.now();
      process.stderr.write(stats.progressLine() + progressEnd);
    }
  }
  await writer.close();
  if (progress) process.stderr.write(`${stats.progressLine()}\n`);
  if (config.stats) process.stderr.write(stats.summary());
  return interrupted ? 130 : 0;
}

const executedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (executedDirectly) process.exitCode = await main(process.argv.slice(2));
