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
 *   and its stylesheets inlined. rrweb takes one when a page loads, so every
 *   recording (and every window) starts with one, and later page loads add
 *   more among the incrementals;
 * - an incremental snapshot is a batch of what happened since: DOM mutations,
 *   mouse moves, clicks, scrolls, input, and posthog-js's console, network
 *   and custom events.
 *
 * posthog-js sends a batch about every 2 s. PostHog's capture writes each to
 * Kafka: the legacy Python capture gzipped it, base64-encoded it and split it
 * into chunks sharing one `chunk_id` (topic `session_recording_events`);
 * capture-rs writes the events as JSON (`session_recording_snapshot_item_events`).
 * Production figures behind the defaults, per session: on average 2 full
 * snapshots (standard deviation 4) of 185 kB (sd 160 kB), and 40 incremental
 * snapshots (sd 214) of 14 kB (sd 50 kB), log-normal. Many sessions are in
 * flight at once, so capture's topic interleaves them in time.
 *
 * This script prints those messages, one per line on stdout, for kcat,
 * kafka-console-producer or vegeta:
 *
 *   npx tsx ./generate.ts --count 100 --token phc_x | kcat -P -H token=phc_x -b localhost:9092 -t session_recording_events
 *
 * It rebuilds PostHog's `generate_session_recordings_messages.py` and keeps the
 * promises that script broke: counts and sizes have the mean and standard
 * deviation the flags ask for (it truncated with int()); every session starts
 * with a full snapshot; each snapshot's size is drawn on its own; full
 * snapshots fall among the incrementals; all chunks of a snapshot share one
 * `chunk_id`; properties carry their `$` names.
 *
 * Promises: the same flags and --start give the same bytes; session i depends
 * on (--seed-value, i) and its arrival alone, so shards compose; every line
 * passes kcat and librdkafka at --max-message-bytes; memory is bounded by
 * the sessions in flight; bad input gets one line and exit 2.
 *
 * Sections, in the order data flows (`grep -n '^// [0-9]'`):
 *   1. Flags         the command line, its checks and --help
 *   2. Session       seeded randomness, arrivals, the plan, the identity
 *   3. Recording     each window's page and what rrweb records of it
 *   4. Payloads      the snapshot data each format carries
 *   5. Compression   gzip framing and deflate blocks
 *   6. Messages      envelopes, headers, chunks, items batches, vegeta targets
 *   7. Output        interleaving, writing, pacing, stats
 *   8. main
 *   Appendix         small pure helpers
 */

import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, fstatSync, readSync, realpathSync, statSync, write as writeToFd, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { constants as zlibConstants, crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { faker } from '@faker-js/faker/locale/en';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

// ===========================================================================
// 1. Flags: the command line, its checks and `--help`. Everything a run does
// is decided here; bad input stops before a byte reaches stdout.
// ===========================================================================

/** Mean and standard deviation of a log-normal quantity, as the flags give them. */
export interface Distribution {
  mean: number;
  standardDeviation: number;
}

/** What each line is: a message of `session_recording_events` or `session_recording_snapshot_item_events`, or a vegeta target. */
export type Format = 'snapshot' | 'snapshot-items' | 'vegeta';
/** What `--format snapshot` carries as snapshot data: opaque random text or real rrweb events. */
export type Payload = 'random' | 'rrweb';

const KAFKA_FORMATS: readonly Format[] = ['snapshot', 'snapshot-items'];

/** Everything a run needs, parsed and checked. */
export interface Config {
  format: Format;
  payload: Payload;
  /** Sessions to make; Infinity when only --duration ends the run. */
  count: number;
  /** Wall-clock milliseconds the run may take; Infinity without --duration. */
  durationMs: number;
  windowCount: Distribution;
  fullSnapshotCount: Distribution;
  fullSnapshotSize: Distribution;
  incrementalSnapshotCount: Distribution;
  incrementalSnapshotSize: Distribution;
  /** Sessions in flight at once, on average; they arrive as a Poisson process at the rate that gives it. */
  concurrency: number;
  /** time: all sessions' messages in order of `now`, as capture writes them; session: one session after another. */
  order: 'time' | 'session';
  seed: number;
  /** Milliseconds since the epoch at which the first session starts. */
  startMs: number;
  teamId: number | null;
  token: string | null;
  /** Characters of snapshot data per chunk (`--format snapshot`), already fitted to the message limit. */
  chunkSize: number;
  maxMessageBytes: number;
  key: boolean;
  headers: boolean;
  /** Where vegeta targets post. */
  captureUrl: string;
  /** Messages a second at most; 0 for as fast as possible. */
  rate: number;
  /** With --realtime, how many times faster than `now` moves the lines are written; null writes as fast as allowed. */
  realtimeSpeed: number | null;
  /** This run makes the sessions whose index is `index` modulo `count`. */
  shard: { index: number; count: number };
  /** The live progress line: asked for, refused, or on when stderr is a terminal. */
  progress: 'on' | 'off' | 'auto';
  stats: boolean;
  verbose: boolean;
}

/** Bad command-line input: main prints the message as one line and exits 2. */
export class UsageError extends Error {}

/** A value parser: turns a flag's text into a value or throws UsageError. */
type Parse<T> = (text: string, flag: string) => T;

const NUMBER = /^\+?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A non-negative decimal number (scientific notation allowed), at least `min`, or above it when `exclusive`. */
function numberFrom(min: number, exclusive = false, what = `a number ${exclusive ? '>' : '>='} ${min}`): Parse<number> {
  return (text, flag) => {
    const value = Number(text);
    // A number too small for a double (1e-400) reads as 0: refused rather than taken for another value.
    const underflow = value === 0 && /[1-9]/.test(text.replace(/e.*$/i, ''));
    if (!NUMBER.test(text) || !Number.isFinite(value) || underflow || value < min || (exclusive && value === min)) {
      throw new UsageError(`--${flag} accepts ${what}, got '${text}'`);
    }
    return value;
  };
}

/** A whole number of at least `min`, exactly representable. */
function wholeNumberFrom(min: number): Parse<number> {
  const what = `a whole number >= ${min}`;
  const parse = numberFrom(min, false, what);
  return (text, flag) => {
    const value = parse(text, flag);
    if (!Number.isSafeInteger(value)) throw new UsageError(`--${flag} accepts ${what}, got '${text}'`);
    return value;
  };
}

const anyWholeNumber: Parse<number> = (text, flag) => {
  const value = Number(text);
  if (!/^[+-]?\d+$/.test(text) || !Number.isSafeInteger(value)) throw new UsageError(`--${flag} accepts a whole number, got '${text}'`);
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
  if (!realDate || !Number.isFinite(ms) || ms < 0 || ms >= LAST_START_MS) {
    throw new UsageError(`--${flag} accepts an ISO-8601 UTC time from 1970 to 2200 such as 2024-05-01T12:00:00Z, got '${text}'`);
  }
  return ms;
};
/** Starts end here: times are kept in microseconds, exact in a double until 2255. */
const LAST_START_MS = Date.UTC(2200, 0, 1);

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** A duration such as 90s, 10m, 1h30m, or a plain number of seconds. */
const duration: Parse<number> = (text, flag) => {
  const parts = /^\d+(\.\d+)?$/.test(text) ? [[text, text, 's']] : [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  const ms = parts.reduce((sum, [, amount = '', unit = 's']) => sum + Number(amount) * DURATION_UNITS_MS[unit]!, 0);
  if (parts.map(([part]) => part).join('') !== text || !(ms > 0) || !Number.isFinite(ms)) {
    throw new UsageError(`--${flag} accepts a duration such as 90s, 10m or 1h30m (a plain number is seconds), got '${text}'`);
  }
  return ms;
};

/** One of a fixed list of words. */
function oneOf<T extends string>(...choices: T[]): Parse<T> {
  return (text, flag) => {
    if (!(choices as string[]).includes(text)) throw new UsageError(`--${flag} accepts ${choices.join(' or ')}, got '${text}'`);
    return text as T;
  };
}

/** `I/N` with 0 <= I < N. */
const shardSpec: Parse<{ index: number; count: number }> = (text, flag) => {
  const match = /^(\d+)\/(\d+)$/.exec(text);
  const [index, count] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(count >= 1 && index < count) || !Number.isSafeInteger(count)) {
    throw new UsageError(`--${flag} accepts I/N with N >= 1 and 0 <= I < N (shard I of N), got '${text}'`);
  }
  return { index, count };
};

/** An absolute http or https URL, nothing that would break a JSON line or a request line. */
const httpUrl: Parse<string> = (text, flag) => {
  if (!/^https?:\/\/[^\s/?#]+[^\s]*$/i.test(text) || /[\x00-\x1f\x7f]/.test(text) || !URL.canParse(text)) {
    throw new UsageError(`--${flag} accepts an absolute http:// or https:// URL without spaces, got ${JSON.stringify(text)}`);
  }
  return text;
};

/** Text that can stand in a Kafka header and a JSON string: printable, no tab or newline. */
const headerText: Parse<string> = (text, flag) => {
  if (text === '' || /[\x00-\x1f\x7f]/.test(text)) throw new UsageError(`--${flag} accepts non-empty printable text, got ${JSON.stringify(text)}`);
  return text;
};

/** A flag that takes a value and has a default: its value is always there. */
interface Setting<T> {
  parse: Parse<T>;
  default: string;
  valueName: string;
  help: string;
  /** The formats it means something for; absent means all. */
  formats?: readonly Format[];
}
/** A flag that takes a value and may be absent. */
interface Option<T> {
  parse: Parse<T>;
  valueName: string;
  help: string;
  formats?: readonly Format[];
}
/** A switch: present or not. */
interface Toggle {
  help: string;
  formats?: readonly Format[];
}
type FlagSpec = Setting<unknown> | Option<unknown> | Toggle;

const setting = <T>(parse: Parse<T>, defaultText: string, valueName: string, help: string, formats?: readonly Format[]): Setting<T> =>
  ({ parse, default: defaultText, valueName, help, ...(formats && { formats }) });
const option = <T>(parse: Parse<T>, valueName: string, help: string, formats?: readonly Format[]): Option<T> =>
  ({ parse, valueName, help, ...(formats && { formats }) });
const toggle = (help: string, formats?: readonly Format[]): Toggle => ({ help, ...(formats && { formats }) });

/**
 * Every flag, in the order `--help` lists them: the one table behind parsing,
 * the values' types and `--help`. The original script's flags keep its names
 * and defaults.
 */
export const FLAGS = {
  count: option(wholeNumberFrom(0), 'N', 'number of sessions to generate (default 100; unlimited with --duration)'),
  duration: option(duration, 'TIME', 'stop after this much wall-clock time (90s, 10m, 1h30m), after a whole line'),
  format: setting(oneOf<Format>('snapshot', 'snapshot-items', 'vegeta'), 'snapshot', 'FORMAT',
    'snapshot: $snapshot messages of the session_recording_events topic, data chunked, as PostHog\'s Python capture wrote them; ' +
      'snapshot-items: $snapshot_items messages of session_recording_snapshot_item_events, rrweb events as JSON, as capture-rs writes them; ' +
      'vegeta: one target per snapshot for vegeta attack -lazy -format=json, posting it to --capture-url as posthog-js does'),
  payload: option(oneOf<Payload>('random', 'rrweb'), 'PAYLOAD',
    'the snapshot data: random (opaque base64 of a gzip member, exactly the sampled size) or rrweb (base64 of gzip of ' +
      'UTF-16 JSON of rrweb events, within 5% of the sampled size) (default random)', ['snapshot']),
  'full-snapshot-count-mean': setting(numberFrom(1, false, 'a number >= 1 (every session starts with a full snapshot)'), '2', 'N',
    'mean number of full snapshots per session, at least 1: every session starts with one'),
  'full-snapshot-count-standard-deviation': setting(numberFrom(0), '4', 'N', 'standard deviation of that number'),
  'full-snapshot-size-mean': setting(numberFrom(1), '185000', 'CHARS', 'mean size of a full snapshot, in characters of data'),
  'full-snapshot-size-standard-deviation': setting(numberFrom(0), '160000', 'CHARS', 'standard deviation of that size'),
  'incremental-snapshot-count-mean': setting(numberFrom(0, true), '40', 'N', 'mean number of incremental snapshots per session'),
  'incremental-snapshot-count-standard-deviation': setting(numberFrom(0), '214', 'N', 'standard deviation of that number'),
  'incremental-snapshot-size-mean': setting(numberFrom(1), '14000', 'CHARS', 'mean size of an incremental snapshot, in characters of data'),
  'incremental-snapshot-size-standard-deviation': setting(numberFrom(0), '50000', 'CHARS', 'standard deviation of that size'),
  'window-count-mean': setting(numberFrom(1), '1', 'N',
    'mean number of browser windows per session, each with its own $window_id and first snapshot full ' +
      '(a session has at least as many full snapshots as windows)'),
  'window-count-standard-deviation': setting(numberFrom(0), '0', 'N', 'standard deviation of that number'),
  concurrency: setting(numberFrom(0, true), '100', 'N',
    'sessions in flight at once on average: sessions arrive at random (a Poisson process) at the rate that keeps this many open'),
  order: setting(oneOf('time', 'session'), 'time', 'ORDER',
    'time: every session\'s messages in order of now, interleaved as capture writes them; session: one whole session after another'),
  'seed-value': setting(anyWholeNumber, '0', 'N', 'seed of every random choice: ids, counts, sizes, times and data'),
  start: option(isoTime, 'TIME',
    'ISO-8601 time at which the first session starts, UTC unless it names a zone (default: the time of the run); give it for byte-identical reruns'),
  token: option(headerText, 'TOKEN', 'project token of every message and its token header (default: null; PostHog\'s consumers drop messages without one)'),
  'team-id': option(anyWholeNumber, 'N', 'team_id of every message (default: null)', ['snapshot']),
  'chunk-size': option(wholeNumberFrom(1), 'CHARS',
    'split snapshot data into chunks of at most this many characters, one message each (default 900000, or less if the message limit needs it)',
    ['snapshot']),
  'max-message-bytes': setting(wholeNumberFrom(1), '1000000', 'BYTES',
    "what librdkafka (kcat) checks of every message: value, key, headers and its own overhead; its default message.max.bytes",
    KAFKA_FORMATS),
  key: toggle("prefix each line with its Kafka key, the $session_id, and a tab (kcat -K '\\t', kafka-console-producer --property parse.key=true)",
    KAFKA_FORMATS),
  headers: toggle('prefix each line with the Kafka headers capture sets, name:value,... and a tab (kafka-console-producer --property parse.headers=true)',
    KAFKA_FORMATS),
  'capture-url': setting(httpUrl, 'http://127.0.0.1:8000/s/?compression=gzip-js', 'URL',
    "PostHog's capture endpoint for recordings, which vegeta targets post to", ['vegeta']),
  rate: setting(numberFrom(0), '0', 'N', 'at most N messages (or targets) a second, evenly spaced; 0 for as fast as possible'),
  realtime: toggle('write each message when its now comes, counted from the run\'s start (with the default --start, now tracks the clock)'),
  speed: option(numberFrom(0, true), 'X', 'with --realtime, move through time X times faster (0.5 for half speed)'),
  shard: setting(shardSpec, '0/1', 'I/N', 'make only the sessions whose index is I modulo N; the N shards together are exactly the run without --shard'),
  progress: toggle('a live line on stderr: sessions, in flight, messages, MB, MB/s (on when stderr is a terminal)'),
  'no-progress': toggle('no progress line, even on a terminal'),
  stats: toggle('a summary on stderr at the end: what was delivered, speed, sessions in flight, size percentiles per kind and a histogram of sizes'),
  verbose: toggle('describe each session on stderr as it ends'),
  merge: toggle('merge the shard files named after the flags (made with the same flags but --shard) into the unsharded run, ' +
    'in order of now and then $session_id, as the run without --shard writes them; no other flag applies'),
  help: toggle('show this help and exit'),
} satisfies Record<string, FlagSpec>;

type FlagName = keyof typeof FLAGS;
type ValueOf<F> = F extends Setting<infer T> ? T : F extends Option<infer T> ? T | undefined : boolean;
/** The command line's values, typed from the table: settings always have one, options may not, switches are booleans. */
export type FlagValues = { -readonly [K in FlagName]: ValueOf<(typeof FLAGS)[K]> };

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

/** The `--help` text: what the tool does, every flag with its default, limits and pipelines. */
export function helpText(): string {
  const flags = Object.entries(FLAGS).map(([name, spec]: [string, FlagSpec]) => {
    const valueName = 'valueName' in spec ? ` ${spec.valueName}` : '';
    const fallback = 'default' in spec ? ` (default ${spec.default})` : '';
    const only = spec.formats ? ` [--format ${spec.formats.join(', ')}]` : '';
    return `  --${name}${valueName}\n${wrap(spec.help + fallback + only, '        ')}`;
  });
  return `Usage: generate.ts [flags] > messages.jsonl

Prints synthetic session-recording traffic for load-testing ingestion, one
message value per line on stdout; nothing else goes to stdout. --format snapshot
writes what PostHog's Python capture wrote to session_recording_events
($snapshot events, data gzip-base64 and chunked); --format snapshot-items what
capture-rs writes to session_recording_snapshot_item_events (rrweb events as
JSON); --format vegeta what posthog-js posts to capture's /s/.

Sessions arrive at random, --concurrency of them in flight on average, and
their messages come out interleaved in order of now, as on capture's topic.
Each session has one or more windows; each window starts with a full snapshot
(a page load: Meta and FullSnapshot events), and further full snapshots fall
among the incremental ones (mutations, mouse moves, clicks, scrolls, input,
console and network events). Counts and sizes are log-normal with the mean and
standard deviation given below, rounded to whole numbers without bias. Sizes
count characters of snapshot data as it travels: base64 text for --format
snapshot, event JSON for the others.

Every line passes kcat at --max-message-bytes: snapshot data is split into
chunks sharing one chunk_id, snapshot items into messages at event boundaries.
PostHog's consumers read the project token from a Kafka header: give --token
and deliver it with kcat -H token=... or with --headers.

Session i comes from random streams derived from (--seed-value, i) alone: the
same flags and --start give the same bytes, memory stays flat, and the N
shards of --shard I/N together are exactly the run without it. --rate,
--progress and --stats never change a byte of stdout.

Limits: snapshots of rrweb events are at most ${MAX_RRWEB_SNAPSHOT_CHARS} characters
(capture's limit on a request); flags that would draw larger ones more than
once in ${Math.round(1 / MAX_CAPPED_SHARE)} snapshots are refused, and the rare larger draw is cut to it.
Sessions have at most ${MAX_WINDOWS} windows, drawn the same way.

Flags:
${flags.join('\n')}

Examples:
  npx tsx ./generate.ts --count 100 --token phc_x | kcat -P -H token=phc_x -b localhost:9092 -t session_recording_events
  npx tsx ./generate.ts --count 100 --key --token phc_x | kcat -P -K '\\t' -H token=phc_x -b localhost:9092 -t session_recording_events
  npx tsx ./generate.ts --count 100 --format snapshot-items --token phc_x --headers --key | kafka-console-producer.sh \\
      --topic session_recording_snapshot_item_events --bootstrap-server localhost:9092 \\
      --property parse.headers=true --property parse.key=true
  npx tsx ./generate.ts --count 1000 --format vegeta --token phc_x | vegeta attack -lazy -format=json -rate=200 | vegeta report
  npx tsx ./generate.ts --duration 10m --realtime --concurrency 500 --token phc_x | kcat -P -H token=phc_x -b localhost:9092 -t session_recording_events

Exit status: 0 when done, or when the reader goes away (| head); 1 when stdout
cannot be written (disk full, closed); 2 on bad input (one line on stderr,
nothing on stdout); 130, 143 or 129 after SIGINT (Ctrl-C), SIGTERM or SIGHUP,
which stop after the line being written.
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
    const takesValue = arg.startsWith('--') && 'parse' in ((FLAGS as Record<string, FlagSpec>)[arg.slice(2)] ?? {});
    if (takesValue && next !== undefined && /^-[\d.]/.test(next)) {
      args.push(`${arg}=${next}`);
      at++;
    } else {
      args.push(arg);
    }
  }
  return args;
}

/** Reads the command line into typed values, and which flags were given. */
function readFlags(argv: readonly string[]): { values: FlagValues; given: Set<FlagName>; files: string[] } {
  let raw: Record<string, string | boolean | undefined>;
  let files: string[];
  try {
    const options = Object.fromEntries(
      Object.entries(FLAGS).map(([name, spec]: [string, FlagSpec]) => [name, { type: 'parse' in spec ? 'string' : 'boolean' } as const]),
    );
    ({ values: raw, positionals: files } = parseArgs({ args: attachNegativeValues(argv), options, strict: true, allowPositionals: true }));
  } catch (error) {
    // parseArgs names the flag in the first line of its message; later lines only suggest '--flag=-value'.
    // Its "argument is ambiguous" means a flag came where a value was due.
    const firstLine = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    const message = firstLine.replace(/\.$/, '').replace('argument is ambiguous', 'needs a value, not another flag');
    throw new UsageError(`${message} (see --help)`);
  }
  const given = new Set(Object.keys(raw) as FlagName[]);
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    const text = raw[name] ?? ('default' in spec ? spec.default : undefined);
    values[name] = 'parse' in spec ? (typeof text === 'string' ? spec.parse(text, name) : undefined) : text === true;
  }
  return { values: values as FlagValues, given, files };
}

/** `--merge FILE...`: shard files to merge into the unsharded run. */
export interface MergeRequest {
  merge: string[];
}

/**
 * Parses the command line into a Config, or returns 'help'.
 *
 * @example
 * parseFlags(['--count', '10', '--start', '2024-01-01']).count; // 10
 * parseFlags(['--count', '-1']); // throws UsageError
 */
export function parseFlags(argv: readonly string[], nowMs = Date.now()): Config | MergeRequest | 'help' {
  const { values, given, files } = readFlags(argv);
  if (values.help) return 'help';
  if (values.merge) {
    if (given.size > 1) throw new UsageError(`--merge takes file names only, not --${[...given].find((name) => name !== 'merge')}`);
    if (files.length === 0) throw new UsageError('--merge needs the names of the shard files to merge');
    return { merge: files };
  }
  if (files.length > 0) throw new UsageError(`unexpected argument '${files[0]}': flags take the form --name value (see --help)`);
  const { format } = values;
  for (const name of given) {
    const { formats } = FLAGS[name] as FlagSpec;
    if (formats && !formats.includes(format)) {
      throw new UsageError(`--${name} applies to --format ${formats.join(' and ')} only, not --format ${format}`);
    }
  }
  if (values.progress && values['no-progress']) throw new UsageError('--progress and --no-progress contradict each other');
  if (values.speed !== undefined && !values.realtime) throw new UsageError('--speed applies with --realtime only: it sets how fast now moves');
  const distribution = (mean: number, standardDeviation: number): Distribution => ({ mean, standardDeviation });
  const payload = values.payload ?? 'random';
  const config: Config = {
    format,
    payload,
    count: values.count ?? (values.duration === undefined ? 100 : Infinity),
    durationMs: values.duration ?? Infinity,
    windowCount: distribution(values['window-count-mean'], values['window-count-standard-deviation']),
    fullSnapshotCount: distribution(values['full-snapshot-count-mean'], values['full-snapshot-count-standard-deviation']),
    fullSnapshotSize: distribution(values['full-snapshot-size-mean'], values['full-snapshot-size-standard-deviation']),
    incrementalSnapshotCount: distribution(values['incremental-snapshot-count-mean'], values['incremental-snapshot-count-standard-deviation']),
    incrementalSnapshotSize: distribution(values['incremental-snapshot-size-mean'], values['incremental-snapshot-size-standard-deviation']),
    concurrency: values.concurrency,
    order: values.order,
    seed: values['seed-value'],
    startMs: values.start ?? nowMs,
    teamId: values['team-id'] ?? null,
    token: values.token ?? null,
    chunkSize: 0, // fitted below, once the message limit is known
    maxMessageBytes: values['max-message-bytes'],
    key: values.key,
    headers: values.headers,
    captureUrl: values['capture-url'],
    rate: values.rate,
    realtimeSpeed: values.realtime ? (values.speed ?? 1) : null,
    shard: values.shard,
    progress: values.progress ? 'on' : values['no-progress'] ? 'off' : 'auto',
    stats: values.stats,
    verbose: values.verbose,
  };
  refuseRareDrawsBeyond(MAX_WINDOWS, 'window-count', config.windowCount, 1);
  if (format !== 'snapshot' || payload === 'rrweb') {
    refuseRareDrawsBeyond(MAX_RRWEB_SNAPSHOT_CHARS, 'full-snapshot-size', config.fullSnapshotSize, 1);
    refuseRareDrawsBeyond(MAX_RRWEB_SNAPSHOT_CHARS, 'incremental-snapshot-size', config.incrementalSnapshotSize, 1);
  }
  if (format !== 'vegeta') config.chunkSize = fitMessageLimit(config, values['chunk-size']);
  return config;
}

/** Draws above a cap are cut to it; flags that would cut more than this share of them are refused, so the means hold. */
const MAX_CAPPED_SHARE = 1e-4;

/** Refuses a distribution whose draws (`minimum` plus a log-normal) would exceed `cap` too often to cut. */
function refuseRareDrawsBeyond(cap: number, flag: string, distribution: Distribution, minimum: number): void {
  const share = logNormalShareAbove(distribution, minimum, cap);
  if (share > MAX_CAPPED_SHARE) {
    throw new UsageError(
      `--${flag}-mean and --${flag}-standard-deviation accept values that keep draws under ${cap} in all but ` +
        `1 of ${Math.round(1 / MAX_CAPPED_SHARE)}; got mean ${distribution.mean} and standard deviation ` +
        `${distribution.standardDeviation} (${(100 * share).toPrecision(2)}% above)`,
    );
  }
}

/**
 * Fits the chunk size (and so every message) to --max-message-bytes, naming
 * the flag at fault when they cannot fit: --chunk-size if it was given, the
 * token if it is what takes the room, else --max-message-bytes itself.
 */
function fitMessageLimit(config: Config, chunkSize: number | undefined): number {
  const overhead = maxEnvelopeBytes(config);
  // A snapshot message needs room for a chunk of data; an items message for an rrweb event of the smallest size.
  const least = overhead + (config.format !== 'snapshot' ? MIN_EVENT_ROOM_BYTES : config.payload === 'rrweb' ? MIN_RRWEB_CHUNK_CHARS : MIN_CHUNK_CHARS);
  if (config.maxMessageBytes < least) {
    const withoutToken = maxEnvelopeBytes({ ...config, token: null }) + least - overhead;
    if (config.token !== null && config.maxMessageBytes >= withoutToken) {
      const tokenRoom = config.token.length - (least - config.maxMessageBytes);
      throw new UsageError(`--token accepts at most about ${tokenRoom} characters with --max-message-bytes ${config.maxMessageBytes} ` +
        `(it travels in the value and a header of every message), got ${config.token.length}`);
    }
    throw new UsageError(
      `--max-message-bytes accepts at least ${least} for --format ${config.format} (each message spends up to ${overhead} ` +
        `bytes on its envelope, key, headers and librdkafka's overhead), got ${config.maxMessageBytes}`,
    );
  }
  if (config.format !== 'snapshot') return 0;
  const room = config.maxMessageBytes - overhead;
  if (chunkSize === undefined) return Math.min(DEFAULT_CHUNK_CHARS, room);
  const leastChunk = least - overhead;
  if (chunkSize < leastChunk) throw new UsageError(`--chunk-size accepts at least ${leastChunk} for --payload ${config.payload}, got ${chunkSize}`);
  if (chunkSize > room) {
    throw new UsageError(`--chunk-size accepts at most ${room} with --max-message-bytes ${config.maxMessageBytes} ` +
      `(each message spends up to ${overhead} bytes besides its chunk), got ${chunkSize}`);
  }
  return chunkSize;
}

/** The original script's chunk size. */
const DEFAULT_CHUNK_CHARS = 900_000;
/** The smallest chunk worth a message: smaller ones would only multiply messages. */
const MIN_CHUNK_CHARS = 1024;
/** Chunk 0 of rrweb data also carries events_summary, tens of characters an event: room for a batch's worth. */
const MIN_RRWEB_CHUNK_CHARS = 65_536;

// ===========================================================================
// 2. Session: its seeded randomness, its arrival, its plan (windows, and
// snapshots of each kind with their sizes and times, drawn as they are
// needed) and its identity (ids, ip, site). Session i depends on
// (--seed-value, i) and its arrival time alone.
// ===========================================================================

/** The purposes a session draws random numbers for, each from a stream of its own. */
const PURPOSES = ['plan', 'identity', 'ids', 'capture', 'payload', 'content'] as const;
type Purpose = (typeof PURPOSES)[number];

/** 32 bytes that `name` alone determines. */
const digestOf = (name: string): Buffer => createHash('sha256').update(name).digest();

/** Murmur3's finalizer: spreads every input bit over the whole word. */
function mix32(word: number): number {
  let h = word;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** A xoroshiro128+ stream from a digest, one of many told apart by `salt`. */
function streamFrom(digest: Buffer, salt: number): RandomGenerator {
  const state = [0, 1, 2, 3].map((word) => mix32(digest.readInt32LE(4 * word) ^ Math.imul(salt + 1, 0x9e3779b9) ^ word));
  // xoroshiro128+ must not start from the all-zero state.
  return xoroshiro128plusFromState(state.some((word) => word !== 0) ? state : [1, 0, 0, 0]);
}

/**
 * Random bytes in bulk from a digest: an AES-128-CTR keystream, at memory
 * speed, one of many told apart by `salt` in the counter's top word (they
 * would meet only after 2^96 blocks). Each call returns the next `count` bytes.
 */
function keystreamFrom(digest: Buffer, salt: number): (count: number) => Buffer {
  const counter = Buffer.from(digest.subarray(16, 32));
  counter.writeInt32LE(counter.readInt32LE(0) ^ mix32(salt), 0);
  const keystream = createCipheriv('aes-128-ctr', digest.subarray(0, 16), counter);
  // The keystream is the encryption of zeros; the shared zero buffer serves the usual small requests.
  return (count) => keystream.update(count <= ZEROS.length ? ZEROS.subarray(0, count) : Buffer.alloc(count));
}
const ZEROS = Buffer.alloc(48 * 1024);

/**
 * One session's randomness: a stream per purpose, derived from (seed,
 * session, purpose) alone (one hash a session), so any session can be made
 * on its own.
 *
 * @example
 * const random = new SessionRandom(0, 7);
 * random.stream('plan').next(); // the same number every time
 */
export class SessionRandom {
  private readonly digest: Buffer;

  constructor(seed: number, index: number) {
    this.digest = digestOf(`${seed}/${index}`);
  }

  stream(purpose: Purpose): RandomGenerator {
    return streamFrom(this.digest, PURPOSES.indexOf(purpose));
  }

  /** Bulk random bytes for a purpose, or for one snapshot's data, so that no snapshot shifts another's. */
  bytes(purpose: Purpose | { snapshot: number }): (count: number) => Buffer {
    return keystreamFrom(this.digest, typeof purpose === 'string' ? PURPOSES.indexOf(purpose) : PURPOSES.length + purpose.snapshot);
  }
}

/** A stream for the whole run, such as its arrivals: the seed alone. */
const runStream = (seed: number, purpose: 'arrivals'): RandomGenerator => streamFrom(digestOf(`${seed}/run/${purpose}`), 0);

/** Uniform in [0, 1). */
export const uniform = (rng: RandomGenerator): number => uniformFloat64(rng);

/** Standard normal, by Box-Muller. */
export function standardNormal(rng: RandomGenerator): number {
  const u = 1 - uniform(rng); // in (0, 1], so the log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform(rng));
}

/** Exponential with the given mean. */
const exponential = (rng: RandomGenerator, mean: number): number => -mean * Math.log(1 - uniform(rng));

/** The log-normal's own parameters for a distribution of the given mean and standard deviation. */
function logNormalParameters({ mean, standardDeviation }: Distribution): { mu: number; sigma: number } {
  const sigmaSquared = Math.log1p((standardDeviation / mean) ** 2);
  return { mu: Math.log(mean) - sigmaSquared / 2, sigma: Math.sqrt(sigmaSquared) };
}

/**
 * A log-normal draw whose distribution has the given mean and standard
 * deviation (not those of its logarithm): sigma² = ln(1 + (sd/mean)²),
 * mu = ln(mean) - sigma²/2, as in the original script.
 */
export function logNormal(rng: RandomGenerator, distribution: Distribution): number {
  const { mu, sigma } = logNormalParameters(distribution);
  return Math.exp(mu + sigma * standardNormal(rng));
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
 * rounding adds at most 1/4 to the variance. Draws above `cap` are cut to it
 * (flags that make that common are refused).
 *
 * @example
 * sampleWholeNumber(rng, { mean: 2, standardDeviation: 4 }, 1); // 1, 2, 3, ... averaging 2
 */
export function sampleWholeNumber(rng: RandomGenerator, distribution: Distribution, minimum: number, cap = Infinity): number {
  const excess = distribution.mean - minimum;
  if (excess <= 0) return minimum;
  return Math.min(cap, minimum + stochasticRound(rng, logNormal(rng, { mean: excess, standardDeviation: distribution.standardDeviation })));
}

/** Normal cumulative distribution, from erfc (Numerical Recipes' Chebyshev fit, relative error under 1.2e-7). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
    t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const erfc = t * Math.exp(-z * z + poly);
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** The share of draws of `minimum` plus a log-normal (as sampleWholeNumber makes them) above `limit`. */
function logNormalShareAbove(distribution: Distribution, minimum: number, limit: number): number {
  return 1 - wholeNumberCdf(distribution, minimum, Math.floor(limit));
}

/**
 * P(draw <= y) for draws of sampleWholeNumber(distribution, minimum): the
 * log-normal's distribution with stochastic rounding's share of each unit
 * interval, from the log-normal's partial expectations.
 */
function wholeNumberCdf(distribution: Distribution, minimum: number, y: number): number {
  const excess = distribution.mean - minimum;
  const j = y - minimum;
  if (j < 0) return 0;
  if (excess <= 0) return 1;
  const { mu, sigma } = logNormalParameters({ mean: excess, standardDeviation: distribution.standardDeviation });
  // SR(X) <= j when X < j, or when j <= X < j + 1 and it rounds down (probability j + 1 - X).
  if (sigma === 0) return excess < j ? 1 : excess >= j + 1 ? 0 : j + 1 - excess;
  const below = (a: number) => (a <= 0 ? 0 : normalCdf((Math.log(a) - mu) / sigma));
  const meanBelow = (a: number) => (a <= 0 ? 0 : excess * normalCdf((Math.log(a) - mu - sigma * sigma) / sigma));
  return below(j) + (j + 1) * (below(j + 1) - below(j)) - (meanBelow(j + 1) - meanBelow(j));
}

/** Sessions have at most this many windows: tabs of one visit. */
const MAX_WINDOWS = 1000;
/** posthog-js flushes its buffer of events at most every 2 s; idle spells stretch the gaps between batches. */
const MIN_FLUSH_GAP_MS = 2000;
const MEAN_EXTRA_GAP_MS = 3000;
/** Network latency between the browser sending a batch and capture receiving it, at most. */
const MAX_LATENCY_US = 250_000;

/**
 * How long a session is in flight on average, in ms: from its arrival to its
 * last message, one flush gap per snapshot and a latency. The snapshots are
 * max(F, W) full ones (every window opens with one) and I incremental ones.
 */
export function meanSessionMs(config: Config): number {
  let fullSnapshots = config.fullSnapshotCount.mean;
  // E[max(F, W)] = E[F] + sum over k >= 2 of P(W >= k) P(F < k).
  for (let k = 2; k <= MAX_WINDOWS && config.windowCount.mean > 1; k++) {
    fullSnapshots += (1 - wholeNumberCdf(config.windowCount, 1, k - 1)) * wholeNumberCdf(config.fullSnapshotCount, 1, k - 1);
  }
  const snapshots = fullSnapshots + config.incrementalSnapshotCount.mean;
  return snapshots * (MIN_FLUSH_GAP_MS + MEAN_EXTRA_GAP_MS) + MAX_LATENCY_US / 2000;
}

/**
 * When sessions arrive: a Poisson process from --start, at the rate that keeps
 * --concurrency sessions in flight on average (Little's law: rate = N / mean
 * duration). Session 0 arrives at --start. The gaps come from one stream of
 * the run, so session i's arrival is the same whatever --count or --shard.
 *
 * @example
 * const arrivals = new Arrivals(config);
 * arrivals.next(); // { index: 0, atMs: config.startMs }
 */
export class Arrivals {
  private readonly rng: RandomGenerator;
  private readonly meanGapMs: number;
  private index = 0;
  private atMs: number;

  constructor(config: Config) {
    this.rng = runStream(config.seed, 'arrivals');
    this.meanGapMs = meanSessionMs(config) / config.concurrency;
    this.atMs = config.startMs;
  }

  next(): { index: number; atMs: number } {
    const arrival = { index: this.index++, atMs: this.atMs };
    this.atMs += exponential(this.rng, this.meanGapMs);
    return arrival;
  }
}

export type SnapshotKind = 'full' | 'incremental';

/** One snapshot batch as the browser sends it. Times are since the epoch. */
export interface PlannedSnapshot {
  /** 0, 1, ... in the session. */
  ordinal: number;
  kind: SnapshotKind;
  /** Which of the session's windows (0, 1, ...) recorded it. */
  window: number;
  /** Characters of snapshot data as it travels in the message. */
  size: number;
  /** When its first event happened (ms): as the session's previous batch was sent. */
  firstEventMs: number;
  /** When the browser sent the batch (`sent_at`, ms). */
  sentAtMs: number;
  /** When capture received it (`now`, µs). */
  receivedAtUs: number;
}

/**
 * A session's plan: W >= 1 windows, F >= W full and I >= 0 incremental
 * snapshots, drawn up front; the snapshots themselves, each with its own size
 * and times, drawn one at a time as they are needed, so a session of any
 * length takes constant memory. The first snapshot is full; the next W - 1
 * full ones open the other windows, and the rest fall at random among the
 * incrementals, each in a window already open, so windows interleave.
 *
 * @example
 * const plan = new SessionPlan(config, new SessionRandom(0, 0), config.startMs);
 * plan.next()?.kind; // 'full'
 */
export class SessionPlan {
  readonly windows: number;
  readonly fullSnapshots: number;
  readonly incrementalSnapshots: number;
  readonly startMs: number;
  private readonly config: Config;
  private readonly rng: RandomGenerator;
  private fullLeft: number;
  private incrementalLeft: number;
  private openWindows = 0;
  private ordinal = 0;
  private clockMs: number;

  constructor(config: Config, random: SessionRandom, arrivalMs: number) {
    this.config = config;
    this.rng = random.stream('plan');
    this.windows = sampleWholeNumber(this.rng, config.windowCount, 1, MAX_WINDOWS);
    this.fullSnapshots = Math.max(sampleWholeNumber(this.rng, config.fullSnapshotCount, 1), this.windows);
    this.incrementalSnapshots = sampleWholeNumber(this.rng, config.incrementalSnapshotCount, 0);
    this.fullLeft = this.fullSnapshots;
    this.incrementalLeft = this.incrementalSnapshots;
    this.startMs = arrivalMs;
    this.clockMs = arrivalMs;
  }

  /** The next snapshot, or undefined once all are planned. */
  next(): PlannedSnapshot | undefined {
    if (this.fullLeft + this.incrementalLeft === 0) return undefined;
    const { rng } = this;
    // The first snapshot is full; after it, each remaining snapshot is equally
    // likely to come next, which interleaves the kinds uniformly at random.
    const full = this.ordinal === 0 || uniform(rng) * (this.fullLeft + this.incrementalLeft) < this.fullLeft;
    if (full) this.fullLeft--;
    else this.incrementalLeft--;
    const opens = full && this.openWindows < this.windows;
    const window = opens ? this.openWindows++ : Math.floor(uniform(rng) * this.openWindows);
    const size = sampleWholeNumber(rng, full ? this.config.fullSnapshotSize : this.config.incrementalSnapshotSize, 1);
    const firstEventMs = Math.floor(this.clockMs);
    this.clockMs += MIN_FLUSH_GAP_MS + exponential(rng, MEAN_EXTRA_GAP_MS);
    const sentAtMs = Math.floor(this.clockMs);
    return {
      ordinal: this.ordinal++,
      kind: full ? 'full' : 'incremental',
      window,
      size,
      firstEventMs,
      sentAtMs,
      receivedAtUs: sentAtMs * 1000 + Math.floor(uniform(rng) * MAX_LATENCY_US),
    };
  }
}

const HEX_BYTE = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** Sixteen bytes as a UUID's hex text. */
function uuidText(bytes: Uint8Array): string {
  let text = '';
  for (let byte = 0; byte < 16; byte++) {
    if (byte === 4 || byte === 6 || byte === 8 || byte === 10) text += '-';
    text += HEX_BYTE[bytes[byte]!];
  }
  return text;
}

/** Writes a 48-bit millisecond time big-endian into bytes 0..5, as UUIDv7 and PostHog's UUIDT start. */
function writeMs48(bytes: Uint8Array, ms: number): void {
  const high = Math.floor(ms / 2 ** 32);
  bytes[0] = high >>> 8;
  bytes[1] = high & 0xff;
  writeUint32(bytes, 2, ms >>> 0);
}

/** Writes a 32-bit number big-endian at `at`. */
function writeUint32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}

/**
 * UUIDv7s as posthog-js mints them (its vendored uuidv7): 48 bits of Unix
 * milliseconds, then a 42-bit counter that starts at random each new
 * millisecond and counts up within one, then 32 random bits; version 7,
 * variant 10. The time is the session's own clock, the bits its stream.
 *
 * @example
 * const ids = new UuidV7(rng);
 * ids.at(1704067200000); // '018cc251-f400-7...'
 */
export class UuidV7 {
  private readonly rng: RandomGenerator;
  private lastMs = -1;
  private counter = 0;
  private readonly bytes = new Uint8Array(16);

  constructor(rng: RandomGenerator) {
    this.rng = rng;
  }

  at(ms: number): string {
    const whole = Math.floor(ms);
    if (whole === this.lastMs) this.counter++;
    else this.counter = (this.rng.next() >>> 0) * 0x400 + ((this.rng.next() >>> 0) & 0x3ff);
    this.lastMs = whole;
    const { bytes } = this;
    writeMs48(bytes, whole);
    const randA = Math.floor(this.counter / 2 ** 30); // the counter's top 12 bits
    const randBHigh = this.counter % 2 ** 30;
    bytes[6] = 0x70 | (randA >>> 8);
    bytes[7] = randA & 0xff;
    bytes[8] = 0x80 | (randBHigh >>> 24);
    bytes[9] = (randBHigh >>> 16) & 0xff;
    bytes[10] = (randBHigh >>> 8) & 0xff;
    bytes[11] = randBHigh & 0xff;
    writeUint32(bytes, 12, this.rng.next());
    return uuidText(bytes);
  }
}

/**
 * PostHog's UUIDT, which its Python capture stamped on legacy messages and
 * chunk ids: 48 bits of Unix milliseconds, a 16-bit series counting messages
 * within the millisecond, 64 random bits; no version or variant bits.
 */
function uuidT(rng: RandomGenerator, ms: number, series: number): string {
  const bytes = UUID_SCRATCH;
  writeMs48(bytes, Math.floor(ms));
  bytes[6] = (series >>> 8) & 0xff;
  bytes[7] = series & 0xff;
  writeUint32(bytes, 8, rng.next());
  writeUint32(bytes, 12, rng.next());
  return uuidText(bytes);
}
const UUID_SCRATCH = new Uint8Array(16);

/** Who and where one session is. */
export interface Identity {
  sessionId: string;
  distinctId: string;
  ip: string;
  /** The site the session visits (the legacy envelope's site_url). */
  siteUrl: string;
}

let suffixes: readonly string[] | undefined;

/** posthog-js keeps an anonymous distinct id from the visitor's first visit, up to this long before. */
const MAX_VISITOR_AGE_MS = 30 * 86_400_000;

/**
 * Draws a session's identity from its own stream: a session id minted as the
 * session starts, a distinct id from the visitor's first visit, a
 * public-looking ip, and a site named from faker's words (as faker's own
 * url() does; calling it costs 50 µs a session for reseeding).
 */
function sampleIdentity(random: SessionRandom, startMs: number, ids: UuidV7): Identity {
  const rng = random.stream('identity');
  const domainSuffixes = (suffixes ??= faker.definitions.internet.domain_suffix ?? ['com']);
  return {
    sessionId: ids.at(startMs),
    distinctId: new UuidV7(rng).at(startMs - uniform(rng) * MAX_VISITOR_AGE_MS),
    ip: [between(rng, 1, 223), between(rng, 0, 255), between(rng, 0, 255), between(rng, 1, 254)].join('.'),
    siteUrl: `https://${pick(rng, words())}-${pick(rng, words())}.${pick(rng, domainSuffixes)}`,
  };
}

// ===========================================================================
// 3. Recording (to be rebuilt): the page model, windows, activity; and sizing.
// ===========================================================================
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
  private readonly siteUrl: string;
  private readonly windows = new Map<number, { page: Page; viewport: readonly [number, number] }>();

  constructor(random: SessionRandom, siteUrl: string) {
    this.rng = random.stream('content');
    this.siteUrl = siteUrl;
  }

  /** The snapshot's events, with about `textChars` characters of JSON besides image data. */
  record(snapshot: PlannedSnapshot, textChars: number): EventText[] {
    const text = (event: RrwebEvent) => eventText(this.rng, event);
    if (snapshot.kind === 'full') {
      const viewport = this.windows.get(snapshot.window)?.viewport ?? pick(this.rng, VIEWPORTS);
      const href = `${this.siteUrl}/${pick(this.rng, words())}`;
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
  const events = recorder.record(snapshot, Math.min(targetChars * STRUCTURE_SHARE[snapshot.kind], maxEventChars / 4));
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

const legacyGzip = {
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
  plainTexts[0] = Buffer.concat([legacyGzip.bom, plainTexts[0]!]);
  const deflatedTexts = plainTexts.map((text, at) => deflateText(text, at === 0));
  let left = targetBytes - legacyGzip.frameBytes;
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
  member.set(legacyGzip.header);
  let at = legacyGzip.header.length;
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
  member.set(legacyGzip.end, at);
  member.writeUInt32LE(crc >>> 0, at + legacyGzip.end.length);
  member.writeUInt32LE(size >>> 0, at + legacyGzip.end.length + 4); // ISIZE: the length modulo 2^32
  return member;
}

/**
 * A snapshot's data for `--payload rrweb`: the gzip of its events, whose
 * base64 lands within 5% of `snapshot.size` characters (never below the
 * smallest batch of its kind). Call it in plan order: it records the events
 * of the snapshot's window.
 */
export function rrwebSnapshotData(recorder: Recorder, snapshot: PlannedSnapshot, random: (bytes: number) => Buffer): { member: Buffer; events: EventText[] } {
  const targetBytes = Math.floor((snapshot.size * 3) / 4);
  const fixedBytes = legacyGzip.frameBytes + legacyGzip.bom.length;
  const share = STRUCTURE_SHARE[snapshot.kind];
  // JSON characters for which text at TEXT_BYTES_PER_CHAR takes `share` of the bytes and images the rest.
  const jsonChars = (targetBytes - fixedBytes) / (share * TEXT_BYTES_PER_CHAR + (1 - share) * IMAGE_BYTES_PER_CHAR);
  const events = recorder.record(snapshot, share * jsonChars);
  // An image only where the bytes left for it are expected to be worth an event.
  if (snapshot.kind === 'incremental' && (1 - share) * targetBytes >= MIN_IMAGE_EVENT_BYTES) events.push(recorder.imageEvent(snapshot));
  return { member: gzipEvents(events, targetBytes, random), events };
}


// ===========================================================================
// 4. Payloads: the snapshot data each format carries, written straight into
// the output buffer. `--payload random` is base64 of a gzip member of stored
// blocks of random bytes: valid gzip-base64, exactly the planned size.
// ===========================================================================

/** Snapshot data read front to back: each call writes the next `count` characters. */
export interface PayloadText {
  writeNext(target: Buffer, offset: number, count: number): void;
}

/** Base64 of at most 48 KiB per call stays on node's fast path (TOOLCHAIN.md). */
const BASE64_PIECE_CHARS = 48 * 1024;

/**
 * Base64 text of a stream of bytes, written front to back in pieces of any
 * length: the text is the same however it is split.
 *
 * @example
 * const text = new Base64Text((count) => randomBytes(count));
 * text.writeNext(buffer, 0, 100); // 100 characters of [A-Za-z0-9+/]
 */
export class Base64Text implements PayloadText {
  /** Returns the next `count` bytes of the stream (fewer at its end). */
  private readonly nextBytes: (count: number) => Buffer;
  /** Characters encoded but not yet written. */
  private carry = '';

  constructor(nextBytes: (count: number) => Buffer) {
    this.nextBytes = nextBytes;
  }

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

/** Base64 of a whole buffer, such as a gzip member, and its length in characters. */
export function base64Of(bytes: Buffer): { text: PayloadText; length: number } {
  let at = 0;
  return { text: new Base64Text((count) => bytes.subarray(at, (at += count))), length: Math.ceil(bytes.length / 3) * 4 };
}

/**
 * `--payload random` for one snapshot of about `size` characters: padded
 * base64 of random bytes, the alphabet and entropy of real gzip-base64 data,
 * so PostHog's `decompress` base64-decodes it (and stops at gunzip, as it
 * would on any opaque data). The length is `size` rounded to whole base64
 * quanta (4 characters) stochastically, which keeps the mean. A gzip member
 * of stored blocks would gunzip too, but its CRC and framing cost a third
 * of the default mode's speed.
 */
function randomSnapshotData(keystream: (count: number) => Buffer, rng: RandomGenerator, size: number): { text: PayloadText; length: number } {
  return { text: new Base64Text(keystream), length: 4 * Math.max(1, stochasticRound(rng, size / 4)) };
}

// ===========================================================================
// 6. Messages: each format's envelope around the snapshot data, the Kafka
// key and headers, chunks of `$snapshot` data, batches of `$snapshot_items`
// events, vegeta targets; and the room librdkafka and kcat leave for them.
// ===========================================================================

/** A Kafka header as capture sets it: name and value. */
export type Header = readonly [name: string, value: string];

/** One line of output: a head and tail of text around `dataLength` characters of payload. */
export interface Message {
  /** The Kafka headers capture would set, written before the line (and a tab) with --headers; made only then. */
  headers: () => readonly Header[];
  head: string;
  /** The line's data: the next `dataLength` characters of this text. */
  data: PayloadText;
  dataLength: number;
  tail: string;
}

/** A snapshot as it leaves capture: its messages, all received at one time. */
export interface SnapshotMessages {
  kind: SnapshotKind;
  /** Characters of data as it travels: base64 for --format snapshot, the events' JSON for the others. */
  size: number;
  receivedAtUs: number;
  messages: readonly Message[];
}

const json = JSON.stringify;
/** JSON text as it reads inside another JSON string (the envelopes' `data`), escaped once more. */
const escapeInData = (text: string): string => json(text).slice(1, -1);

const escapedLiterals = new WeakMap<TemplateStringsArray, string[]>();
/**
 * A template of JSON that sits inside the `data` string: its literal text
 * escaped once more, at its first use (a call site's strings are one
 * object), and its values spliced as they are: ids, numbers and text
 * already escaped. Escaping every message whole cost a third of the run.
 */
function inData(literals: TemplateStringsArray, ...values: (string | number | boolean)[]): string {
  let escaped = escapedLiterals.get(literals);
  if (!escaped) escapedLiterals.set(literals, (escaped = literals.map(escapeInData)));
  let text = escaped[0]!;
  for (let at = 0; at < values.length; at++) text += values[at]! + escaped[at + 1]!;
  return text;
}

/**
 * A string as Python's json.dumps writes it (ensure_ascii): JSON.stringify's
 * escapes, and every character outside printable ASCII as a lower-case \uXXXX.
 */
function pythonString(text: string): string {
  return json(text).replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `null` or the value as JSON. */
const pythonOrNull = (value: string | null): string => (value === null ? 'null' : pythonString(value));
const jsonOrNull = (value: string | number | null): string => (value === null ? 'null' : json(value));

/** Python's datetime.isoformat() of a UTC time: microseconds unless zero, and +00:00. */
function pythonIsoTime(us: number): string {
  const micros = us % 1_000_000;
  return `${isoSeconds(us)}${micros === 0 ? '' : `.${String(micros).padStart(6, '0')}`}+00:00`;
}

let isoSecond = { second: NaN, text: '' };
/** The time's date and whole seconds, `2024-01-01T00:00:02`, kept from the last call: messages come in order. */
function isoSeconds(us: number): string {
  const second = Math.floor(us / 1_000_000);
  if (second !== isoSecond.second) isoSecond = { second, text: isoString(second * 1000).slice(0, 19) };
  return isoSecond.text;
}

/** chrono's to_rfc3339 with AutoSi and Z, as capture-rs writes `now` and `timestamp`: 0, 3 or 6 fraction digits. */
function chronoIsoTime(us: number): string {
  const micros = us % 1_000_000;
  const fraction = micros === 0 ? '' : micros % 1000 === 0 ? `.${String(micros / 1000).padStart(3, '0')}` : `.${String(micros).padStart(6, '0')}`;
  return `${isoSeconds(us)}${fraction}Z`;
}

/** The time crate's RFC 3339, as capture-rs writes `sent_at` from posthog-js's milliseconds: trailing zeros trimmed. */
function rfc3339Trimmed(ms: number): string {
  const millis = ms % 1000;
  return `${isoSeconds(ms * 1000)}${millis === 0 ? '' : `.${String(millis).padStart(3, '0').replace(/0+$/, '')}`}Z`;
}

/** Bytes librdkafka counts for a header: name, value and a varint length of each (RD_KAFKAP headers, zigzag). */
function headerWireBytes([name, value]: Header): number {
  const varint = (n: number) => (n <= 63 ? 1 : n <= 8191 ? 2 : n <= 1048575 ? 3 : n <= 134217727 ? 4 : 5);
  const nameBytes = Buffer.byteLength(name);
  const valueBytes = Buffer.byteLength(value);
  return nameBytes + valueBytes + varint(nameBytes) + varint(valueBytes);
}

/** librdkafka's most a v2 record can add to key, value and headers (RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD). */
const RDKAFKA_RECORD_OVERHEAD = 36;
/** kcat reads lines 1 KiB at a time into a buffer of message.max.bytes: a line this much shorter always fits. */
const KCAT_READ_BYTES = 1024;
/** Session ids are UUIDs: the key's length. */
const KEY_BYTES = 36;

/**
 * The most bytes a message's value may take: kcat must take its line (key,
 * tab and value) whatever its place in the input, and librdkafka its
 * record (value, key, headers and overhead). Both are counted as if --key
 * and every header were on, so --key and --headers never change a value.
 */
function maxValueBytes(config: Config, headers: readonly Header[]): number {
  const headerBytes = headers.reduce((sum, header) => sum + headerWireBytes(header), 0);
  const byKcat = config.maxMessageBytes - KCAT_READ_BYTES - (KEY_BYTES + 1);
  const byLibrdkafka = config.maxMessageBytes - RDKAFKA_RECORD_OVERHEAD - KEY_BYTES - headerBytes;
  return Math.min(byKcat, byLibrdkafka);
}

/** Shapes as wide as any the run makes, for the widest envelope. */
const UUID_SHAPE = '00000000-0000-7000-8000-000000000000';
const WIDEST_MS = Date.UTC(2254, 11, 31, 23, 59, 59, 999);
const WIDEST_US = WIDEST_MS * 1000 + 999;
/** Longer than any site the identity draws; a longer one would only shrink chunks, never break the limit. */
const MAX_SITE_URL_LENGTH = 100;
/** An items message must hold the smallest page and any single activity event. */
const MIN_EVENT_ROOM_BYTES = 8192;

/**
 * The widest envelope, key and headers any message of the run can have
 * around its data, with librdkafka's overhead and kcat's margin: what
 * --max-message-bytes must leave room for.
 */
function maxEnvelopeBytes(config: Config): number {
  const identity: Identity = {
    sessionId: UUID_SHAPE, distinctId: UUID_SHAPE, ip: '255.255.255.255', siteUrl: `https://${'w'.repeat(MAX_SITE_URL_LENGTH - 8)}`,
  };
  const frame = new MessageFrame(config, identity);
  const fields: ChunkFields = {
    uuid: UUID_SHAPE, windowId: UUID_SHAPE, chunkId: UUID_SHAPE, chunkIndex: Number.MAX_SAFE_INTEGER,
    chunkCount: Number.MAX_SAFE_INTEGER, hasFullSnapshot: false, eventsSummary: null, receivedAtUs: WIDEST_US, sentAtMs: WIDEST_MS,
  };
  const [head, tail] = config.format === 'snapshot'
    ? [frame.snapshotHead(fields), frame.snapshotTail(fields)]
    : [frame.itemsHead(fields), frame.itemsTail(fields)];
  const envelope = Buffer.byteLength(head) + Buffer.byteLength(tail);
  return envelope + config.maxMessageBytes - maxValueBytes(config, frame.headers(fields));
}

/** The fields of one message besides its data: ids, numbers and times, none needing JSON escaping. */
export interface ChunkFields {
  uuid: string;
  windowId: string;
  chunkId: string;
  chunkIndex: number;
  chunkCount: number;
  hasFullSnapshot: boolean;
  /** The legacy chunk 0's summary of every event, as Python's json.dumps wrote it, or null. */
  eventsSummary: string | null;
  receivedAtUs: number;
  sentAtMs: number;
}

/**
 * The message text around each message's data: `--format snapshot` as
 * PostHog's Python capture wrote it (json.dumps: ", " and ": ", non-ASCII
 * escaped, times with +00:00), `--format snapshot-items` as capture-rs writes
 * it (compact, its envelope struct's key order, `data` with sorted keys). The
 * session's own fields are escaped once, here; each message only splices in
 * fields that need no escaping (see `inData`).
 */
export class MessageFrame {
  private readonly config: Config;
  private readonly identity: Identity;
  /** The session's own fields, escaped once for every message. */
  private readonly pythonIdentity: string;
  private readonly pythonProperties: string;
  private readonly pythonToken: string;
  private readonly teamId: string;
  private readonly itemsIdentity: string;
  private readonly itemsDistinctId: string;
  private readonly jsonToken: string;

  constructor(config: Config, identity: Identity) {
    this.config = config;
    this.identity = identity;
    const { distinctId, ip, siteUrl, sessionId } = identity;
    this.pythonIdentity = `"distinct_id": ${pythonString(distinctId)}, "ip": ${pythonString(ip)}, "site_url": ${pythonString(siteUrl)}`;
    this.pythonProperties = escapeInData(`"distinct_id": ${pythonString(distinctId)}, "$session_id": ${pythonString(sessionId)}`);
    this.pythonToken = pythonOrNull(config.token);
    this.teamId = jsonOrNull(config.teamId);
    this.itemsIdentity = `"distinct_id":${json(distinctId)},"ip":${json(ip)}`;
    this.itemsDistinctId = escapeInData(json(distinctId));
    this.jsonToken = jsonOrNull(config.token);
  }

  /** `--format snapshot` up to the chunk's data: base64, which needs no escaping. */
  snapshotHead(chunk: ChunkFields): string {
    return `{"uuid": "${chunk.uuid}", ${this.pythonIdentity}, "data": "` +
      inData`{"event": "$snapshot", "properties": {${this.pythonProperties}, "$window_id": "${chunk.windowId}", ` +
      inData`"$snapshot_data": {"chunk_id": "${chunk.chunkId}", "chunk_index": ${chunk.chunkIndex}, "chunk_count": ${chunk.chunkCount}, "data": "`;
  }

  snapshotTail(chunk: ChunkFields): string {
    const summary = chunk.eventsSummary === null ? 'null' : escapeInData(chunk.eventsSummary);
    return inData`", "compression": "gzip-base64", "has_full_snapshot": ${chunk.hasFullSnapshot}, "events_summary": ${summary}}}}` +
      `", "team_id": ${this.teamId}, "now": "${pythonIsoTime(chunk.receivedAtUs)}", ` +
      `"sent_at": "${pythonIsoTime(chunk.sentAtMs * 1000)}", "token": ${this.pythonToken}}`;
  }

  /** `--format snapshot-items` up to the events: their JSON, escaped once to sit in the `data` string. */
  itemsHead(fields: Pick<ChunkFields, 'uuid' | 'windowId'>): string {
    return `{"uuid":"${fields.uuid}",${this.itemsIdentity},"data":"` +
      inData`{"event":"$snapshot_items","properties":{"$lib":"web","$session_id":"${this.identity.sessionId}","$snapshot_items":`;
  }

  itemsTail(fields: Pick<ChunkFields, 'windowId' | 'receivedAtUs' | 'sentAtMs'>): string {
    const now = chronoIsoTime(fields.receivedAtUs);
    return inData`,"$snapshot_source":"web","$window_id":"${fields.windowId}","distinct_id":${this.itemsDistinctId}}}` +
      `","now":"${now}","sent_at":"${rfc3339Trimmed(fields.sentAtMs)}","token":${this.jsonToken},"event":"$snapshot_items","timestamp":"${now}"}`;
  }

  /**
   * The headers capture sets: capture-rs's CapturedEventHeaders for
   * snapshot-items (its two null-valued ones left out), the Python capture's
   * token and distinct_id for snapshot. No token, no token header.
   */
  headers(fields: Pick<ChunkFields, 'uuid' | 'receivedAtUs'>): Header[] {
    const { token, format } = this.config;
    const { distinctId, sessionId } = this.identity;
    const headers: Header[] = token === null ? [] : [['token', token]];
    headers.push(['distinct_id', distinctId]);
    if (format === 'snapshot') return headers;
    headers.push(
      ['session_id', sessionId],
      ['timestamp', String(Math.floor(fields.receivedAtUs / 1000))],
      ['event', '$snapshot_items'],
      ['uuid', fields.uuid],
      ['now', chronoIsoTime(fields.receivedAtUs)],
    );
    return headers;
  }
}

/** A message's data when it is all in its head and tail. */
const NO_DATA: PayloadText = { writeNext() {} };

/** The event fields PostHog's legacy writer kept in `events_summary` (EVENT_SUMMARY_DATA_INCLUSIONS). */
const SUMMARY_FIELDS = new Set(['type', 'source', 'tag', 'plugin', 'href', 'width', 'height']);
const SUMMARY_PAYLOAD_FIELDS = new Set(['href', 'level']);

/** What Python's `type(value) in [str, int]` keeps: strings and whole numbers, not booleans. */
const summarizable = (value: unknown): boolean => typeof value === 'string' || Number.isInteger(value);

/**
 * `events_summary` as PostHog's legacy writer computed it
 * (get_events_summary_from_snapshot_data) and json.dumps wrote it: per event
 * its timestamp, type and the listed data fields holding strings or whole
 * numbers, then those of a `payload` object; sorted by timestamp, stably.
 *
 * @example
 * eventsSummary([{ type: 3, timestamp: 5, data: { source: 1, positions: [] } }]);
 * // '[{"timestamp": 5, "type": 3, "data": {"source": 1}}]'
 */
export function eventsSummary(events: readonly { type: number; timestamp: number; data: Record<string, unknown> }[]): string {
  const fields = (data: Record<string, unknown>, keep: Set<string>) =>
    Object.entries(data).filter(([key, value]) => keep.has(key) && summarizable(value))
      .map(([key, value]) => `${pythonString(key)}: ${typeof value === 'string' ? pythonString(value) : value}`);
  const items = [...events].sort((a, b) => a.timestamp - b.timestamp).map(({ timestamp, type, data }) => {
    const kept = fields(data, SUMMARY_FIELDS);
    const { payload } = data;
    if (payload && typeof payload === 'object' && !Array.isArray(payload)) {
      kept.push(`"payload": {${fields(payload as Record<string, unknown>, SUMMARY_PAYLOAD_FIELDS).join(', ')}}`);
    }
    return `{"timestamp": ${timestamp}, "type": ${type}, "data": {${kept.join(', ')}}}`;
  });
  return `[${items.join(', ')}]`;
}

/** JSON with every object's keys sorted, as capture-rs re-serializes rrweb events (serde_json without preserve_order). */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value === null || typeof value !== 'object') return json(value);
  const entries = Object.entries(value).filter(([, item]) => item !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${json(key)}:${sortedJson(item)}`).join(',')}}`;
}

/** The posthog-js release whose recordings the real ones in ../shared/data/real come from. */
const POSTHOG_JS_VERSION = '1.242.1';
/** Rust capture's limit on a recording request's body. */
const CAPTURE_MAX_BODY_BYTES = 25_000_000;
/** Snapshots of rrweb events are at most this many characters: what capture accepts in one request. */
const MAX_RRWEB_SNAPSHOT_CHARS = CAPTURE_MAX_BODY_BYTES;
/** gzip level for vegeta bodies: level 1 keeps the generator ahead; the server reads any level alike. */
const BODY_GZIP = { level: 1 };
/** posthog-js's request queue sends every 3 s; each event in a request carries its age as `offset`. */
const MAX_SEND_OFFSET_MS = 3000;

/**
 * One session as it runs: its plan, identity and payload state. `next()`
 * makes the next snapshot's messages; they must be written in order, since
 * each continues the session's page and payload streams.
 *
 * @example
 * const session = new SessionMessages(config, 0, config.startMs);
 * for (let snapshot = session.next(); snapshot; snapshot = session.next()) write(snapshot.messages);
 */
export class SessionMessages {
  readonly index: number;
  readonly identity: Identity;
  readonly plan: SessionPlan;
  private readonly config: Config;
  private readonly random: SessionRandom;
  private readonly frame: MessageFrame;
  /** posthog-js's ids: session, windows and events, one UUIDv7 clock. */
  private readonly clientIds: UuidV7;
  /** capture's ids and the stochastic rounding of random payload sizes. */
  private readonly captureRng: RandomGenerator;
  private readonly payloadRng: RandomGenerator;
  /** `--payload random`'s bytes: one keystream a session, each snapshot its next stretch. */
  private readonly payloadBytes: ((count: number) => Buffer) | undefined;
  private readonly recorder: Recorder | undefined;
  private readonly windowIds: string[] = [];
  private upcoming: PlannedSnapshot | undefined;
  /** Messages and snapshots so far, for --verbose. */
  snapshots = 0;

  constructor(config: Config, index: number, arrivalMs: number) {
    this.config = config;
    this.index = index;
    this.random = new SessionRandom(config.seed, index);
    this.plan = new SessionPlan(config, this.random, arrivalMs);
    this.clientIds = new UuidV7(this.random.stream('ids'));
    this.identity = sampleIdentity(this.random, arrivalMs, this.clientIds);
    this.frame = new MessageFrame(config, this.identity);
    this.captureRng = this.random.stream('capture');
    this.payloadRng = this.random.stream('payload');
    const random = config.format === 'snapshot' && config.payload === 'random';
    this.payloadBytes = random ? this.random.bytes('payload') : undefined;
    this.recorder = random ? undefined : new Recorder(this.random, this.identity.siteUrl);
    this.upcoming = this.plan.next();
  }

  /** When the next snapshot reaches capture (µs), or undefined when the session is over. */
  get nextAtUs(): number | undefined {
    return this.upcoming?.receivedAtUs;
  }

  /** The next snapshot's messages, or undefined when the session is over. */
  next(): SnapshotMessages | undefined {
    const snapshot = this.upcoming;
    if (!snapshot) return undefined;
    this.upcoming = this.plan.next();
    this.snapshots++;
    if (snapshot.window === this.windowIds.length) this.windowIds.push(this.clientIds.at(snapshot.firstEventMs));
    const windowId = this.windowIds[snapshot.window]!;
    if (this.config.format === 'snapshot') return this.snapshotChunks(snapshot, windowId);
    if (this.config.format === 'snapshot-items') return this.itemsBatches(snapshot, windowId);
    return this.vegetaTarget(snapshot, windowId);
  }

  /** `--format snapshot`: the snapshot's data (random, or rrweb gzip-base64) in chunks of one chunk_id, UUIDTs as capture made them. */
  private snapshotChunks(snapshot: PlannedSnapshot, windowId: string): SnapshotMessages {
    const { config, frame, captureRng } = this;
    let data: { text: PayloadText; length: number };
    let eventsSummaryText: string | null = null;
    if (this.recorder) {
      const { member, events } = rrwebSnapshotData(this.recorder, snapshot, this.random.bytes({ snapshot: snapshot.ordinal }));
      data = base64Of(member);
      eventsSummaryText = eventsSummary(events.map((event) => JSON.parse(event.parts.join(''))));
    } else {
      data = randomSnapshotData(this.payloadBytes!, this.payloadRng, snapshot.size);
    }
    // Chunk 0 carries the summary in place of the 'null' the others carry.
    const capacity = config.chunkSize;
    const firstCapacity = capacity - (eventsSummaryText === null ? 0 : escapeInData(eventsSummaryText).length - 'null'.length);
    const chunkCount = 1 + Math.max(0, Math.ceil((data.length - firstCapacity) / capacity));
    const ms = snapshot.receivedAtUs / 1000;
    const chunkId = uuidT(captureRng, ms, 0);
    const messages: Message[] = [];
    for (let chunkIndex = 0, sent = 0; chunkIndex < chunkCount; chunkIndex++) {
      const dataLength = Math.min(chunkIndex === 0 ? firstCapacity : capacity, data.length - sent);
      const chunk: ChunkFields = {
        uuid: uuidT(captureRng, ms, chunkIndex + 1), windowId, chunkId, chunkIndex, chunkCount, hasFullSnapshot: snapshot.kind === 'full',
        eventsSummary: chunkIndex === 0 ? eventsSummaryText : null, receivedAtUs: snapshot.receivedAtUs, sentAtMs: snapshot.sentAtMs,
      };
      messages.push({ headers: () => frame.headers(chunk), head: frame.snapshotHead(chunk), data: data.text, dataLength, tail: frame.snapshotTail(chunk) });
      sent += dataLength;
    }
    return { kind: snapshot.kind, size: data.length, receivedAtUs: snapshot.receivedAtUs, messages };
  }

  /**
   * `--format snapshot-items`: the snapshot's rrweb events as JSON, as many to
   * a message as fit, split at event boundaries as capture splits batches.
   * The envelope's uuid is the batch's first `$snapshot` event's, minted by
   * posthog-js as it sent the batch.
   */
  private itemsBatches(snapshot: PlannedSnapshot, windowId: string): SnapshotMessages {
    const { frame } = this;
    const room = this.config.maxMessageBytes - maxEnvelopeBytes(this.config) - 2; // 2: the list's brackets
    const { events } = eventsOfLength(this.recorder!, snapshot, snapshot.size, room);
    const random = this.random.bytes({ snapshot: snapshot.ordinal });
    const texts = events.map((event) => escapeInData(sortedJson(JSON.parse(renderEvent(event, (chars) => lettersOf(random(chars)))))));
    const size = jsonLength(events);
    const batches: string[][] = [[]];
    let batchBytes = 0;
    for (const text of texts) {
      if (batches.at(-1)!.length > 0 && batchBytes + 1 + text.length > room) {
        batches.push([]);
        batchBytes = -1;
      }
      batches.at(-1)!.push(text);
      batchBytes += 1 + text.length;
    }
    const messages = batches.map((batch): Message => {
      const fields = { uuid: this.clientIds.at(snapshot.sentAtMs), windowId, receivedAtUs: snapshot.receivedAtUs, sentAtMs: snapshot.sentAtMs };
      const head = frame.itemsHead(fields) + `[${batch.join(',')}]` + frame.itemsTail(fields);
      return { headers: () => frame.headers(fields), head, data: NO_DATA, dataLength: 0, tail: '' };
    });
    return { kind: snapshot.kind, size, receivedAtUs: snapshot.receivedAtUs, messages };
  }

  /**
   * `--format vegeta`: one target per snapshot (`vegeta attack -lazy
   * -format=json`), posting to --capture-url what posthog-js sends: a gzipped
   * JSON list holding one `$snapshot` event with the batch's rrweb events, the
   * URL carrying posthog-js's send time and version as it does. Targets have
   * exactly vegeta's keys; the body is base64, as vegeta requires.
   */
  private vegetaTarget(snapshot: PlannedSnapshot, windowId: string): SnapshotMessages {
    const { config, identity } = this;
    // JSON compresses, so a batch of no more JSON than capture's limit has a body within it.
    const { events } = eventsOfLength(this.recorder!, snapshot, Math.min(snapshot.size, CAPTURE_MAX_BODY_BYTES - 1000));
    const random = this.random.bytes({ snapshot: snapshot.ordinal });
    const snapshotData = renderEvents(events, (chars) => lettersOf(random(chars)));
    const properties =
      `{"$snapshot_bytes":${snapshotData.length},"$snapshot_data":${snapshotData},"$session_id":${json(identity.sessionId)},` +
      `"$window_id":${json(windowId)},"$lib":"web","$lib_version":"${POSTHOG_JS_VERSION}","token":${jsonOrNull(config.token)},` +
      `"distinct_id":${json(identity.distinctId)}}`;
    const uuid = this.clientIds.at(snapshot.sentAtMs);
    const offset = Math.floor(uniform(this.payloadRng) * MAX_SEND_OFFSET_MS);
    const body = base64Of(gzipSync(`[{"uuid":"${uuid}","event":"$snapshot","properties":${properties},"offset":${offset}}]`, BODY_GZIP));
    const url = `${config.captureUrl}${config.captureUrl.includes('?') ? '&' : '?'}_=${snapshot.sentAtMs}&ver=${POSTHOG_JS_VERSION}`;
    const message: Message = {
      headers: () => [], head: `{"method":"POST","url":${json(url)},"body":"`, data: body.text, dataLength: body.length,
      tail: '","header":{"Content-Type":["application/json"]}}',
    };
    return { kind: snapshot.kind, size: snapshotData.length, receivedAtUs: snapshot.receivedAtUs, messages: [message] };
  }
}

// ===========================================================================
// 7. Output: sessions interleaved in time as capture writes them, lines laid
// out in large blocks and written to stdout (never a partial line), pacing
// for --rate and --realtime, signals, and what was delivered for --progress
// and --stats.
// ===========================================================================

/** Sessions in flight, ordered by when their next snapshot reaches capture; ties by session id, so shards merge alike. */
class SessionQueue {
  private readonly heap: SessionMessages[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** When the earliest waiting snapshot reaches capture (µs), or Infinity. */
  get nextAtUs(): number {
    return this.heap[0]?.nextAtUs ?? Infinity;
  }

  push(session: SessionMessages): void {
    const { heap } = this;
    heap.push(session);
    for (let at = heap.length - 1; at > 0; ) {
      const parent = (at - 1) >> 1;
      if (!SessionQueue.before(heap[at]!, heap[parent]!)) break;
      [heap[at], heap[parent]] = [heap[parent]!, heap[at]!];
      at = parent;
    }
  }

  pop(): SessionMessages | undefined {
    const { heap } = this;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || !last) return top;
    heap[0] = last;
    for (let at = 0; ; ) {
      const [left, right] = [2 * at + 1, 2 * at + 2];
      let first = at;
      if (left < heap.length && SessionQueue.before(heap[left]!, heap[first]!)) first = left;
      if (right < heap.length && SessionQueue.before(heap[right]!, heap[first]!)) first = right;
      if (first === at) break;
      [heap[at], heap[first]] = [heap[first]!, heap[at]!];
      at = first;
    }
    return top;
  }

  private static before(a: SessionMessages, b: SessionMessages): boolean {
    return a.nextAtUs! < b.nextAtUs! || (a.nextAtUs === b.nextAtUs && a.identity.sessionId < b.identity.sessionId);
  }
}

/** How many sessions are in flight, now, at most, and on average over the run's own time. */
export class InFlight {
  now = 0;
  max = 0;
  private area = 0;
  private firstUs: number | undefined;
  private lastUs = 0;

  arrive(atUs: number): void {
    this.advance(atUs);
    this.max = Math.max(this.max, ++this.now);
  }

  leave(atUs: number): void {
    this.advance(atUs);
    this.now--;
  }

  /** The time-weighted mean since the first arrival. */
  get mean(): number {
    return this.firstUs === undefined || this.lastUs === this.firstUs ? this.now : this.area / (this.lastUs - this.firstUs);
  }

  private advance(atUs: number): void {
    this.firstUs ??= atUs;
    this.area += this.now * (atUs - this.lastUs);
    this.lastUs = atUs;
  }
}

/** A snapshot to write, the session it belongs to, and whether it is that session's last. */
export interface ScheduledSnapshot {
  session: SessionMessages;
  snapshot: SnapshotMessages;
  last: boolean;
}

/**
 * Every snapshot of the run in the order capture writes them: sessions
 * arrive (Arrivals), and of all in flight, the snapshot received first goes
 * next. With --order session, one whole session after another instead.
 * Only this shard's sessions are made; the arrivals of all are walked, so a
 * shard's snapshots are exactly the unsharded run's, in the same order.
 *
 * @example
 * for (const { snapshot } of scheduleSnapshots(config, new InFlight())) console.log(snapshot.receivedAtUs);
 */
export function* scheduleSnapshots(config: Config, inFlight: InFlight): Generator<ScheduledSnapshot> {
  const arrivals = new Arrivals(config);
  const queue = new SessionQueue();
  const ours = (index: number) => index % config.shard.count === config.shard.index;
  let arrival = arrivals.next();
  for (;;) {
    while (arrival.index < config.count && (queue.size === 0 || (config.order === 'time' && arrival.atMs * 1000 <= queue.nextAtUs))) {
      if (ours(arrival.index)) {
        queue.push(new SessionMessages(config, arrival.index, arrival.atMs));
        inFlight.arrive(arrival.atMs * 1000);
      }
      arrival = arrivals.next();
    }
    const session = queue.pop();
    if (!session) return;
    const snapshot = session.next()!;
    const last = session.nextAtUs === undefined;
    if (!last) queue.push(session);
    yield { session, snapshot, last };
    if (last) inFlight.leave(snapshot.receivedAtUs);
  }
}

/** Ends waits early when a signal asks the run to stop. */
class StopSignal {
  /** 130, 143 or 129 once SIGINT, SIGTERM or SIGHUP came. */
  status: number | undefined;
  private wake: (() => void) | undefined;

  request(status: number): void {
    this.status ??= status;
    this.wake?.();
  }

  /** Sleeps until `untilMs` on performance.now()'s clock, or until a stop; timers are kept short of their 2^31 ms ceiling. */
  async sleepUntil(untilMs: number): Promise<void> {
    while (this.status === undefined) {
      const ms = untilMs - performance.now();
      if (ms <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(Math.ceil(ms), MAX_TIMER_MS));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
const MAX_TIMER_MS = 2 ** 30;

/** A generator that falls behind --rate catches up by at most this much, so a producer sees an even stream. */
const MAX_CATCH_UP_MS = 100;

/**
 * When lines may be written: --realtime holds each snapshot until its `now`
 * comes (counted from the run's start, sped up by --speed), --rate spaces
 * messages k/rate seconds apart; with both, a message waits for the later.
 */
class Pacer {
  private readonly config: Config;
  private readonly stop: StopSignal;
  private readonly originMs = performance.now();
  /** When the first message went out: --rate counts from it, not from the start-up before it. */
  private rateOriginMs: number | undefined;
  private sent = 0;

  constructor(config: Config, stop: StopSignal) {
    this.config = config;
    this.stop = stop;
  }

  /**
   * A wait until the snapshot's time comes, first handing what is written so
   * far (`flush`) to the reader; undefined when it is due already, so the hot
   * path does not await.
   */
  snapshotDue(receivedAtUs: number, flush: () => Promise<void>): Promise<void> | undefined {
    const speed = this.config.realtimeSpeed;
    if (speed === null) return undefined;
    return this.waitUntil(this.originMs + (receivedAtUs / 1000 - this.config.startMs) / speed, flush);
  }

  /** A wait until the next message is due under --rate, or undefined. */
  messageDue(flush: () => Promise<void>): Promise<void> | undefined {
    if (this.config.rate === 0) return undefined;
    const nowMs = performance.now();
    this.rateOriginMs ??= nowMs;
    let dueMs = this.rateOriginMs + (this.sent++ * 1000) / this.config.rate;
    if (nowMs - dueMs > MAX_CATCH_UP_MS) {
      this.rateOriginMs += nowMs - dueMs - MAX_CATCH_UP_MS;
      dueMs = nowMs - MAX_CATCH_UP_MS;
    }
    return this.waitUntil(dueMs, flush);
  }

  private waitUntil(dueMs: number, flush: () => Promise<void>): Promise<void> | undefined {
    if (dueMs <= performance.now()) return undefined;
    return flush().then(() => this.stop.sleepUntil(dueMs));
  }
}

/**
 * What a line tells --stats once the reader has it, besides its bytes: the
 * kind of snapshot it starts and whether it ends its session, as bits, so
 * blocks of lines hold numbers rather than objects.
 */
const NOTE = { startsFull: 1, startsIncremental: 2, endsSession: 4 } as const;

/** A block of whole lines, waiting to be written, with what each line tells once delivered. */
interface Block {
  buffer: Buffer;
  filled: number;
  /** Per line: where it ends in the block, its bytes, its NOTE bits, the size of the snapshot it starts. */
  ends: number[];
  bytes: number[];
  notes: number[];
  sizes: number[];
}

/** Block size: large writes amortize the system call; lines that do not fit go out in pieces. */
const BLOCK_BYTES = 1 << 20;

/**
 * Collects lines into blocks and writes each block to a file descriptor from
 * node's thread pool while the next one fills: generation and the write
 * system call overlap, about twice as fast as process.stdout.write here.
 * Lines count as delivered once the reader has taken all their bytes. A line
 * longer than a block is written in pieces after the block before it.
 */
export class LineWriter {
  private readonly fd: number;
  private readonly onDelivered: (bytes: number, note: number, snapshotSize: number) => void;
  private blocks: [Block, Block];
  private inFlight: Promise<void> = Promise.resolve();
  /** Set once the reader has gone away (EPIPE) or a write failed; later lines are dropped. */
  closed = false;
  /** Why writing stopped, if not because the reader went away. */
  failure: NodeJS.ErrnoException | undefined;
  /**
   * Set if the descriptor turns out to be non-blocking after all (EAGAIN):
   * from then on process.stdout, which waits for the pipe to drain, takes
   * every write.
   */
  private useStream = false;

  constructor(fd: number, onDelivered: (bytes: number, note: number, snapshotSize: number) => void) {
    this.fd = fd;
    this.onDelivered = onDelivered;
    const block = (): Block => ({ buffer: Buffer.allocUnsafe(BLOCK_BYTES), filled: 0, ends: [], bytes: [], notes: [], sizes: [] });
    this.blocks = [block(), block()];
  }

  /**
   * Adds a line of `bytes` bytes if it fits in the block being filled, and
   * says whether it did; if not, the caller awaits `addAfterFlush`. (Most
   * lines fit: awaiting each would cost a tenth of the run.)
   */
  add(line: Line): boolean {
    const block = this.blocks[0];
    if (line.bytes > block.buffer.length - block.filled) return false;
    block.filled = line.writeTo(block.buffer, block.filled);
    block.ends.push(block.filled);
    block.bytes.push(line.bytes);
    block.notes.push(line.note);
    block.sizes.push(line.snapshotSize);
    return true;
  }

  /** Writes the filled block, then adds the line; a line longer than a block goes out in pieces. */
  async addAfterFlush(line: Line): Promise<void> {
    await this.flush();
    if (this.add(line)) return;
    await this.inFlight;
    const scratch = this.blocks[0].buffer;
    for (const piece of line.pieces(scratch)) {
      await this.writeAll(piece);
      if (this.closed) return;
    }
    this.onDelivered(line.bytes, line.note, line.snapshotSize);
  }

  /** Starts writing the filled block and swaps in the other once its own write is done. */
  async flush(): Promise<void> {
    await this.inFlight;
    const block = this.blocks[0];
    if (block.filled === 0) return;
    this.blocks = [this.blocks[1], block];
    this.inFlight = this.writeBlock(block);
  }

  /** Flushes and waits until every byte is written or writing has stopped. */
  async close(): Promise<void> {
    await this.flush();
    await this.inFlight;
  }

  private async writeBlock(block: Block): Promise<void> {
    const written = await this.writeAll(block.buffer.subarray(0, block.filled));
    for (let line = 0; line < block.ends.length && block.ends[line]! <= written; line++) {
      this.onDelivered(block.bytes[line]!, block.notes[line]!, block.sizes[line]!);
    }
    block.filled = 0;
    for (const list of [block.ends, block.bytes, block.notes, block.sizes]) list.length = 0;
  }

  /** Writes the bytes, returning how many the reader took. */
  private async writeAll(bytes: Buffer): Promise<number> {
    let written = 0;
    while (written < bytes.length && !this.closed && !this.useStream) {
      try {
        written += await new Promise<number>((resolve, reject) =>
          writeToFd(this.fd, bytes, written, bytes.length - written, null, (error, count) => (error ? reject(error) : resolve(count))),
        );
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') this.switchToStream();
        else this.stop(error as NodeJS.ErrnoException);
      }
    }
    if (this.useStream && !this.closed && written < bytes.length) {
      const rest = bytes.subarray(written);
      const ok = await new Promise<boolean>((resolve) => process.stdout.write(rest, (error) => resolve(!error)));
      if (ok) written = bytes.length;
    }
    return written;
  }

  /** EPIPE: the reader has gone (| head), which ends the run quietly; anything else is a failure to report. */
  private stop(error: NodeJS.ErrnoException): void {
    this.closed = true;
    if (error.code !== 'EPIPE') this.failure ??= error;
  }

  private switchToStream(): void {
    this.useStream = true;
    process.stdout.on('error', (error: NodeJS.ErrnoException) => this.stop(error));
  }
}

/** One output line: headers and key as --headers and --key ask, then the message, then a newline. */
export class Line {
  private readonly prefix: string;
  private readonly message: Message;
  readonly bytes: number;
  /** For --stats: NOTE bits, and the size of the snapshot the line starts. */
  readonly note: number;
  readonly snapshotSize: number;

  constructor(config: Pick<Config, 'key' | 'headers'>, key: string, message: Message, note = 0, snapshotSize = 0) {
    this.note = note;
    this.snapshotSize = snapshotSize;
    const headers = config.headers ? `${message.headers().map(([name, value]) => `${name}:${value}`).join(',')}\t` : '';
    this.prefix = headers + (config.key ? `${key}\t` : '');
    this.message = message;
    this.bytes = Buffer.byteLength(this.prefix) + Buffer.byteLength(message.head) + message.dataLength + Buffer.byteLength(message.tail) + 1;
  }

  /** Writes the line at `offset`, returning the offset after it. */
  writeTo(target: Buffer, offset: number): number {
    const { message } = this;
    let at = offset + target.write(this.prefix, offset, 'utf8');
    at += target.write(message.head, at, 'utf8');
    message.data.writeNext(target, at, message.dataLength);
    at += message.dataLength;
    at += target.write(message.tail, at, 'utf8');
    target[at++] = 0x0a; // newline
    return at;
  }

  /** The line in pieces, the data through `scratch`: for lines longer than a block. */
  *pieces(scratch: Buffer): Generator<Buffer> {
    const { message } = this;
    yield Buffer.from(this.prefix + message.head);
    for (let done = 0; done < message.dataLength; ) {
      const count = Math.min(scratch.length, message.dataLength - done);
      message.data.writeNext(scratch, 0, count);
      yield scratch.subarray(0, count);
      done += count;
    }
    yield Buffer.from(`${message.tail}\n`);
  }

  /** The line as one buffer, for tests and for code that imports this file. */
  render(): Buffer {
    const buffer = Buffer.allocUnsafe(this.bytes);
    this.writeTo(buffer, 0);
    return buffer;
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

const MB = 1e6;

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

/** What the reader has taken, for --progress and --stats; sessions in flight as made. */
export class RunStats {
  sessions = 0;
  messages = 0;
  bytes = 0;
  readonly sizes = { full: new SizeHistogram(), incremental: new SizeHistogram() };
  readonly inFlight = new InFlight();
  private readonly config: Config;
  private readonly startMs = performance.now();

  constructor(config: Config) {
    this.config = config;
  }

  /** Counts a line the reader has taken. */
  deliver(bytes: number, note: number, snapshotSize: number): void {
    this.messages++;
    this.bytes += bytes;
    if (note & NOTE.startsFull) this.sizes.full.add(snapshotSize);
    if (note & NOTE.startsIncremental) this.sizes.incremental.add(snapshotSize);
    if (note & NOTE.endsSession) this.sessions++;
  }

  get seconds(): number {
    return (performance.now() - this.startMs) / 1000;
  }

  private inFlightText(): string {
    const { now, mean, max } = this.inFlight;
    return this.config.order === 'time' ? `${now} in flight (mean ${mean.toFixed(1)}, max ${max})` : 'one at a time';
  }

  /** One live line: sessions done and in flight, messages, MB, MB/s. */
  progressLine(): string {
    const total = Number.isFinite(this.config.count) ? `/${Math.ceil((this.config.count - this.config.shard.index) / this.config.shard.count)}` : '';
    return `sessions ${this.sessions}${total} done, ${this.inFlightText()}, ${this.messages} messages, ` +
      `${(this.bytes / MB).toFixed(1)} MB, ${(this.bytes / MB / this.seconds).toFixed(1)} MB/s`;
  }

  /** The --stats summary: totals, speed, sessions in flight, per kind the count and size percentiles, and a histogram in 80 columns. */
  summary(): string {
    const seconds = this.seconds;
    const lines = [
      `sessions ${this.sessions}, messages ${this.messages}, bytes ${this.bytes} (${(this.bytes / MB).toFixed(1)} MB) in ${seconds.toFixed(2)} s`,
      `${(this.bytes / MB / seconds).toFixed(1)} MB/s, ${(this.messages / seconds).toFixed(0)} messages/s`,
      `sessions in flight: ${this.inFlightText()}` + (this.config.order === 'time' ? `; --concurrency ${this.config.concurrency}` : ''),
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
      let most = 0;
      for (const k of doublings) most = Math.max(most, (full[k] ?? 0) + (incremental[k] ?? 0));
      const width = 80 - 11 - 2 - 1 - 10; // label, " |", a space, the count
      lines.push(`histogram of sizes (# full, = incremental):`);
      for (let k = doublings[0]!; k <= doublings.at(-1)!; k++) {
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

/** Where a line's value begins: after any headers and key, at the envelope's first key. */
const valueStart = (line: string): number => line.indexOf('{"uuid"');

/**
 * The order a line takes in the run, read from the line as written: capture's
 * receive time (`now`, to the microsecond) and then the `$session_id`, as
 * scheduleSnapshots orders snapshots. Undefined for a line without them
 * (vegeta targets).
 */
export function lineOrder(line: string): { atUs: number; sessionId: string } | undefined {
  const value = line.slice(valueStart(line));
  const legacy = value.startsWith('{"uuid": ');
  const nowAt = value.lastIndexOf(legacy ? '"now": "' : ',"now":"');
  const sessionAt = value.indexOf(legacy ? '\\"$session_id\\": \\"' : '\\"$session_id\\":\\"');
  if (nowAt < 0 || sessionAt < 0) return undefined;
  const now = value.slice(value.indexOf('"', nowAt + 6) + 1, value.indexOf('"', value.indexOf('"', nowAt + 6) + 1));
  const fraction = /^\.(\d+)/.exec(now.slice(19))?.[1] ?? '';
  const atUs = Date.parse(`${now.slice(0, 19)}Z`) * 1000 + Number(fraction.padEnd(6, '0').slice(0, 6));
  const idAt = value.indexOf('\\"', sessionAt + (legacy ? 17 : 16)) + 2;
  return { atUs, sessionId: value.slice(idAt, value.indexOf('\\"', idAt)) };
}

/**
 * `--merge`: reads shard files line by line and writes them as one run, in
 * the order of the run without --shard: by now, then $session_id; a
 * session's lines stay in their file's order. Memory holds one line a file.
 */
async function mergeShardFiles(paths: string[]): Promise<number> {
  const files: { lines: AsyncIterator<string>; line: string; order: { atUs: number; sessionId: string } }[] = [];
  const read = async (path: string, lines: AsyncIterator<string>) => {
    const next = await lines.next();
    if (next.done) return undefined;
    const order = lineOrder(next.value);
    if (!order) throw new UsageError(`--merge reads lines of --format snapshot or snapshot-items, with their now and $session_id; ${path} has other lines`);
    return { lines, line: next.value, order };
  };
  try {
    for (const path of paths) {
      const stream = createReadStream(path, { encoding: 'utf8' });
      const opened = await new Promise<Error | undefined>((resolve) => stream.once('ready', () => resolve(undefined)).once('error', resolve));
      if (opened) throw new UsageError(`--merge cannot read ${path}: ${opened.message}`);
      const file = await read(path, createInterface({ input: stream, crlfDelay: Infinity })[Symbol.asyncIterator]());
      if (file) files.push(file);
    }
    const writer = new LineWriter(1, () => {});
    const raw = { key: false, headers: false };
    while (files.length > 0 && !writer.closed) {
      let first = 0;
      for (let at = 1; at < files.length; at++) {
        const [a, b] = [files[at]!.order, files[first]!.order];
        if (a.atUs < b.atUs || (a.atUs === b.atUs && a.sessionId < b.sessionId)) first = at;
      }
      const file = files[first]!;
      const line = new Line(raw, '', { headers: () => [], head: file.line, data: NO_DATA, dataLength: 0, tail: '' });
      if (!writer.add(line)) await writer.addAfterFlush(line);
      const next = await read(paths[first]!, file.lines);
      if (next) files[first] = next;
      else files.splice(first, 1);
    }
    await writer.close();
    if (writer.failure) {
      process.stderr.write(`generate.ts: cannot write to stdout: ${writer.failure.message}\n`);
      return 1;
    }
    return 0;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`generate.ts: ${error.message}\n`);
    return 2;
  }
}

// ===========================================================================
// 8. main: parse, write every snapshot's lines in schedule order, stop on a
// signal after a whole line, report, and return the exit status.
// ===========================================================================

const SIGNAL_STATUS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

/** Writes text to stdout at once; false, after saying why on stderr, if it cannot be written. */
function writeStdout(text: string): boolean {
  try {
    writeSync(1, text);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') return true;
    process.stderr.write(`generate.ts: cannot write to stdout: ${(error as Error).message}\n`);
    return false;
  }
}

/**
 * Whether stdout was closed when the run started (`>&-`): node then opens
 * /dev/null in its place, read-write, where a shell's `> /dev/null` is
 * write-only, so a read succeeds only in the first case.
 */
function stdoutWasClosed(): boolean {
  try {
    const stat = fstatSync(1);
    if (!stat.isCharacterDevice() || stat.rdev !== statSync('/dev/null').rdev) return false;
    readSync(1, Buffer.alloc(1), 0, 1, null);
    return true;
  } catch {
    return false;
  }
}

/** The warning, if any, that this run's messages lack what PostHog's consumers need to keep them. */
function missingTokenWarning(config: Config): string | undefined {
  if (config.token !== null || (config.format === 'snapshot' && config.teamId !== null)) return undefined;
  const why = config.format === 'snapshot'
    ? "PostHog's legacy consumer drops messages with neither team_id nor token"
    : config.format === 'snapshot-items'
      ? "PostHog's recording consumers drop messages without a token header"
      : 'capture rejects recordings without a token';
  return `generate.ts: warning: no --token: ${why} (give --token phc_... and deliver it with kcat -H token=... or --headers)\n`;
}

/**
 * Runs the generator: parses `argv`, writes every snapshot's lines to fd 1
 * in the order capture would, and returns the exit status.
 */
export async function main(argv: readonly string[]): Promise<number> {
  let config: Config | MergeRequest | 'help';
  try {
    config = parseFlags(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`generate.ts: ${error.message}\n`);
    return 2;
  }
  makeStdioBlocking();
  if (config === 'help') return writeStdout(helpText()) ? 0 : 1;
  if (stdoutWasClosed()) {
    process.stderr.write('generate.ts: stdout is closed: redirect it to a file, a pipe or /dev/null\n');
    return 1;
  }
  if ('merge' in config) return mergeShardFiles(config.merge);
  const warning = missingTokenWarning(config);
  if (warning) process.stderr.write(warning);

  const stop = new StopSignal();
  const onSignal = (signal: keyof typeof SIGNAL_STATUS) => stop.request(SIGNAL_STATUS[signal]);
  for (const signal of Object.keys(SIGNAL_STATUS) as (keyof typeof SIGNAL_STATUS)[]) process.on(signal, onSignal);

  const stats = new RunStats(config);
  const writer = new LineWriter(1, (bytes, note, snapshotSize) => stats.deliver(bytes, note, snapshotSize));
  const pacer = new Pacer(config, stop);
  const flush = () => writer.flush();
  const progress = config.progress === 'on' || (config.progress === 'auto' && process.stderr.isTTY);
  // On a terminal the line is rewritten in place; elsewhere a new line each second.
  const [progressEveryMs, progressEnd] = process.stderr.isTTY ? [250, '\x1b[K\r'] : [1000, '\n'];
  let progressAtMs = performance.now();
  const endMs = performance.now() + config.durationMs;
  const sessionLines = new Map<number, { lines: number; bytes: number }>();
  const running = () => stop.status === undefined && !writer.closed && performance.now() < endMs;

  schedule: for (const { session, snapshot, last } of scheduleSnapshots(config, stats.inFlight)) {
    const due = pacer.snapshotDue(snapshot.receivedAtUs, flush);
    if (due) await due;
    if (!running()) break;
    const counts = sessionLines.get(session.index) ?? { lines: 0, bytes: 0 };
    sessionLines.set(session.index, counts);
    const { messages } = snapshot;
    const starts = snapshot.kind === 'full' ? NOTE.startsFull : NOTE.startsIncremental;
    for (let at = 0; at < messages.length; at++) {
      const messageDue = pacer.messageDue(flush);
      if (messageDue) await messageDue;
      if (!running()) break schedule;
      const note = (at === 0 ? starts : 0) | (last && at === messages.length - 1 ? NOTE.endsSession : 0);
      const line = new Line(config, session.identity.sessionId, messages[at]!, note, snapshot.size);
      if (!writer.add(line)) await writer.addAfterFlush(line);
      counts.lines++;
      counts.bytes += line.bytes;
    }
    if (last) {
      sessionLines.delete(session.index);
      if (config.verbose) {
        process.stderr.write(`session ${session.index} ${session.identity.sessionId}: ${session.plan.fullSnapshots} full and ` +
          `${session.plan.incrementalSnapshots} incremental snapshots in ${session.plan.windows} window(s), ` +
          `${counts.lines} messages, ${(counts.bytes / MB).toFixed(2)} MB\n`);
      }
    }
    if (progress && performance.now() - progressAtMs >= progressEveryMs) {
      progressAtMs = performance.now();
      process.stderr.write(stats.progressLine() + progressEnd);
    }
  }
  await writer.close();
  if (progress) process.stderr.write(`${stats.progressLine()}\n`);
  if (config.stats) process.stderr.write(stats.summary());
  if (writer.failure) {
    process.stderr.write(`generate.ts: cannot write to stdout: ${writer.failure.message}\n`);
    return 1;
  }
  return stop.status ?? 0;
}


// ===========================================================================
// Appendix: small pure helpers.
// ===========================================================================

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

const executedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (executedDirectly) process.exitCode = await main(process.argv.slice(2));
