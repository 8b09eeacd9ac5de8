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
 * The same file runs with `node generate.ts` (node 22.18 and later strip its
 * types), `deno run -A generate.ts` and `bun generate.ts`, byte for byte the
 * same output, except where zlib compresses: rrweb payloads, snapshot-items
 * with compressed events, and vegeta bodies come out as other valid gzip
 * (each runtime's zlib picks other matches), and so other sizes by a few
 * percent.
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
 * Sections, in the order data flows, each using only those above it
 * (`grep -n '^// [0-9]'`):
 *   1. Flags         the command line, its checks, --help and the caps
 *   2. Session       seeded randomness, arrivals, the plan, the identity
 *   3. Recording     each window's page and what rrweb records of it
 *   4. Compression   gzip framing and deflate blocks
 *   5. Payloads      the snapshot data each format carries
 *   6. Messages      envelopes, headers, chunks, items batches, vegeta targets
 *   7. Output        interleaving, writing, pacing, stats
 *   8. main          parseFlags, then the run from start to exit status
 *   Appendix         small pure helpers
 */

import { createHash } from 'node:crypto';
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
// 1. Flags: the command line, each flag's checks and `--help`, and the caps
// a run keeps to. Everything a run does is decided here and in parseFlags
// (section 8); bad input stops before a byte reaches stdout.
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
  /** Whether events go out compressed as posthog-js compresses them (`cv`), for snapshot-items and vegeta. */
  compressEvents: boolean;
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

/** A Config but for the chunk size, which takes the envelopes of section 6 to fit. */
type Settings = Omit<Config, 'chunkSize'>;

/** Capture refuses a recording request over 25 MB (capture-rs's body limit): an rrweb snapshot is at most this many characters. */
const MAX_RRWEB_SNAPSHOT_CHARS = 25_000_000;
/** Sessions have at most this many windows: tabs of one visit. */
const MAX_WINDOWS = 1000;
/** Draws above a cap are cut to it; flags that would cut more than this share of them are refused, so the means hold. */
const MAX_CAPPED_SHARE = 1e-4;

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
  const ms = parts.reduce((sum, [, amount = '', suffix = 's']) => sum + Number(amount) * DURATION_UNITS_MS[suffix]!, 0);
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
  'no-compress-events': toggle('send events uncompressed, as posthog-js did before its 2024-10 compression (cv) of large events',
    ['snapshot-items', 'vegeta']),
  'capture-url': setting(httpUrl, 'http://127.0.0.1:8000/s/?compression=gzip-js', 'URL',
    "PostHog's capture endpoint for recordings, which vegeta targets post to", ['vegeta']),
  rate: setting(numberFrom(0), '0', 'N', 'N messages (or targets) a second, evenly spaced from the first; a generator that falls behind catches up by at most 0.1 s of them; 0 for as fast as possible'),
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
type FlagValues = { -readonly [K in FlagName]: ValueOf<(typeof FLAGS)[K]> };

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

/** The command line read and checked flag by flag, and against each other; parseFlags (section 8) checks the rest. */
interface CommandLine {
  settings: Settings;
  /** --chunk-size, if given. */
  chunkSize: number | undefined;
}

/** Reads the command line into settings, a merge of shard files, or 'help'. */
function parseCommandLine(argv: readonly string[], nowMs: number): CommandLine | MergeRequest | 'help' {
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
  const settings: Settings = {
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
    maxMessageBytes: values['max-message-bytes'],
    key: values.key,
    headers: values.headers,
    compressEvents: !values['no-compress-events'],
    captureUrl: values['capture-url'],
    rate: values.rate,
    realtimeSpeed: values.realtime ? (values.speed ?? 1) : null,
    shard: values.shard,
    progress: values.progress ? 'on' : values['no-progress'] ? 'off' : 'auto',
    stats: values.stats,
    verbose: values.verbose,
  };
  return { settings, chunkSize: values['chunk-size'] };
}


// ===========================================================================
// 2. Session: its seeded randomness, its arrival, its plan (windows, and
// snapshots of each kind with their sizes and times, drawn as they are
// needed, and the flags refused for drawing beyond the caps too often) and
// its identity (ids, ip, site). Session i depends on (--seed-value, i) and
// its arrival time alone.
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

/** Four well-mixed words from a digest, one set of many told apart by `salt`; never all zero. */
function stateFrom(digest: Buffer, salt: number): number[] {
  const state = [0, 1, 2, 3].map((word) => mix32(digest.readInt32LE(4 * word) ^ Math.imul(salt + 1, 0x9e3779b9) ^ word));
  // xoroshiro128+ and xoshiro128** must not start from the all-zero state.
  return state.some((word) => word !== 0) ? state : [1, 0, 0, 0];
}

/** A xoroshiro128+ stream from a digest, one of many told apart by `salt`. */
const streamFrom = (digest: Buffer, salt: number): RandomGenerator => xoroshiro128plusFromState(stateFrom(digest, salt));

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

  /** The seed words of a bulk generator for a purpose (see RandomLetters). */
  state(purpose: Purpose): number[] {
    return stateFrom(this.digest, PURPOSES.indexOf(purpose));
  }
}

/** A stream for the whole run, such as its arrivals: the seed alone. */
const runStream = (seed: number, purpose: 'arrivals'): RandomGenerator => streamFrom(digestOf(`${seed}/run/${purpose}`), 0);

/** Uniform in [0, 1). */
const uniform = (rng: RandomGenerator): number => uniformFloat64(rng);
/** Uniform in [0, 1) from one 32-bit draw: plenty to pick words and pixels, at half the cost of `uniform`. */
const unit = (rng: RandomGenerator): number => (rng.next() >>> 0) * 2 ** -32;
const between = (rng: RandomGenerator, min: number, max: number): number => min + Math.floor(unit(rng) * (max - min + 1));
const pick = <T>(rng: RandomGenerator, items: readonly T[]): T => items[Math.floor(unit(rng) * items.length)]!;
/** Picks toward the front of a list, as popular classes, icons and routes are used most (about Zipf). */
const pickPopular = <T>(rng: RandomGenerator, items: readonly T[]): T => items[Math.floor(items.length * unit(rng) ** 2.5)]!;

/** Standard normal, by Box-Muller. */
function standardNormal(rng: RandomGenerator): number {
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
function logNormal(rng: RandomGenerator, distribution: Distribution): number {
  const { mu, sigma } = logNormalParameters(distribution);
  return Math.exp(mu + sigma * standardNormal(rng));
}

/** Rounds down or up with the probabilities that keep the expectation: 2.3 gives 3 three times in ten. */
function stochasticRound(rng: RandomGenerator, value: number): number {
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
function sampleWholeNumber(rng: RandomGenerator, distribution: Distribution, minimum: number, cap = Infinity): number {
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

/** The cap on a snapshot's size: what capture accepts for rrweb events; random data streams at any size. */
const snapshotSizeCap = (settings: Settings): number => (settings.format === 'snapshot' && settings.payload === 'random' ? Infinity : MAX_RRWEB_SNAPSHOT_CHARS);

/** Refuses flags that would draw windows or snapshot sizes beyond their caps more than once in 1/MAX_CAPPED_SHARE. */
function refuseFrequentCaps(settings: Settings): void {
  refuseRareDrawsBeyond(MAX_WINDOWS, 'window-count', settings.windowCount, 1);
  const cap = snapshotSizeCap(settings);
  refuseRareDrawsBeyond(cap, 'full-snapshot-size', settings.fullSnapshotSize, 1);
  refuseRareDrawsBeyond(cap, 'incremental-snapshot-size', settings.incrementalSnapshotSize, 1);
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
  /** The largest size a snapshot may take: cut there, as --help says. */
  private readonly sizeCap: number;
  private readonly rng: RandomGenerator;
  private fullLeft: number;
  private incrementalLeft: number;
  private openWindows = 0;
  private ordinal = 0;
  private clockMs: number;

  constructor(config: Config, random: SessionRandom, arrivalMs: number) {
    this.config = config;
    this.sizeCap = snapshotSizeCap(config);
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
    const size = sampleWholeNumber(rng, full ? this.config.fullSnapshotSize : this.config.incrementalSnapshotSize, 1, this.sizeCap);
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
class UuidV7 {
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
  /** Which of the run's sites the session visits. */
  site: number;
}

/** A run's sessions visit this many sites: one project's domains, so stylesheets repeat across sessions as on a real one. */
const SITES = 6;


/** posthog-js keeps an anonymous distinct id from the visitor's first visit, up to this long before. */
const MAX_VISITOR_AGE_MS = 30 * 86_400_000;

/**
 * Draws a session's identity from its own stream: a session id minted as the
 * session starts, a distinct id from the visitor's first visit, a
 * public-looking ip, and which of the run's sites it visits.
 */
function sampleIdentity(random: SessionRandom, startMs: number, ids: UuidV7): Identity {
  const rng = random.stream('identity');
  return {
    sessionId: ids.at(startMs),
    distinctId: new UuidV7(rng).at(startMs - uniform(rng) * MAX_VISITOR_AGE_MS),
    ip: [between(rng, 1, 223), between(rng, 0, 255), between(rng, 0, 255), between(rng, 1, 254)].join('.'),
    // The project's sites are not equally busy: the first gets most visits.
    site: Math.floor(SITES * uniform(rng) ** 2),
  };
}

// ===========================================================================
// 3. Recording: the sites sessions visit, each window's page as rrweb's
// mirror of it, and what rrweb and posthog-js record of a visit: page loads
// (Meta, FullSnapshot), activity (mutations, mouse, clicks, scrolls, input),
// console, network and custom events. Every event refers only to nodes that
// exist at its time, as rrweb's Replayer needs.
// ===========================================================================

/** rrweb's event types, incremental sources and node types (@rrweb/types). */
const EventType = { FullSnapshot: 2, IncrementalSnapshot: 3, Meta: 4, Custom: 5, Plugin: 6 } as const;
const IncrementalSource = { Mutation: 0, MouseMove: 1, MouseInteraction: 2, Scroll: 3, ViewportResize: 4, Input: 5 } as const;
const NodeType = { Document: 0, DocumentType: 1, Element: 2, Text: 3 } as const;

/** An rrweb event as posthog-js holds it before sending: `{type, data, timestamp}`, in rrweb's key order. */
interface RecordedEvent {
  type: number;
  data: object;
  timestamp: number;
}

let vocabulary: string[] | undefined;
/** Plain lower-case English words from faker's lists, loaded on first use. */
function words(): string[] {
  if (vocabulary) return vocabulary;
  const { adjective = [], noun = [], verb = [], adverb = [] } = faker.definitions.word;
  vocabulary = [...adjective, ...noun, ...verb, ...adverb].filter((word) => /^[a-z]+(-[a-z]+)*$/.test(word));
  return vocabulary;
}

function phrase(rng: RandomGenerator, minWords: number, maxWords: number): string {
  const list = words();
  const count = between(rng, minWords, maxWords);
  let text = pick(rng, list);
  for (let word = 1; word < count; word++) text += ` ${pick(rng, list)}`;
  return text;
}

function sentence(rng: RandomGenerator): string {
  const text = phrase(rng, 4, 16);
  return `${text[0]!.toUpperCase()}${text.slice(1)}.`;
}

const capitalized = (word: string) => `${word[0]!.toUpperCase()}${word.slice(1)}`;

// --- Sites: what every page of a site shares -------------------------------------

/** Tailwind's spacing, text and colour scales: the utility classes production pages are made of. */
const SPACING = ['0', '0.5', '1', '1.5', '2', '2.5', '3', '4', '5', '6', '8', '10', '12', '16', '20', '24', '32', 'px', 'auto'];
const SPACED = ['p', 'px', 'py', 'pt', 'pb', 'pl', 'pr', 'm', 'mx', 'my', 'mt', 'mb', 'ml', 'mr', 'gap', 'space-x', 'space-y', 'w', 'h', 'min-w', 'max-w', 'top', 'left', 'inset'];
const COLOURS = ['gray', 'slate', 'zinc', 'primary', 'accent', 'red', 'green', 'blue', 'amber', 'purple'];
const SHADES = ['50', '100', '200', '300', '400', '500', '600', '700', '800', '900'];
const PLAIN_UTILITIES = [
  'flex', 'inline-flex', 'grid', 'block', 'inline-block', 'hidden', 'contents', 'items-center', 'items-start', 'items-end', 'justify-between',
  'justify-center', 'justify-end', 'flex-col', 'flex-wrap', 'grow', 'shrink-0', 'relative', 'absolute', 'sticky', 'w-full', 'h-full',
  'truncate', 'rounded', 'rounded-md', 'rounded-lg', 'rounded-full', 'border', 'border-b', 'border-t', 'shadow', 'shadow-sm', 'font-medium',
  'font-semibold', 'font-bold', 'leading-tight', 'leading-5', 'cursor-pointer', 'transition', 'transition-colors', 'overflow-hidden',
  'overflow-auto', 'whitespace-nowrap', 'select-none', 'underline', 'uppercase', 'tracking-wide', 'text-left', 'text-center', 'list-none',
];
const VARIANTS = ['', '', '', '', 'hover:', 'dark:', 'md:', 'lg:', 'group-hover:', 'focus:', 'dark:hover:', '@md:'];
/** A component library's names: LemonButton, LemonButton--secondary, LemonButton__content. */
const COMPONENT_PARTS = ['content', 'chrome', 'icon', 'label', 'body', 'header', 'footer', 'row', 'cell', 'title', 'inner'];
const COMPONENT_MODIFIERS = ['primary', 'secondary', 'small', 'medium', 'active', 'disabled', 'status-default', 'full-width', 'tertiary'];
/** Declarations as production stylesheets write them: scales and variables, so rules repeat as Tailwind's do. */
const REM = ['0', '.125rem', '.25rem', '.375rem', '.5rem', '.75rem', '1rem', '1.25rem', '1.5rem', '2rem', '2.5rem', '3rem'];
const CSS_PROPERTIES: readonly [string, (rng: RandomGenerator) => string][] = [
  ['color', (rng) => `rgb(${pick(rng, ['17 24 39', '55 65 81', '107 114 128', '255 255 255', '29 74 255', '245 78 0'])}/var(--tw-text-opacity,1))`],
  ['background-color', (rng) => `var(--color-${pick(rng, COLOURS)}-${pick(rng, SHADES)})`],
  ['padding', (rng) => `${pick(rng, REM)} ${pick(rng, REM)}`],
  ['padding-left', (rng) => pick(rng, REM)],
  ['padding-right', (rng) => pick(rng, REM)],
  ['margin-top', (rng) => `calc(var(--spacing)*${pick(rng, SPACING.slice(0, 16))})`],
  ['display', (rng) => pick(rng, ['flex', 'grid', 'block', 'inline-flex', 'none'])],
  ['align-items', (rng) => pick(rng, ['center', 'flex-start', 'flex-end'])],
  ['font-size', (rng) => `var(--text-${pick(rng, ['xs', 'sm', 'base', 'lg', 'xl', '2xl'])})`],
  ['line-height', (rng) => `var(--tw-leading,var(--text-${pick(rng, ['xs', 'sm', 'base', 'lg'])}--line-height))`],
  ['border', (rng) => `1px solid var(--border-${pick(rng, ['primary', 'secondary', 'light'])})`],
  ['border-radius', (rng) => `var(--radius-${pick(rng, ['sm', 'md', 'lg', 'xl'])})`],
  ['gap', (rng) => pick(rng, REM)],
  ['box-shadow', (rng) => `var(--tw-ring-offset-shadow,0 0 #0000),var(--tw-ring-shadow,0 0 #0000),var(--tw-shadow${pick(rng, ['', '-sm', '-md'])})`],
  ['transition-property', (rng) => pick(rng, ['color, background-color, border-color', 'opacity', 'transform', 'all'])],
  ['transition-duration', (rng) => `var(--tw-duration,${pick(rng, ['.15s', '.2s', '.3s'])})`],
  ['width', (rng) => pick(rng, ['100%', 'auto', 'fit-content', 'calc(var(--spacing)*64)', '50%'])],
  ['font-weight', (rng) => `var(--font-weight-${pick(rng, ['normal', 'medium', 'semibold', 'bold'])})`],
  ['opacity', (rng) => pick(rng, ['0', '.5', '.75', '1'])],
];

/** One stylesheet of a site, as its JSON string content (escaped once), and its compressed forms, made once. */
/**
 * One of a site's stylesheet files, its CSS made on first use from a stream
 * of its own: pages too small to link stylesheets never pay for them, and
 * the bytes do not depend on which page asked first.
 */
class Stylesheet {
  private readonly make: () => string;
  private text: string | undefined;

  constructor(make: () => string) {
    this.make = make;
  }

  /** The CSS text as it reads inside a JSON string. */
  get json(): string {
    return (this.text ??= escapeInData(this.make()));
  }

  /** Characters of `json`. */
  get chars(): number {
    return this.json.length;
  }
}

/** A site's pages share its stylesheets, class names, icons, routes, API and scripts, as real sites do. */
interface Site {
  origin: string;
  /** docs: long articles, a sidebar tree, inline <style>; app: dense UI, tables and forms, linked stylesheets. */
  kind: 'docs' | 'app';
  stylesheets: Stylesheet[];
  utilities: string[];
  components: string[];
  /** SVG path data, one entry per icon. */
  icons: string[];
  routes: string[];
  scripts: string[];
  api: { path: string; method: string; body: string }[];
  /** Console messages the site's code prints, with their stack traces. */
  console: { level: string; payload: string[]; trace: string[] }[];
  /** posthog-js's custom events at each recorder start: tag and payload. */
  recorderStart: { tag: string; payload: object }[];
}

/** Stylesheet characters per site: production ones are hundreds of kB (466 and 626 kB in the real recordings). */
const SITE_CSS_CHARS = { min: 300_000, max: 900_000 } as const;
/** A site's CSS comes in files of about this size, so pages can link a few or all of them. */
const STYLESHEET_CHARS = 48_000;

const sites = new Map<string, Site>();
let domainSuffixes: readonly string[] | undefined;
/** Site `index` of the run with seed `seed`, made on first use and kept: its stylesheets are compressed once. */
function siteOf(seed: number, index: number): Site {
  const key = `${seed}/${index}`;
  let site = sites.get(key);
  if (!site) sites.set(key, (site = makeSite(digestOf(`${seed}/site/${index}`))));
  return site;
}

/** A site from its digest: one stream for the site, one for each stylesheet file. */
function makeSite(digest: Buffer): Site {
  const rng = streamFrom(digest, 0);
  const suffixes = (domainSuffixes ??= faker.definitions.internet.domain_suffix ?? ['com']);
  const origin = `https://${pick(rng, words())}-${pick(rng, words())}.${pick(rng, suffixes)}`;
  const kind = unit(rng) < 0.5 ? 'docs' : 'app';
  const utilities = Array.from({ length: between(rng, 300, 900) }, () => utilityClass(rng));
  const prefix = capitalized(pick(rng, words()).slice(0, 8));
  const components = Array.from({ length: between(rng, 30, 80) }, () => {
    const name = `${prefix}${capitalized(pick(rng, words()))}`;
    return unit(rng) < 0.4 ? `${name}--${pick(rng, COMPONENT_MODIFIERS)}` : unit(rng) < 0.5 ? `${name}__${pick(rng, COMPONENT_PARTS)}` : name;
  });
  const bundle = () => `${origin}/static/${pick(rng, ['chunk', 'index', 'vendor', 'main'])}-${randomToken(rng, 8)}.js`;
  const scripts = Array.from({ length: between(rng, 4, 12) }, bundle);
  const site: Site = {
    origin,
    kind,
    stylesheets: [],
    utilities,
    components,
    icons: Array.from({ length: between(rng, 30, 70) }, () => iconPath(rng)),
    routes: Array.from({ length: between(rng, 20, 60) }, () => `/${pick(rng, words())}${unit(rng) < 0.5 ? `/${pick(rng, words())}` : ''}`),
    scripts,
    api: Array.from({ length: between(rng, 8, 30) }, () => ({
      path: `/api/${pick(rng, words())}/${unit(rng) < 0.3 ? `${between(rng, 1, 9999)}/` : ''}`,
      method: unit(rng) < 0.8 ? 'GET' : 'POST',
      body: apiBody(rng),
    })),
    console: Array.from({ length: between(rng, 5, 20) }, () => ({
      level: pick(rng, ['log', 'warn', 'warn', 'warn', 'error', 'info']),
      payload: Array.from({ length: between(rng, 1, 3) }, () => JSON.stringify(unit(rng) < 0.7 ? sentence(rng) : `[${capitalized(pick(rng, words()))}] ${phrase(rng, 2, 6)}`)),
      trace: Array.from({ length: pick(rng, [2, 9, 9]) }, () =>
        `${capitalized(pick(rng, words()))}.${pick(rng, words())} (${pick(rng, scripts)}:${between(rng, 1, 400)}:${between(rng, 1, 90000)})`),
    })),
    recorderStart: [],
  };
  site.stylesheets = makeStylesheets(between(rng, SITE_CSS_CHARS.min, SITE_CSS_CHARS.max), digest, site);
  site.recorderStart = recorderStartEvents(rng, site);
  return site;
}

/** A random token of letters and digits, as build tools name bundles. */
function randomToken(rng: RandomGenerator, length: number): string {
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let token = '';
  for (let at = 0; at < length; at++) token += letters[between(rng, 0, letters.length - 1)];
  return token;
}

function utilityClass(rng: RandomGenerator): string {
  const variant = pick(rng, VARIANTS);
  const roll = unit(rng);
  if (roll < 0.35) return `${variant}${pick(rng, PLAIN_UTILITIES)}`;
  if (roll < 0.7) return `${variant}${pick(rng, SPACED)}-${pick(rng, SPACING)}`;
  if (roll < 0.9) return `${variant}${pick(rng, ['text', 'bg', 'border'])}-${pick(rng, COLOURS)}-${pick(rng, SHADES)}`;
  return `${variant}${pick(rng, ['text', 'opacity', 'z', 'w', 'h'])}-[${between(rng, 1, 40)}${pick(rng, ['px', '%', 'rem'])}]`;
}

/** An icon's path data: moves, lines and curves with the one- and two-decimal numbers icon sets have. */
function iconPath(rng: RandomGenerator): string {
  const number = () => (between(rng, 0, 2400) / 100).toString();
  let path = `M${number()} ${number()}`;
  for (let segment = between(rng, 8, 40); segment > 0; segment--) {
    const command = pick(rng, ['L', 'l', 'C', 'c', 'a', 'h', 'v', 'Z', 's']);
    const arity = { L: 2, l: 2, C: 6, c: 6, a: 7, h: 1, v: 1, Z: 0, s: 4 }[command]!;
    path += command + Array.from({ length: arity }, number).join(' ');
  }
  return `${path}Z`;
}

/** A JSON API response as a network event records its body: a list of records with ids, names and dates. */
function apiBody(rng: RandomGenerator): string {
  const records = Array.from({ length: between(rng, 1, 30) }, () => ({
    id: between(rng, 1, 99999),
    name: phrase(rng, 1, 4),
    created_at: new Date(Date.UTC(2024, 0, 1) + between(rng, 0, 3e10)).toISOString(),
    [pick(rng, words())]: unit(rng) < 0.5 ? between(rng, 0, 1000) : pick(rng, words()),
  }));
  return JSON.stringify({ count: records.length, next: null, results: records });
}

/**
 * A site's CSS in files of about STYLESHEET_CHARS, in the form the browser
 * gives rrweb (`selector { property: value; }`): its utility classes, its
 * components, variables, and a font or two inlined as data: URLs, which is
 * where real pages keep theirs.
 */
/**
 * A site's CSS of about `total` characters, in files of about
 * STYLESHEET_CHARS: custom properties and fonts first, then rules on its
 * utility and component classes. File k comes from stream k + 1 of the
 * site's digest, made when a page first links it.
 */
function makeStylesheets(total: number, digest: Buffer, site: Site): Stylesheet[] {
  const files = Math.max(1, Math.round(total / STYLESHEET_CHARS));
  const fileChars = total / files;
  return Array.from({ length: files }, (_, file) => new Stylesheet(() => {
    const rng = streamFrom(digest, file + 1);
    const rules: string[] = [];
    if (file === 0) {
      rules.push(`:root { ${Array.from({ length: 40 }, () => `--color-${pick(rng, COLOURS)}-${pick(rng, SHADES)}: #${randomToken(rng, 6).toLowerCase()};`).join(' ')} }`);
      for (let font = between(rng, 1, 2); font > 0; font--) {
        // A subset woff2 font: base64 of incompressible bytes, a few percent of the CSS as in production.
        const data = Buffer.from(Array.from({ length: between(rng, 1500, total / 60) }, () => between(rng, 0, 255))).toString('base64');
        rules.push(`@font-face { font-display: swap; font-family: "${capitalized(pick(rng, words()))} Sans"; font-weight: ${between(rng, 3, 7) * 100}; src: url("data:font/woff2;base64,${data}") format("woff2"); }`);
      }
    }
    for (let length = rules.reduce((sum, rule) => sum + rule.length, 0); length < fileChars; ) {
      const selector = unit(rng) < 0.6 ? `.${cssEscape(pickPopular(rng, site.utilities))}` : `.${pickPopular(rng, site.components)}${unit(rng) < 0.3 ? ` .${pick(rng, site.components)}` : ''}${unit(rng) < 0.2 ? ':hover' : ''}`;
      const declarations = Array.from({ length: between(rng, 1, 6) }, () => {
        const [property, value] = pick(rng, CSS_PROPERTIES);
        return `${property}: ${value(rng)};`;
      }).join(' ');
      const rule = unit(rng) < 0.12 ? `@media (min-width: ${pick(rng, ['640px', '768px', '1024px', '1280px'])}) {\n  ${selector} { ${declarations} }\n}` : `${selector} { ${declarations} }`;
      rules.push(rule);
      length += rule.length;
    }
    return rules.join('');
  }));
}

/** A class name as a CSS selector writes it: `hover:bg-gray-100` as `hover\:bg-gray-100`. */
const cssEscape = (name: string) => name.replace(/[:.@\[\]%/]/g, (char) => `\\${char}`);

/** The posthog-js release whose recordings the real ones in ../shared/data/real come from. */
const POSTHOG_JS_VERSION = '1.242.1';

/**
 * What posthog-js records as the recorder starts on a page: its options and
 * its config (custom events `$session_options` and `$posthog_config`), the
 * same on every page of a site.
 */
function recorderStartEvents(rng: RandomGenerator, site: Site): { tag: string; payload: object }[] {
  const sessionRecordingOptions = {
    blockClass: 'ph-no-capture', ignoreClass: 'ph-ignore-input', maskTextClass: 'ph-mask', maskAllInputs: true,
    maskInputOptions: { password: true }, slimDOMOptions: {}, collectFonts: false, inlineStylesheet: true, recordCrossOriginIframes: false,
  };
  const flags = Object.fromEntries(Array.from({ length: between(rng, 10, 120) }, () => [`${pick(rng, words())}-${pick(rng, words())}`, unit(rng) < 0.7 ? unit(rng) < 0.5 : pick(rng, ['control', 'test'])]));
  const config = {
    api_host: `https://${pick(rng, ['us', 'eu'])}.i.posthog.com`, api_transport: 'fetch', autocapture: true, capture_pageview: true,
    persistence: 'localStorage+cookie', session_recording: { recordCrossOriginIframes: false }, advanced_disable_decide: false,
    bootstrap: { featureFlags: flags }, loaded: {}, token: `phc_${randomToken(rng, 43)}`, ui_host: site.origin, disable_session_recording: false,
  };
  return [
    { tag: '$session_options', payload: { sessionRecordingOptions, activePlugins: ['rrweb/console@1', 'rrweb/network@1'] } },
    { tag: '$posthog_config', payload: { config } },
  ];
}

// --- The mirror: one window's page as rrweb's mirror of it --------------------------

/** What events may do with a node: its role, packed in a byte. */
const Role = { Gone: 0, Element: 1, Text: 2, Clickable: 3, Field: 4, Container: 5, Fixed: 6 } as const;

/**
 * One window's page as rrweb's mirror holds it: which node ids exist, their
 * parents and children, and what events may do with each. Typed arrays, about
 * 20 bytes a node, so a thousand sessions in flight with pages of thousands of
 * nodes fit in tens of MB.
 *
 * @example
 * const mirror = new Mirror();
 * mirror.add(1, 0, Role.Fixed);
 */
class Mirror {
  private parent = new Int32Array(1024);
  private firstChild = new Int32Array(1024);
  private nextSibling = new Int32Array(1024);
  private previousSibling = new Int32Array(1024);
  private lastChild = new Int32Array(1024);
  private role = new Uint8Array(1024);
  /** The highest id given out; ids are never reused. */
  maxId = 0;
  /** Nodes of the rarer roles, so events find one without scanning (removed ids are dropped as met). */
  private readonly pools: Record<'clickable' | 'field' | 'container', number[]> = { clickable: [], field: [], container: [] };

  /** Registers node `id` as the last child of `parentId` (0 for the document's root). */
  add(id: number, parentId: number, role: number): void {
    if (id >= this.parent.length) this.grow(id);
    this.parent[id] = parentId;
    this.role[id] = role;
    this.firstChild[id] = this.lastChild[id] = this.nextSibling[id] = 0;
    const previous = parentId ? this.lastChild[parentId]! : 0;
    this.previousSibling[id] = previous;
    if (previous) this.nextSibling[previous] = id;
    else if (parentId) this.firstChild[parentId] = id;
    if (parentId) this.lastChild[parentId] = id;
    this.maxId = Math.max(this.maxId, id);
    if (role === Role.Clickable) this.pools.clickable.push(id);
    else if (role === Role.Field) this.pools.field.push(id);
    else if (role === Role.Container) this.pools.container.push(id);
  }

  /** Registers `id` before `nextId` among `parentId`'s children. */
  insertBefore(id: number, parentId: number, nextId: number, role: number): void {
    this.add(id, parentId, role);
    if (!nextId) return;
    // Unlink from the end, then link in before nextId.
    const previous = this.previousSibling[id]!;
    if (previous) this.nextSibling[previous] = 0;
    this.lastChild[parentId] = previous;
    if (this.firstChild[parentId] === id) this.firstChild[parentId] = 0;
    const before = this.previousSibling[nextId]!;
    this.previousSibling[id] = before;
    this.nextSibling[id] = nextId;
    this.previousSibling[nextId] = id;
    if (before) this.nextSibling[before] = id;
    else this.firstChild[parentId] = id;
  }

  /** Removes a node and everything under it, as rrweb's remove of a subtree root does. */
  remove(id: number): void {
    const parentId = this.parent[id]!;
    const [previous, next] = [this.previousSibling[id]!, this.nextSibling[id]!];
    if (previous) this.nextSibling[previous] = next;
    else if (parentId) this.firstChild[parentId] = next;
    if (next) this.previousSibling[next] = previous;
    else if (parentId) this.lastChild[parentId] = previous;
    const stack = [id];
    while (stack.length > 0) {
      const node = stack.pop()!;
      for (let child = this.firstChild[node]!; child; child = this.nextSibling[child]!) stack.push(child);
      this.role[node] = Role.Gone;
    }
  }

  /** Whether `ancestor` is `id` or one of its ancestors. */
  isAncestor(ancestor: number, id: number): boolean {
    for (let node = id; node; node = this.parent[node]!) if (node === ancestor) return true;
    return false;
  }

  exists(id: number): boolean {
    return id > 0 && id <= this.maxId && this.role[id] !== Role.Gone;
  }

  parentOf(id: number): number {
    return this.parent[id]!;
  }

  firstChildOf(id: number): number {
    return this.firstChild[id]!;
  }

  roleOf(id: number): number {
    return this.role[id]!;
  }

  /** A random node of `role` that exists and has an id of at most `maxId` (it existed at that time), if there is one. */
  pick(rng: RandomGenerator, role: number, maxId = this.maxId): number | undefined {
    const pool = role === Role.Clickable ? this.pools.clickable : role === Role.Field ? this.pools.field : role === Role.Container ? this.pools.container : undefined;
    if (pool) {
      while (pool.length > 0) {
        const at = Math.floor(unit(rng) * pool.length);
        const id = pool[at]!;
        if (this.role[id] === role && id <= maxId) return id;
        if (this.role[id] !== role) {
          pool[at] = pool[pool.length - 1]!; // drop a removed id: swap in the last, shorten
          pool.pop();
        } else if (pool.every((other) => other > maxId)) {
          return undefined;
        }
      }
      return undefined;
    }
    // Common roles: rejection sampling over the ids, most of which exist.
    for (let attempt = 0; attempt < 64; attempt++) {
      const id = 1 + Math.floor(unit(rng) * maxId);
      if (this.role[id] === role) return id;
    }
    return undefined;
  }

  private grow(id: number): void {
    const size = Math.max(id + 1, this.parent.length * 2);
    const grown = <T extends Int32Array | Uint8Array>(array: T): T => {
      const copy = new (array.constructor as new (length: number) => T)(size);
      copy.set(array);
      return copy;
    };
    this.parent = grown(this.parent);
    this.firstChild = grown(this.firstChild);
    this.nextSibling = grown(this.nextSibling);
    this.previousSibling = grown(this.previousSibling);
    this.lastChild = grown(this.lastChild);
    this.role = grown(this.role);
  }
}

// --- Pages: what a page load serializes and what scripts add later -------------------

/** A node to be: its tag, attributes and children, or text; ids come when it is serialized. */
type Draft = { tag: string; attributes: Record<string, string>; children: Draft[]; role: number; svg?: true } | { text: string; role: number; style?: true };

const element = (tag: string, attributes: Record<string, string>, children: Draft[] = [], role: number = Role.Element): Draft =>
  ({ tag, attributes, children, role });
const textNode = (content: string): Draft => ({ text: content, role: Role.Text });

/** The class attribute production markup carries: a component or two and a handful of utilities. */
function classes(rng: RandomGenerator, site: Site, utilities = between(rng, 4, 16)): string {
  const names: string[] = [];
  if (utilities > 1 && unit(rng) < 0.45) names.push(pickPopular(rng, site.components));
  for (let count = 0; count < utilities; count++) names.push(pickPopular(rng, site.utilities));
  return names.join(' ');
}

/** An inline SVG icon, as icon sets render them. */
function icon(rng: RandomGenerator, site: Site): Draft {
  const path = element('path', { d: pickPopular(rng, site.icons), ...(unit(rng) < 0.3 && { 'fill-rule': 'evenodd', 'clip-rule': 'evenodd' }) });
  const svg = element('svg', {
    class: classes(rng, site, between(rng, 1, 4)), width: '100%', fill: 'currentColor', viewBox: '0 0 24 24', xmlns: 'http://www.w3.org/2000/svg',
  }, [path], Role.Fixed);
  return markSvg(svg);
}

function markSvg(draft: Draft): Draft {
  if ('tag' in draft) {
    draft.svg = true;
    draft.role = Role.Fixed;
    draft.children.forEach(markSvg);
  }
  return draft;
}

/** A link with a label, as navigation and lists hold them. */
const link = (rng: RandomGenerator, site: Site, label: string): Draft =>
  element('a', { class: classes(rng, site), href: `${site.origin}${pickPopular(rng, site.routes)}`, 'data-attr': `${pick(rng, words())}-${pick(rng, words())}-link` }, [
    ...(unit(rng) < 0.3 ? [icon(rng, site)] : []),
    element('span', { class: classes(rng, site, 2) }, [textNode(label)]),
  ], Role.Clickable);

/** A button: icon, label, or both, in the nested spans component libraries wrap them in. */
function button(rng: RandomGenerator, site: Site): Draft {
  const inner: Draft[] = [];
  if (unit(rng) < 0.6) inner.push(element('span', { class: `${pickPopular(rng, site.components)}__icon` }, [icon(rng, site)]));
  if (inner.length === 0 || unit(rng) < 0.6) inner.push(element('span', { class: classes(rng, site, 2) }, [textNode(capitalized(phrase(rng, 1, 3)))]));
  return element('button', {
    class: classes(rng, site), type: 'button', 'data-attr': `${pick(rng, words())}-button`, ...(unit(rng) < 0.5 && { 'aria-label': phrase(rng, 1, 3) }),
  }, [
    element('span', { class: `${pickPopular(rng, site.components)}__chrome` }, inner),
  ], Role.Clickable);
}

/** Wraps a draft in `depth` layout divs, which is how production trees reach 20-30 levels. */
function wrapped(rng: RandomGenerator, site: Site, draft: Draft, depth: number, role: number = Role.Element): Draft {
  let node = draft;
  for (let level = 0; level < depth; level++) node = element('div', { class: classes(rng, site, between(rng, 1, 5)) }, [node], role);
  return node;
}

/**
 * Blocks of page content, each a subtree: what a page's main area is made of
 * and what a script renders into it later. `small` blocks are a text or two,
 * for landing on a size.
 */
const CONTENT_BLOCKS: readonly ((rng: RandomGenerator, site: Site) => Draft)[] = [
  (rng, site) => element('section', { class: classes(rng, site) }, [
    element('h2', { class: classes(rng, site, 3), id: pick(rng, words()) }, [textNode(capitalized(phrase(rng, 2, 6)))]),
    ...Array.from({ length: between(rng, 1, 4) }, () => element('p', { class: classes(rng, site, 2) }, [
      textNode(sentence(rng)),
      ...(unit(rng) < 0.4 ? [link(rng, site, phrase(rng, 1, 3)), textNode(` ${sentence(rng)}`)] : []),
    ])),
  ], Role.Container),
  (rng, site) => wrapped(rng, site, element('div', { class: classes(rng, site) }, Array.from({ length: between(rng, 2, 8) }, () =>
    element('div', { class: classes(rng, site) }, [
      wrapped(rng, site, icon(rng, site), between(rng, 0, 2)),
      element('h3', { class: classes(rng, site, 3) }, [textNode(capitalized(phrase(rng, 1, 4)))]),
      element('p', { class: classes(rng, site, 3) }, [textNode(sentence(rng))]),
      button(rng, site),
    ])), Role.Container), between(rng, 1, 4)),
  (rng, site) => {
    const columns = between(rng, 3, 7);
    const row = (cell: () => Draft) => element('tr', { class: classes(rng, site, 3) }, Array.from({ length: columns }, () => element('td', { class: classes(rng, site, 2) }, [cell()])));
    return wrapped(rng, site, element('table', { class: classes(rng, site) }, [
      element('thead', {}, [element('tr', {}, Array.from({ length: columns }, () => element('th', { class: classes(rng, site, 3) }, [textNode(capitalized(phrase(rng, 1, 2)))])))]),
      element('tbody', {}, Array.from({ length: between(rng, 3, 15) }, () => row(() => (unit(rng) < 0.3
        ? element('span', { class: classes(rng, site, 4) }, [textNode(pick(rng, words()))])
        : unit(rng) < 0.2 ? link(rng, site, phrase(rng, 1, 3)) : textNode(unit(rng) < 0.5 ? String(between(rng, 0, 99999)) : phrase(rng, 1, 3))))), Role.Container),
    ]), between(rng, 2, 5));
  },
  (rng, site) => element('form', { class: classes(rng, site) }, [
    ...Array.from({ length: between(rng, 1, 5) }, () => element('div', { class: classes(rng, site) }, [
      element('label', { class: classes(rng, site, 3) }, [textNode(capitalized(phrase(rng, 1, 3)))]),
      unit(rng) < 0.8
        ? element('input', { class: classes(rng, site), type: pick(rng, ['text', 'email', 'search', 'number']), placeholder: phrase(rng, 1, 3), value: '' }, [], Role.Field)
        : element('textarea', { class: classes(rng, site), rows: '3' }, [], Role.Field),
    ])),
    button(rng, site),
  ]),
  (rng, site) => element('ul', { class: classes(rng, site) }, Array.from({ length: between(rng, 2, 12) }, () =>
    element('li', { class: classes(rng, site, 3) }, [link(rng, site, capitalized(phrase(rng, 1, 4)))])), Role.Container),
  (rng, site) => element('pre', { class: classes(rng, site, 3) }, [element('code', { class: 'language-js' }, Array.from({ length: between(rng, 4, 30) }, () =>
    element('span', { class: `token ${pick(rng, ['keyword', 'string', 'punctuation', 'function', 'comment', 'number'])}` }, [textNode(pick(rng, words()))])))]),
];
const SMALL_BLOCK = (rng: RandomGenerator, site: Site): Draft => element('p', { class: classes(rng, site, 2) }, [textNode(phrase(rng, 2, 8))]);

/** About how many characters of JSON a draft serializes to: for choosing blocks that fit. */
function draftChars(draft: Draft): number {
  if ('text' in draft) return 40 + draft.text.length;
  let chars = 70 + draft.tag.length;
  for (const key in draft.attributes) chars += key.length + draft.attributes[key]!.length + 6;
  for (const child of draft.children) chars += draftChars(child);
  return chars;
}

/** A content block of about `chars` characters at most: a drawn block if it fits, else a small one. */
function blockOf(rng: RandomGenerator, site: Site, chars: number): Draft {
  // A few words of text when little is missing, so a small snapshot lands within 5% of its size.
  if (chars < TINY_BLOCK_LIMIT) return textNode(phrase(rng, 1, 4));
  if (chars < SMALL_BLOCK_LIMIT) return SMALL_BLOCK(rng, site);
  const draft = pick(rng, CONTENT_BLOCKS)(rng, site);
  return draftChars(draft) <= chars ? draft : SMALL_BLOCK(rng, site);
}
/** Below this many characters of room, only small blocks; below the tiny limit, only text. */
const SMALL_BLOCK_LIMIT = 400;
const TINY_BLOCK_LIMIT = 150;

/** Serializes drafts as rrweb's snapshot does: nested, ids in document order from `nextId`, registered in the mirror. */
function snapshotNode(draft: Draft, parentId: number, mirror: Mirror, ids: { next: number }): object {
  const id = ids.next++;
  mirror.add(id, parentId, draft.role);
  if ('text' in draft) return draft.style ? { type: NodeType.Text, textContent: draft.text, isStyle: true, id } : { type: NodeType.Text, textContent: draft.text, id };
  const childNodes = draft.children.map((child) => snapshotNode(child, id, mirror, ids));
  return draft.svg
    ? { type: NodeType.Element, tagName: draft.tag, attributes: draft.attributes, childNodes, isSVG: true, id }
    : { type: NodeType.Element, tagName: draft.tag, attributes: draft.attributes, childNodes, id };
}

/** One flat entry of a mutation's `adds`. */
interface Add {
  parentId: number;
  nextId: number | null;
  node: object;
}

/**
 * Serializes a new subtree as rrweb's mutation observer emits it: flat, one
 * entry a node with `childNodes: []`, each parent before its children,
 * siblings last to first so that `nextId` (the next sibling) exists already.
 */
function flatAdds(draft: Draft, parentId: number, nextId: number | null, mirror: Mirror, ids: { next: number }, adds: Add[]): void {
  const id = ids.next++;
  if (nextId) mirror.insertBefore(id, parentId, nextId, draft.role);
  else mirror.add(id, parentId, draft.role);
  if ('text' in draft) {
    adds.push({ parentId, nextId, node: { type: NodeType.Text, textContent: draft.text, id } });
    return;
  }
  adds.push({
    parentId, nextId,
    node: draft.svg
      ? { type: NodeType.Element, tagName: draft.tag, attributes: draft.attributes, childNodes: [], isSVG: true, id }
      : { type: NodeType.Element, tagName: draft.tag, attributes: draft.attributes, childNodes: [], id },
  });
  // Children are appended last to first, each before the one emitted after it.
  let next: number | null = null;
  for (let child = draft.children.length - 1; child >= 0; child--) {
    const childId = ids.next;
    flatAdds(draft.children[child]!, id, next, mirror, ids, adds);
    next = childId;
  }
}

const VIEWPORTS = [[1280, 800], [1440, 900], [1512, 823], [1920, 1080], [1366, 768], [1470, 709], [390, 844], [412, 915]] as const;

/** Marks stand-ins for a site's stylesheets in serialized JSON: a control character nothing else writes. */
const STYLESHEET_MARK = '\u0007';
/** Where a page's main content goes in its serialized JSON. */
const CONTENT_MARK = '\u0007content\u0007';

/**
 * A page load as rrweb records it: the Meta event, the FullSnapshot's JSON
 * around its main content (`head`, with stylesheet marks, and `tail`), and
 * what posthog-js adds right after (its recorder-start custom events, the
 * page view, the initial network requests). The content is added block by
 * block (`addContent`) until the payload is the size it is to be.
 */
interface PageLoad {
  meta: RecordedEvent;
  /** The FullSnapshot's `data` JSON before its content, and after it; `timestamp` is the event's. */
  head: string;
  tail: string;
  timestamp: number;
  /** The site's stylesheets the page links, which the head marks as `\u0007<index>\u0007`. */
  stylesheets: Stylesheet[];
  after: RecordedEvent[];
}

/** A sidebar: a tree of links, `depth` levels deep, a few open at each level. */
function sidebarTree(rng: RandomGenerator, site: Site, depth: number): Draft {
  return element('ul', { class: classes(rng, site) }, Array.from({ length: between(rng, 3, 9) }, (_, at) =>
    element('li', { class: classes(rng, site, 3) }, [
      link(rng, site, capitalized(phrase(rng, 1, 3))),
      ...(depth > 1 && at < 2 ? [sidebarTree(rng, site, depth - 1)] : []),
    ])), Role.Container);
}

/** Pages with less compressed room than this are bare: no header, sidebar or layout wrappers, as small real pages. */
const FURNISHED_PAGE_BYTES = 12_000;

/** The browser window a session records: its page (as rrweb's mirror), viewport and clock. */
class BrowserWindow {
  readonly site: Site;
  private readonly rng: RandomGenerator;
  viewport: readonly [number, number];
  href = '';
  mirror = new Mirror();
  private readonly ids = { next: 1 };
  /** Where content goes: the route container, replaced by a navigation; content ids are above it. */
  private routeId = 0;
  private appId = 0;
  /** When the page last changed: mouse positions never reach back before it. */
  lastMutationMs = 0;
  /**
   * The last id the page load gave out. Clicks, scrolls, input and mouse
   * positions go to those nodes: rrweb's Replayer, seeking, looks nodes up in
   * the live page while nodes added since exist only in its virtual DOM.
   */
  private loadMaxId = 0;
  /** Whether this window's recorder has started (its first page load). */
  private started = false;
  private timeOrigin = 0;

  constructor(site: Site, rng: RandomGenerator) {
    this.site = site;
    this.rng = rng;
    this.viewport = pick(rng, VIEWPORTS);
  }

  /**
   * Loads a new page at `atMs`: a new document, ids from 1, linking the first
   * `stylesheets` of the site's, furnished with header, sidebar and layout
   * unless `bare`; and the events posthog-js records with it: its
   * recorder-start events (on the window's first page, unless `bare`), the
   * page view and `initialRequests` network entries. Content follows with
   * `addContent`.
   */
  load(atMs: number, stylesheets: number, bare: boolean, initialRequests: number): PageLoad {
    const { rng, site } = this;
    this.mirror = new Mirror();
    this.ids.next = 1;
    this.href = `${site.origin}${pickPopular(rng, site.routes)}`;
    this.timeOrigin = atMs - between(rng, 300, 3000);
    const linked = site.stylesheets.slice(0, stylesheets);
    const mark = (index: number) => `${STYLESHEET_MARK}${index}${STYLESHEET_MARK}`;
    const head = element('head', {}, [
      element('meta', { charset: 'utf-8' }, [], Role.Fixed),
      element('title', {}, [textNode(bare ? capitalized(pick(rng, words())) : `${capitalized(phrase(rng, 1, 4))} | ${capitalized(pick(rng, words()))}`)], Role.Fixed),
      ...(bare ? [] : [element('meta', { name: 'viewport', content: 'width=device-width, initial-scale=1' }, [], Role.Fixed)]),
      ...linked.map((_, index) => site.kind === 'docs'
        ? element('style', { 'data-emotion': 'css-global' }, [{ text: mark(index), role: Role.Fixed, style: true }], Role.Fixed)
        : element('link', { crossorigin: 'anonymous', _cssText: mark(index) }, [], Role.Fixed)),
      ...(bare ? [] : site.scripts.map((src) => element('script', { src, defer: '' }, [], Role.Fixed))),
    ], Role.Fixed);
    // A bare page is a small real page: few classes, no furniture.
    const few = bare ? 1 : undefined;
    const route = element('div', { class: classes(rng, site, few) }, [{ text: CONTENT_MARK, role: Role.Fixed }], Role.Container);
    let app: Draft = element('main', { class: classes(rng, site, few) }, [route], Role.Fixed);
    if (!bare) {
      const header = element('header', { class: classes(rng, site) }, [
        link(rng, site, capitalized(pick(rng, words()))),
        element('nav', { class: classes(rng, site) }, [element('ul', { class: classes(rng, site) }, Array.from({ length: between(rng, 3, 9) }, () =>
          element('li', { class: classes(rng, site, 3) }, [link(rng, site, capitalized(phrase(rng, 1, 2)))])), Role.Fixed)], Role.Fixed),
        element('div', { class: classes(rng, site) }, [
          element('input', { class: classes(rng, site), type: 'search', placeholder: 'Search', value: '' }, [], Role.Field), button(rng, site),
        ], Role.Fixed),
      ], Role.Fixed);
      const sidebar = element('aside', { class: classes(rng, site) }, [sidebarTree(rng, site, site.kind === 'docs' ? 4 : 2)], Role.Fixed);
      const layout = element('div', { class: classes(rng, site) }, [sidebar, wrapped(rng, site, app, between(rng, 2, 6), Role.Fixed)], Role.Fixed);
      app = wrapped(rng, site, element('div', { class: classes(rng, site) }, [header, wrapped(rng, site, layout, between(rng, 2, 6), Role.Fixed)], Role.Fixed), between(rng, 2, 5), Role.Fixed);
    }
    const body = element('body', bare ? {} : { class: classes(rng, site, 3) }, [element('div', bare ? { id: 'root' } : { id: 'root', class: classes(rng, site, 2) }, [app], Role.Container)], Role.Fixed);
    const html = element('html', { lang: 'en' }, [head, body], Role.Fixed);
    const document = { type: NodeType.Document, childNodes: [] as object[], id: this.ids.next++ };
    this.mirror.add(document.id, 0, Role.Fixed);
    const doctypeId = this.ids.next++;
    document.childNodes.push({ type: NodeType.DocumentType, name: 'html', publicId: '', systemId: '', id: doctypeId });
    this.mirror.add(doctypeId, document.id, Role.Fixed);
    document.childNodes.push(snapshotNode(html, document.id, this.mirror, this.ids));
    // The content mark, the last node in document order, stands for the route's content: drop it and give its id to the first block.
    const markId = --this.ids.next;
    this.routeId = this.mirror.parentOf(markId);
    this.mirror.remove(markId);
    this.loadMaxId = Infinity; // until the page is sized: its content blocks come with it
    this.appId = this.routeId;
    for (let id = 1; id < this.routeId; id++) if (this.mirror.roleOf(id) === Role.Container) (this.appId = id), (id = this.routeId);
    const json = JSON.stringify({ node: document, initialOffset: { left: 0, top: 0 } });
    const contentAt = json.indexOf(`{"type":3,"textContent":"${escapeInData(CONTENT_MARK)}"`);
    const timestamp = atMs + between(rng, 16, 73); // rrweb's Meta comes 16-73 ms before its FullSnapshot
    const [width, height] = this.viewport;
    const meta: RecordedEvent = { type: EventType.Meta, data: { href: this.href, width, height }, timestamp: atMs };
    const after: RecordedEvent[] = [];
    let at = timestamp + between(rng, 1, 20);
    if (!this.started && !bare) {
      for (const { tag, payload } of site.recorderStart) after.push({ type: EventType.Custom, data: { tag, payload }, timestamp: at++ });
      this.started = true;
    }
    if (!bare) after.push({ type: EventType.Custom, data: { tag: '$pageview', payload: { href: this.href } }, timestamp: at++ });
    if (initialRequests > 0) after.push(this.networkEvent(at + between(rng, 50, 400), initialRequests, true));
    this.lastMutationMs = timestamp;
    return {
      meta, head: json.slice(0, contentAt), tail: json.slice(json.indexOf('}', contentAt) + 1), timestamp, stylesheets: linked, after,
    };
  }

  /** One block of the page's main content of about `chars` characters at most, serialized in place (for a page load being sized). */
  addContent(chars: number): string {
    this.loadMaxId = Infinity;
    return JSON.stringify(snapshotNode(blockOf(this.rng, this.site, chars), this.routeId, this.mirror, this.ids));
  }

  // --- Activity ----------------------------------------------------------------------

  /**
   * One event of activity at `atMs`, of about `chars` characters of JSON at
   * most (small events when little room is left): a draw from the mix of
   * what users and pages do, ACTIVITY.
   */
  activity(atMs: number, chars: number): RecordedEvent {
    this.settleLoad();
    // Near a batch's size only the smallest events: a click or a scroll.
    if (chars < TINY_EVENT_CHARS) return unit(this.rng) < 0.5 ? this.click(atMs) : this.scroll(atMs);
    const roll = unit(this.rng);
    let share = 0;
    for (const kind of ACTIVITY) {
      share += kind.share;
      if (roll < share) return chars >= kind.minChars ? kind.make(this, atMs, chars) : this.mouseMove(atMs);
    }
    return this.mouseMove(atMs);
  }

  mouseMove(atMs: number): RecordedEvent {
    const { rng } = this;
    const [width, height] = this.viewport;
    // rrweb's mousemove sampling: a position every 50 ms at most, flushed every 500 ms, offsets in (-500, 0];
    // none before the page last changed, so every position's node exists at its time.
    const reach = Math.min(500, atMs - this.lastMutationMs);
    const count = reach < 100 ? 1 : between(rng, 2, Math.min(7, Math.floor(reach / 50)));
    const positions = Array.from({ length: count }, (_, at) => ({
      x: between(rng, 0, width), y: between(rng, 0, height), id: this.visibleNode(), timeOffset: -Math.floor(((count - 1 - at) * reach) / count),
    }));
    return { type: EventType.IncrementalSnapshot, data: { source: IncrementalSource.MouseMove, positions }, timestamp: atMs };
  }

  /** Ends the page load: what exists now is what it brought (see `loadMaxId`). */
  private settleLoad(): void {
    if (this.loadMaxId === Infinity) this.loadMaxId = this.ids.next - 1;
  }

  /** Nodes of the page load that still exist, for positions and interactions (see `loadMaxId`). */
  private loaded(role: number): number | undefined {
    return this.mirror.pick(this.rng, role, this.loadMaxId);
  }

  private visibleNode(): number {
    return this.loaded(Role.Element) ?? this.loaded(Role.Clickable) ?? this.appId;
  }

  click(atMs: number): RecordedEvent {
    const { rng } = this;
    const [width, height] = this.viewport;
    const id = this.loaded(Role.Clickable) ?? this.visibleNode();
    const type = pick(rng, [0, 1, 2, 2, 2, 5, 6]); // MouseUp, MouseDown, Click (most), Focus, Blur
    return {
      type: EventType.IncrementalSnapshot,
      data: { source: IncrementalSource.MouseInteraction, type, id, x: between(rng, 0, width * 100) / 100, y: between(rng, 0, height * 100) / 100 },
      timestamp: atMs,
    };
  }

  scroll(atMs: number): RecordedEvent {
    const id = unit(this.rng) < 0.6 ? 1 : this.visibleNode();
    return { type: EventType.IncrementalSnapshot, data: { source: IncrementalSource.Scroll, id, x: 0, y: between(this.rng, 0, 6000) }, timestamp: atMs };
  }

  /** Typing into a field; posthog-js masks all inputs, so the text is asterisks. */
  input(atMs: number): RecordedEvent {
    const id = this.loaded(Role.Field);
    if (id === undefined) return this.click(atMs);
    return { type: EventType.IncrementalSnapshot, data: { source: IncrementalSource.Input, text: '*'.repeat(between(this.rng, 1, 24)), isChecked: false, id }, timestamp: atMs };
  }

  resize(atMs: number): RecordedEvent {
    const [width, height] = this.viewport;
    this.viewport = [Math.max(320, width + between(this.rng, -200, 200)), Math.max(320, height + between(this.rng, -150, 150))];
    return { type: EventType.IncrementalSnapshot, data: { source: IncrementalSource.ViewportResize, width: this.viewport[0], height: this.viewport[1] }, timestamp: atMs };
  }

  /**
   * A mutation as rrweb records it: removes of subtree roots, flat adds, then
   * text and attribute changes of nodes that existed before it (rrweb drops
   * those of nodes it adds). The adds take up to `room` characters: a list
   * render, or from NAVIGATION_CHARS a single-page-app navigation that
   * replaces the route's content. Only content (ids above the route) is ever
   * removed, so the page keeps its frame.
   */
  mutation(atMs: number, room: number): RecordedEvent {
    this.settleLoad();
    const { rng, mirror } = this;
    // Most mutations add a node or a few; some a component; a few a whole view (20-416 adds in production).
    const size = unit(rng);
    const chars = Math.min(room, size < 0.7 ? 500 : size < 0.95 ? 6000 : MAX_MUTATION_CHARS) * unit(rng);
    const before = this.ids.next - 1; // the last id given out before this mutation
    const removes: { parentId: number; id: number }[] = [];
    const adds: Add[] = [];
    const texts: { id: number; value: string }[] = [];
    const attributes: { id: number; attributes: Record<string, string> }[] = [];
    if (chars >= NAVIGATION_CHARS && unit(rng) < 0.5) {
      const parentId = mirror.parentOf(this.routeId);
      removes.push({ parentId, id: this.routeId });
      mirror.remove(this.routeId);
      const blocks: Draft[] = [];
      for (let size = 0; size < chars; ) {
        const block = blockOf(rng, this.site, chars - size);
        blocks.push(block);
        size += draftChars(block);
      }
      const routeId = this.ids.next;
      flatAdds(element('div', { class: classes(rng, this.site) }, blocks, Role.Container), parentId, null, mirror, this.ids, adds);
      this.routeId = routeId;
      this.href = `${this.site.origin}${pickPopular(rng, this.site.routes)}`;
    } else {
      // Content rendered into a list, a grid or the route: a block or a few, appended or prepended.
      const parentId = mirror.pick(rng, Role.Container) ?? this.routeId;
      const nextId = unit(rng) < 0.3 ? mirror.firstChildOf(parentId) || null : null;
      for (let size = 0; size === 0 || size < chars; ) {
        const block = blockOf(rng, this.site, chars - size);
        flatAdds(block, parentId, nextId, mirror, this.ids, adds);
        size += draftChars(block);
      }
      const removed = mirror.pick(rng, Role.Element, before);
      if (removed !== undefined && removed > this.routeId && unit(rng) < 0.3 && !mirror.isAncestor(removed, parentId)) {
        removes.unshift({ parentId: mirror.parentOf(removed), id: removed });
        mirror.remove(removed);
      }
    }
    for (let count = between(rng, 0, 3); count > 0; count--) {
      const id = mirror.pick(rng, Role.Element, before);
      if (id !== undefined) attributes.push({ id, attributes: { class: classes(rng, this.site) } });
    }
    for (let count = between(rng, 0, 2); count > 0; count--) {
      const id = mirror.pick(rng, Role.Text, before);
      if (id !== undefined) texts.push({ id, value: phrase(rng, 1, 5) });
    }
    this.lastMutationMs = atMs;
    return { type: EventType.IncrementalSnapshot, data: { source: IncrementalSource.Mutation, texts, attributes, removes, adds }, timestamp: atMs };
  }

  /** A class or style changing, or a counter's text: the small mutations a live page makes all the time. */
  smallMutation(atMs: number): RecordedEvent {
    const { rng, mirror } = this;
    const id = mirror.pick(rng, Role.Element);
    const textId = mirror.pick(rng, Role.Text);
    const attributes = id === undefined ? [] : [{ id, attributes: unit(rng) < 0.7 ? { class: classes(rng, this.site) } : { style: `height: ${between(rng, 0, 400)}px;` } }];
    const texts = textId === undefined || unit(rng) < 0.5 ? [] : [{ id: textId, value: String(between(rng, 0, 9999)) }];
    this.lastMutationMs = atMs;
    return { type: EventType.IncrementalSnapshot, data: { source: IncrementalSource.Mutation, texts, attributes, removes: [], adds: [] }, timestamp: atMs };
  }

  /** A console message of the site's code, as posthog-js's console plugin records it. */
  consoleEvent(atMs: number): RecordedEvent {
    const { level, payload, trace } = pickPopular(this.rng, this.site.console);
    return { type: EventType.Plugin, data: { plugin: 'rrweb/console@1', payload: { level, trace, payload } }, timestamp: atMs };
  }

  /**
   * Network requests as posthog-js's network plugin records them: resource
   * timing entries (float milliseconds, as browsers give them), and for
   * fetches the method, status and sometimes the body.
   */
  networkEvent(atMs: number, count: number, initial = false, chars = Infinity): RecordedEvent {
    const { rng } = this;
    const bodyRoom = chars / count - REQUEST_CHARS;
    const requests = Array.from({ length: count }, (_, index) => this.request(atMs, initial && index === 0 ? 'navigation' : initial ? pick(rng, ['script', 'link', 'img', 'css', 'fetch']) : 'fetch', initial, bodyRoom));
    if (initial) return { type: EventType.Plugin, data: { plugin: 'rrweb/network@1', payload: { requests, isInitial: true } }, timestamp: atMs };
    return { type: EventType.Plugin, data: { plugin: 'rrweb/network@1', payload: { requests } }, timestamp: atMs };
  }

  private request(atMs: number, initiatorType: string, initial: boolean, bodyRoom: number): object {
    const { rng, site } = this;
    const ms = (value: number) => Math.round(value * 10) / 10 + pick(rng, TIMER_NOISE);
    const startTime = Math.max(0, atMs - this.timeOrigin - between(rng, 5, 900));
    const durationMs = between(rng, 2, 1500) + unit(rng);
    const endpoint = pick(rng, site.api);
    const name = initiatorType === 'navigation' ? this.href
      : initiatorType === 'script' ? pick(rng, site.scripts)
        : initiatorType === 'link' || initiatorType === 'css' ? `${site.origin}/static/index-${randomToken(rng, 8)}.css`
          : initiatorType === 'img' ? `${site.origin}/static/${pick(rng, words())}.${pick(rng, ['png', 'svg', 'webp'])}`
            : `${site.origin}${endpoint.path}`;
    const transferSize = between(rng, 0, 40_000);
    const entry: Record<string, unknown> = {
      name, entryType: initiatorType === 'navigation' ? 'navigation' : 'resource', startTime: ms(startTime), duration: ms(durationMs), initiatorType,
      deliveryType: '', nextHopProtocol: pick(rng, ['h2', 'h3', 'http/1.1', '']), renderBlockingStatus: 'non-blocking', workerStart: 0,
      redirectStart: 0, redirectEnd: 0, fetchStart: ms(startTime + 0.3), domainLookupStart: ms(startTime + 0.3), domainLookupEnd: ms(startTime + 0.3),
      connectStart: ms(startTime + 0.3), secureConnectionStart: 0, connectEnd: ms(startTime + 0.3), requestStart: ms(startTime + durationMs * 0.2),
      responseStart: ms(startTime + durationMs * 0.8), firstInterimResponseStart: 0, responseEnd: ms(startTime + durationMs), transferSize,
      encodedBodySize: Math.max(0, transferSize - 300), decodedBodySize: transferSize * between(rng, 1, 4), responseStatus: pick(rng, [200, 200, 200, 200, 0, 304, 500]), serverTiming: [],
    };
    const request: Record<string, unknown> = { ...entry, startTime: Math.round(startTime), endTime: Math.round(startTime + durationMs), timeOrigin: this.timeOrigin, timestamp: Math.floor(this.timeOrigin + startTime) };
    if (initiatorType === 'fetch' && !initial) {
      Object.assign(request, {
        method: endpoint.method, status: request.responseStatus, requestHeaders: { 'content-type': 'application/json' },
        requestBody: endpoint.method === 'GET' ? '' : JSON.stringify({ [pick(rng, words())]: phrase(rng, 1, 3) }),
        responseHeaders: { 'content-type': 'application/json', 'cache-control': 'no-cache' },
        ...(unit(rng) < 0.5 && endpoint.body.length < bodyRoom && { responseBody: endpoint.body }),
      });
    }
    if (initial) request.isInitial = true;
    return request;
  }

  /** A network event of the app's fetches: one to three requests, as many as `chars` holds, bodies only where they fit. */
  fetches(atMs: number, chars: number): RecordedEvent {
    return this.networkEvent(atMs, Math.max(1, Math.min(Math.floor(chars / REQUEST_CHARS), between(this.rng, 1, 3))), false, chars);
  }

  /** A random pause of about `meanMs`, from the window's stream: the gaps between a user's events. */
  pause(meanMs: number): number {
    return 2 * meanMs * unit(this.rng);
  }

  custom(atMs: number): RecordedEvent {
    const tag = pick(this.rng, ['window hidden', 'window visible', '$pageview', 'sessionNoLongerIdle']);
    const payload = tag === '$pageview' ? { href: this.href } : tag === 'sessionNoLongerIdle' ? { reason: 'user activity', type: 3 } : {};
    return { type: EventType.Custom, data: { tag, payload }, timestamp: atMs };
  }
}

/** Events for the last few characters of a batch: a click or a scroll takes about 100. */
const TINY_EVENT_CHARS = 250;
/** About how many characters of JSON a request takes in a network event, without bodies. */
const REQUEST_CHARS = 1100;
/** Timing values browsers give carry float noise from subtracting clock readings (213.60000002384183). */
const TIMER_NOISE = [0, 0, 0, 2.384185791015625e-8, 1.1920928955078125e-8, -1.1920928955078125e-8];
/** Mutations of this many characters or more may be single-page-app navigations. */
const NAVIGATION_CHARS = 8000;
/** A mutation's adds stay under this: a render of a few hundred nodes, as the largest real ones (416 adds). */
const MAX_MUTATION_CHARS = 60_000;

/**
 * What happens on a page, by share of events and the least room each needs:
 * mouse moves dominate, clicks and scrolls follow, the page changes now and
 * then, the app logs and fetches; viewport resizes are rare (0-2.2% in
 * production recordings).
 */
const ACTIVITY: readonly { share: number; minChars: number; make: (window: BrowserWindow, atMs: number, chars: number) => RecordedEvent }[] = [
  { share: 0.25, minChars: 0, make: (window, atMs) => window.mouseMove(atMs) },
  { share: 0.12, minChars: 0, make: (window, atMs) => window.click(atMs) },
  { share: 0.07, minChars: 0, make: (window, atMs) => window.scroll(atMs) },
  { share: 0.03, minChars: 0, make: (window, atMs) => window.input(atMs) },
  { share: 0.01, minChars: 0, make: (window, atMs) => window.resize(atMs) },
  { share: 0.10, minChars: 300, make: (window, atMs) => window.smallMutation(atMs) },
  { share: 0.12, minChars: 1500, make: (window, atMs, chars) => window.mutation(atMs, chars) },
  { share: 0.18, minChars: 1500, make: (window, atMs, chars) => window.fetches(atMs, chars) },
  { share: 0.09, minChars: 3000, make: (window, atMs) => window.consoleEvent(atMs) },
  { share: 0.03, minChars: 200, make: (window, atMs) => window.custom(atMs) },
];

// ===========================================================================
// 4. Compression: gzip members (RFC 1952) assembled from deflate pieces
// (RFC 1951) joined at flush points: fresh text compressed as it comes,
// with the previous 32 KiB as its dictionary, so the pieces read as one
// stream; a site's stylesheets compressed once and spliced into every page
// that links them; the last piece finished by the trial that sized it.
// ===========================================================================

const gzip = {
  /** What a member takes besides its deflate blocks: 10 bytes of header, 8 of trailer (CRC-32, ISIZE). */
  frameBytes: 18,
  /** A member's header: deflate, no flags, the modification time in seconds, and the writer's extra flags and OS. */
  header(mtimeMs: number, writer: { extraFlags: number; os: number }): Buffer {
    const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, writer.extraFlags, writer.os]);
    header.writeUInt32LE(Math.floor(mtimeMs / 1000) >>> 0, 4);
    return header;
  },
  trailer(crc: number, size: number): Buffer {
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(crc >>> 0, 0);
    trailer.writeUInt32LE(size >>> 0, 4); // ISIZE: the length modulo 2^32
    return trailer;
  },
};
/** Python's gzip.compress: extra flags 2 (level 9), OS 255 (unknown). */
const PYTHON_GZIP = { extraFlags: 2, os: 255 };
/** fflate's gzipSync: extra flags 0, OS 3 (Unix). */
const FFLATE_GZIP = { extraFlags: 0, os: 3 };
/**
 * zlib level 6, fflate's default: its output is within 2% of level 9's on
 * these texts (measured 1.6-2.0% on the real recordings) at twice the speed.
 */
const COMPRESSION = { level: 6 };
/** Fresh text is compressed in pieces of this many bytes, each continuing the stream before it. */
const PIECE_BYTES = 256 * 1024;
/** Before a trial, open text of this many bytes is committed, so trials stay cheap; a flush point costs a block header. */
const TRIAL_PIECE_BYTES = 96 * 1024;
/** Deflate reaches back 32 KiB: the dictionary a piece needs to continue the stream. */
const WINDOW_BYTES = 32 * 1024;

/** How many characters a byte takes once its latin1 character is escaped in a JSON string: `"` `\` and controls grow. */
const ESCAPED_CHARS = Uint8Array.from({ length: 256 }, (_, byte) => JSON.stringify(String.fromCharCode(byte)).length - 2);
/** Characters of a latin1 string of `bytes` once escaped in JSON. */
function escapedLength(bytes: Uint8Array): number {
  let length = 0;
  for (let at = 0; at < bytes.length; at++) length += ESCAPED_CHARS[bytes[at]!]!;
  return length;
}

/** How text becomes bytes before compression: legacy payloads are UTF-16LE; posthog-js's compressed fields UTF-8. */
type TextEncoding = 'utf16le' | 'utf8';

/** Text compressed once: its bytes (for the checksum and the next piece's dictionary) and its deflate blocks, ending at a flush point. */
interface DeflatedText {
  bytes: Buffer;
  deflated: Buffer;
}

/** Each stylesheet's deflate blocks, by the encoding they were made for: kept as long as its site. */
const deflatedStylesheets = new WeakMap<Stylesheet, Partial<Record<TextEncoding, DeflatedText>>>();

/** A stylesheet's deflate blocks for `encoding`, made on first use. */
function deflatedStylesheet(sheet: Stylesheet, encoding: TextEncoding): DeflatedText {
  let blocks = deflatedStylesheets.get(sheet);
  if (!blocks) deflatedStylesheets.set(sheet, (blocks = {}));
  let block = blocks[encoding];
  if (!block) {
    const bytes = Buffer.from(sheet.json, encoding === 'utf16le' ? 'utf16le' : 'latin1');
    block = blocks[encoding] = { bytes, deflated: deflateRawSync(bytes, { ...COMPRESSION, finishFlush: zlibConstants.Z_SYNC_FLUSH }) };
  }
  return block;
}

/** A candidate last piece: the open text and a tail, compressed to the end of the stream. */
interface DeflateTrial {
  bytes: Buffer;
  deflated: Buffer;
}

/**
 * A gzip member written piece by piece: JSON text (converted to Python's
 * form and UTF-16, or UTF-8) compressed as it comes in pieces of
 * PIECE_BYTES, stylesheet marks replaced by the site's compressed
 * stylesheets, and trials of the text still open with a tail.
 */
class DeflateWriter {
  readonly encoding: TextEncoding;
  private readonly python: boolean;
  private readonly header: Buffer;
  private readonly pieces: Buffer[] = [];
  private committedBytes = 0;
  private committedEscaped = 0;
  private crc = 0;
  private size = 0;
  private dictionary: Buffer | undefined;
  private open: Buffer[] = [];
  private openBytes = 0;
  /** Where Python's converter is: inside a JSON string or not. */
  private readonly state = { inString: false };

  constructor(text: { encoding: TextEncoding; python: boolean }, header: Buffer) {
    this.encoding = text.encoding;
    this.python = text.python;
    this.header = header;
    this.committedEscaped = escapedLength(header);
    // Python's "utf-16" codec starts with a byte-order mark.
    if (this.python) this.append(Buffer.from([0xff, 0xfe]));
  }

  /** Appends JSON text; a stylesheet mark (`\u0007<index>\u0007`, escaped) splices `stylesheets[index]`'s compressed bytes. */
  write(text: string, stylesheets: readonly Stylesheet[] = []): void {
    let from = 0;
    for (let at = text.indexOf(ESCAPED_MARK); at !== -1; at = text.indexOf(ESCAPED_MARK, from)) {
      const end = text.indexOf(ESCAPED_MARK, at + ESCAPED_MARK.length);
      this.append(this.bytesOf(text.slice(from, at)));
      this.splice(deflatedStylesheet(stylesheets[Number(text.slice(at + ESCAPED_MARK.length, end))]!, this.encoding));
      from = end + ESCAPED_MARK.length;
    }
    this.append(this.bytesOf(text.slice(from)));
  }

  /**
   * The open text and `tail` compressed to the end of the stream: what
   * finishing now would write. Open text of TRIAL_PIECE_BYTES or more is
   * committed first, so that repeated trials compress each byte about once.
   */
  trial(tail: string): DeflateTrial {
    if (this.openBytes >= TRIAL_PIECE_BYTES) this.commit();
    const bytes = Buffer.concat([...this.open, this.bytesOf(tail, { ...this.state })]);
    return { bytes, deflated: deflateRawSync(bytes, { ...COMPRESSION, ...(this.dictionary && { dictionary: this.dictionary }) }) };
  }

  /** Bytes of the member a trial would finish. */
  memberBytes(trial: DeflateTrial): number {
    return gzip.frameBytes + this.committedBytes + trial.deflated.length;
  }

  /** Characters of the member a trial would finish, as a latin1 string escaped in JSON. */
  escapedLength(trial: DeflateTrial): number {
    return this.committedEscaped + escapedLength(trial.deflated) + 16; // the trailer's 8 bytes escape to about 16
  }

  /** The member, finished by `trial`. */
  finish(trial: DeflateTrial): Buffer {
    const crc = crc32(trial.bytes, this.crc);
    return Buffer.concat([this.header, ...this.pieces, trial.deflated, gzip.trailer(crc, this.size + trial.bytes.length)]);
  }

  private bytesOf(text: string, state = this.state): Buffer {
    return this.python ? pythonJsonUtf16(text, state) : Buffer.from(text);
  }

  private append(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.open.push(bytes);
    this.openBytes += bytes.length;
    if (this.openBytes >= PIECE_BYTES) this.commit();
  }

  /** Compresses the open text to a flush point, continuing the stream. */
  private commit(): void {
    if (this.openBytes === 0) return;
    const bytes = Buffer.concat(this.open);
    const deflated = deflateRawSync(bytes, { ...COMPRESSION, finishFlush: zlibConstants.Z_SYNC_FLUSH, ...(this.dictionary && { dictionary: this.dictionary }) });
    this.take(bytes, deflated);
    this.open = [];
    this.openBytes = 0;
  }

  private splice(block: DeflatedText): void {
    this.commit();
    this.take(block.bytes, block.deflated);
  }

  private take(bytes: Buffer, deflated: Buffer): void {
    this.pieces.push(deflated);
    this.committedBytes += deflated.length;
    this.committedEscaped += escapedLength(deflated);
    this.crc = crc32(bytes, this.crc);
    this.size += bytes.length;
    this.dictionary = bytes.length > WINDOW_BYTES ? bytes.subarray(bytes.length - WINDOW_BYTES) : Buffer.concat([this.dictionary ?? Buffer.alloc(0), bytes]).subarray(-WINDOW_BYTES);
  }
}

/** A stylesheet mark as it reads in JSON text: its control character escaped. */
const ESCAPED_MARK = escapeInData(STYLESHEET_MARK);
const STYLESHEET_MARK_PATTERN = /\\u0007(\d+)\\u0007/g;

/**
 * JSON text as Python's json.dumps writes the same value, in UTF-16LE: `", "`
 * and `": "` between items, and every character outside printable ASCII
 * escaped. JSON.stringify already escapes quotes, backslashes and controls,
 * so only separators outside strings, DEL and non-ASCII change. `state`
 * carries whether the text starts inside a string.
 */
function pythonJsonUtf16(text: string, state: { inString: boolean }): Buffer {
  const ascii = /[^\x00-\x7e]/.test(text) ? text.replace(/[^\x00-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`) : text;
  const out = new Uint16Array(ascii.length * 2);
  let length = 0;
  let inString = state.inString;
  for (let at = 0; at < ascii.length; at++) {
    const code = ascii.charCodeAt(at);
    out[length++] = code;
    if (inString) {
      if (code === 0x5c) out[length++] = ascii.charCodeAt(++at); // an escape: its next character is part of it
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) {
      inString = true;
    } else if (code === 0x2c || code === 0x3a) {
      out[length++] = 0x20;
    }
  }
  state.inString = inString;
  // Typed arrays are little-endian on every platform node runs on: these are UTF-16LE bytes.
  return Buffer.from(out.buffer, 0, length * 2);
}

// ===========================================================================
// 5. Payloads: a snapshot's events as each format carries them, brought to
// the planned size. `--payload random` is opaque base64; rrweb payloads are
// the legacy capture's gzip-base64 of Python's JSON in UTF-16, or the events
// as posthog-js sends them, large ones compressed (`cv`). Sizes are hit by
// adding content until a trial compression says the batch is full.
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
class Base64Text implements PayloadText {
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
function base64Of(bytes: Buffer): { text: PayloadText; length: number } {
  let at = 0;
  return { text: new Base64Text((count) => bytes.subarray(at, (at += count))), length: Math.ceil(bytes.length / 3) * 4 };
}

/** Base64's alphabet, as bytes. */
const BASE64_LETTERS = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1');
/** Two letters for each 12 bits, as one little-endian 16-bit unit, so a 32-bit store writes four letters. */
const LETTER_PAIRS = Uint16Array.from({ length: 4096 }, (_, bits) => BASE64_LETTERS[bits & 63]! | (BASE64_LETTERS[bits >>> 6]! << 8));

/**
 * `--payload random`'s text: letters of base64's alphabet drawn six bits at a
 * time from xoshiro128** (Blackman and Vigna), four from 24 bits of each
 * 32-bit word, written into an aligned scratch block four at a time and
 * copied out. Any text of whole base64 quanta is valid base64 of random
 * bytes, so this is random data in gzip-base64's alphabet with its entropy:
 * the same bytes on every runtime (of a little-endian machine), at about
 * 2 GB/s under node, Deno and Bun alike. An AES keystream ran at 2 GB/s
 * under node but a fifth of that under Deno; a letter at a time, 0.5 GB/s.
 *
 * @example
 * const letters = new RandomLetters([1, 2, 3, 4]);
 * letters.writeNext(buffer, 0, 100); // 100 characters of [A-Za-z0-9+/]
 */
class RandomLetters implements PayloadText {
  private readonly state: Uint32Array;
  private static readonly scratch = new Uint32Array(4096);
  private static readonly scratchBytes = new Uint8Array(RandomLetters.scratch.buffer);

  constructor(seed: readonly number[]) {
    this.state = Uint32Array.from(seed);
  }

  writeNext(target: Buffer, offset: number, count: number): void {
    const { scratch, scratchBytes } = RandomLetters;
    const { state } = this;
    let [s0, s1, s2, s3] = [state[0]!, state[1]!, state[2]!, state[3]!];
    for (let written = 0; written < count; ) {
      const drawnWords = Math.min(scratch.length, (count - written + 3) >>> 2);
      for (let index = 0; index < drawnWords; index++) {
        const scrambled = Math.imul(s1, 5);
        const word = Math.imul((scrambled << 7) | (scrambled >>> 25), 9);
        const shifted = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= shifted;
        s3 = (s3 << 11) | (s3 >>> 21);
        scratch[index] = LETTER_PAIRS[word & 4095]! | (LETTER_PAIRS[(word >>> 12) & 4095]! << 16);
      }
      const letters = Math.min(count - written, 4 * drawnWords);
      target.set(scratchBytes.subarray(0, letters), offset + written);
      written += letters;
    }
    state.set([s0, s1, s2, s3]);
  }
}

/**
 * `--payload random` for one snapshot of about `size` characters: random
 * letters of base64's alphabet, so PostHog's `decompress` base64-decodes it
 * (and stops at gunzip, as it would on any opaque data). The length is `size`
 * rounded to whole base64 quanta (4 characters) stochastically, which keeps
 * the mean. A gzip member of stored blocks would gunzip too, but its CRC and
 * framing cost a third of the default mode's speed.
 */
function randomSnapshotData(letters: RandomLetters, rng: RandomGenerator, size: number): { text: PayloadText; length: number } {
  return { text: letters, length: 4 * Math.max(1, stochasticRound(rng, size / 4)) };
}

/** posthog-js compresses FullSnapshots always, and mutations of this many JSON characters or more (its 1.184-1.242 releases). */
const COMPRESS_EVENT_CHARS = 1024;
/** The `cv` of posthog-js's compressed events. */
const COMPRESSED_EVENT_VERSION = '2024-10';

/**
 * posthog-js's `gzipToString`: fflate's gzip of the JSON, as a latin1
 * string, its header time the event's (as fflate's mtime from Date.now()).
 * fflate writes the empty list as a stored block; zlib (level 6, fflate's
 * default) does the rest, which differ from fflate's bytes only in detail.
 */
function gzipToString(json: string, atMs: number): string {
  if (json === '[]') return EMPTY_LIST_MEMBER(atMs).toString('latin1');
  const bytes = Buffer.from(json);
  const member = Buffer.concat([gzip.header(atMs, FFLATE_GZIP), deflateRawSync(bytes, COMPRESSION), gzip.trailer(crc32(bytes), bytes.length)]);
  return member.toString('latin1');
}

/** fflate 0.4's gzip of `[]`: a stored block, 25 bytes. */
const EMPTY_LIST_MEMBER = (atMs: number) => Buffer.concat([gzip.header(atMs, FFLATE_GZIP), Buffer.from([0x01, 0x02, 0x00, 0xfd, 0xff, 0x5b, 0x5d]), gzip.trailer(crc32(Buffer.from('[]')), 2)]);

/**
 * An event as posthog-js sends it: compressed (`cv`) as its compressEvent
 * does (FullSnapshot data; a mutation's four lists, each on its own) when
 * `compress` and it is large enough, else as it is.
 */
function sentEvent(event: RecordedEvent, compress: boolean): object {
  if (!compress) return event;
  if (event.type === EventType.IncrementalSnapshot && (event.data as { source: number }).source === IncrementalSource.Mutation) {
    if (JSON.stringify(event).length < COMPRESS_EVENT_CHARS) return event;
    const { texts, attributes, removes, adds } = event.data as Record<'texts' | 'attributes' | 'removes' | 'adds', unknown[]>;
    const pack = (list: unknown[]) => gzipToString(JSON.stringify(list), event.timestamp);
    return {
      type: event.type,
      data: { source: IncrementalSource.Mutation, texts: pack(texts), attributes: pack(attributes), removes: pack(removes), adds: pack(adds) },
      timestamp: event.timestamp,
      cv: COMPRESSED_EVENT_VERSION,
    };
  }
  return event;
}

/** Legacy payloads: the events' JSON as Python wrote it, in UTF-16 with its byte-order mark, gzip at a level within 2% of Python's 9. */
const LEGACY_TEXT = { encoding: 'utf16le', python: true } as const;
/** posthog-js's compressed events: UTF-8 JSON. */
const SENT_TEXT = { encoding: 'utf8', python: false } as const;

/** Compressed bytes a JSON character takes, as a first guess before any trial: Python's UTF-16 and plain UTF-8. */
const FIRST_GUESS_BYTES_PER_CHAR: Record<TextEncoding, number> = { utf16le: 0.2, utf8: 0.16 };
/** Small texts compress less: the first guess grows by a factor of 1 + SMALL_TEXT_BYTES / target. */
const SMALL_TEXT_BYTES = 600;
/** A batch's events are at most this large, unless it has reached MAX_BATCH_EVENTS and must grow by larger ones. */
const MAX_EVENT_CHARS = 60_000;
/** Events average about this many JSON characters, and compressed bytes in a legacy batch: for spacing them in time. */
const EVENT_CHARS = 600;
const EVENT_BYTES = 60;
/** A batch holds at most this many events, so chunk 0's events_summary stays small; past it, events are made large. */
const MAX_BATCH_EVENTS = 600;
/** Batches of events (not page loads) are sized to this accuracy. */
const SIZE_TOLERANCE = 0.03;

/**
 * A page load's events encoded into `writer`, the page's content added block
 * by block until a trial says the encoded batch reaches `target` (in the
 * writer's measure); returns the finished member and the batch's events.
 */
function encodePageLoad(window: BrowserWindow, snapshot: PlannedSnapshot, newWriter: () => DeflateWriter, target: number,
  measure: (writer: DeflateWriter, trial: DeflateTrial) => number): { member: Buffer; events: RecordedEvent[] } {
  // A furnished page, unless the batch is small or its frame alone turns out larger than the batch: then a bare one.
  for (const bare of target < FURNISHED_PAGE_BYTES ? [true] : [false, true]) {
    const writer = newWriter();
    // Stylesheets take most of a page's bytes, as in production pages (48-73% of their JSON).
    const share = 0.7 + 0.2 * unitFrom(snapshot.firstEventMs);
    let stylesheets = 0;
    for (let spent = 0; !bare && stylesheets < window.site.stylesheets.length; stylesheets++) {
      spent += deflatedStylesheet(window.site.stylesheets[stylesheets]!, writer.encoding).deflated.length;
      if (spent > share * target) break;
    }
    // The initial network batch takes about a fifth of the batch, as in production page loads (66-79 kB of 0.9-2 MB).
    const initialRequests = bare ? 0 : Math.min(114, Math.floor((0.2 * target) / 120));
    const page = window.load(snapshot.firstEventMs, stylesheets, bare, initialRequests);
    writer.write(`[${JSON.stringify(page.meta)},{"type":2,"data":${page.head}`, page.stylesheets);
    const tail = `${page.tail},"timestamp":${page.timestamp}}${page.after.map((event) => `,${JSON.stringify(event)}`).join('')}]`;
    if (!bare && measure(writer, writer.trial(tail)) > target) continue;
    const trial = fillToSize(writer, target, tail, measure, (missing, first) => (first ? '' : ',') + window.addContent(missing));
    const full: RecordedEvent = { type: EventType.FullSnapshot, data: {}, timestamp: page.timestamp };
    return { member: writer.finish(trial), events: [page.meta, full, ...page.after] };
  }
  throw new Error('internal error: a bare page is always made');
}

/**
 * Adds content to `writer` (`next`, given about how many characters are
 * still missing) until a trial of the whole, with `tail`, measures at least
 * `target` less the tolerance; returns that trial. Estimates between trials
 * use the bytes per character the last trial showed.
 */
function fillToSize(writer: DeflateWriter, target: number, tail: string, measure: (writer: DeflateWriter, trial: DeflateTrial) => number,
  next: (missingChars: number, first: boolean) => string): DeflateTrial {
  // Small batches compress less: a higher first guess for them, so their first events are not too large.
  let perChar = FIRST_GUESS_BYTES_PER_CHAR[writer.encoding] * (1 + SMALL_TEXT_BYTES / Math.max(1, target));
  let trial = writer.trial(tail);
  let measured = measure(writer, trial);
  let first = true;
  let content = { chars: 0, bytes: 0 };
  // Blocks compress unevenly: fill part of what the estimate says is missing (most while far off, half when
  // close), measure, and again, taking the larger of the last and the average bytes per character.
  while (measured < target * (1 - SIZE_TOLERANCE)) {
    const missingChars = (target - measured) / perChar;
    const share = first || measured >= 0.8 * target ? 0.5 : 0.8;
    let added = 0;
    while (added < missingChars * share) {
      const text = next(missingChars * share - added, first);
      first = false;
      writer.write(text);
      added += text.length;
    }
    const before = measured;
    trial = writer.trial(tail);
    measured = measure(writer, trial);
    content = { chars: content.chars + added, bytes: content.bytes + measured - before };
    perChar = Math.max(0.01, (measured - before) / added, content.bytes / content.chars);
  }
  return trial;
}

/** A number in [0, 1) from a time, for choices that need no stream of their own. */
const unitFrom = (ms: number) => mix32(ms | 0) / 2 ** 32 + 0.5;

/**
 * The times of a batch's events: from its first moment to just before it is
 * sent, about `expected` of them evenly at random; more than expected pile up
 * at the end, as a burst does.
 */
class BatchClock {
  private atMs: number;
  private readonly endMs: number;
  private readonly meanStepMs: number;
  private readonly window: BrowserWindow;

  constructor(window: BrowserWindow, fromMs: number, sentAtMs: number, expected: number) {
    this.window = window;
    this.atMs = fromMs;
    this.endMs = Math.max(fromMs, sentAtMs - 1);
    this.meanStepMs = (this.endMs - fromMs) / Math.max(2, expected);
  }

  /** The next event's time: always later than the last (events at one moment replay in no set order), until the end. */
  next(): number {
    this.atMs = Math.min(this.endMs, this.atMs + Math.max(1, Math.floor(this.window.pause(this.meanStepMs))));
    return this.atMs;
  }
}

/**
 * Activity events between the batch's first and last moments, until a trial
 * of the encoded batch measures `target`: events spaced as a user's, more
 * and larger ones when the batch must be large.
 */
function encodeActivity(window: BrowserWindow, snapshot: PlannedSnapshot, writer: DeflateWriter, target: number,
  measure: (writer: DeflateWriter, trial: DeflateTrial) => number): { member: Buffer; events: RecordedEvent[] } {
  const events: RecordedEvent[] = [];
  const clock = new BatchClock(window, snapshot.firstEventMs, snapshot.sentAtMs, target / EVENT_BYTES);
  writer.write('[');
  const trial = fillToSize(writer, target, ']', measure, (missing, first) => {
    const atMs = clock.next();
    const event = events.length >= MAX_BATCH_EVENTS ? window.mutation(atMs, missing) : window.activity(atMs, Math.min(missing, MAX_EVENT_CHARS));
    events.push(event);
    return (first ? '' : ',') + JSON.stringify(event);
  });
  return { member: writer.finish(trial), events };
}

/**
 * `--payload rrweb` for one snapshot: the gzip member of what the legacy
 * capture wrote (Python's json.dumps of the events, UTF-16 with BOM, gzip),
 * its base64 within 5% of `snapshot.size` (or the smallest batch of its
 * kind), and the batch's events.
 */
function legacyRrwebData(window: BrowserWindow, snapshot: PlannedSnapshot): { member: Buffer; events: RecordedEvent[] } {
  const targetBytes = Math.floor((snapshot.size * 3) / 4);
  const newWriter = () => new DeflateWriter(LEGACY_TEXT, gzip.header(snapshot.receivedAtUs / 1000, PYTHON_GZIP));
  const memberBytes = (writer: DeflateWriter, trial: DeflateTrial) => writer.memberBytes(trial);
  return snapshot.kind === 'full'
    ? encodePageLoad(window, snapshot, newWriter, targetBytes, memberBytes)
    : encodeActivity(window, snapshot, newWriter(), targetBytes, memberBytes);
}

/**
 * A snapshot's events as posthog-js sends them, JSON of about `snapshot.size`
 * characters in all: a page load's FullSnapshot data compressed (`cv`) and
 * sized by trial, or activity events until the size is reached; events too
 * large for one message (`maxEventChars`) are not made, their content goes
 * into the events after.
 */
function sentEvents(window: BrowserWindow, snapshot: PlannedSnapshot, compress: boolean, maxEventChars: number): object[] {
  const sent: object[] = [];
  let chars = 1; // the list's brackets, less the first comma
  const add = (event: object) => {
    sent.push(event);
    chars += JSON.stringify(event).length + 1;
  };
  let fromMs = snapshot.firstEventMs;
  if (snapshot.kind === 'full') {
    const page = encodeSentPageLoad(window, snapshot, compress, Math.min(snapshot.size, maxEventChars));
    for (const event of page) add(event);
    fromMs = (page.at(-1) as RecordedEvent).timestamp;
  }
  const clock = new BatchClock(window, fromMs, snapshot.sentAtMs, snapshot.size / EVENT_CHARS);
  while (chars < snapshot.size * (1 - SIZE_TOLERANCE) || sent.length === 0) {
    const atMs = clock.next();
    const room = Math.min(maxEventChars / 2, snapshot.size - chars);
    const event = sent.length >= MAX_BATCH_EVENTS ? window.mutation(atMs, room) : window.activity(atMs, room);
    add(sentEvent(event, compress));
  }
  return sent;
}

/**
 * A page load's events as posthog-js sends them: Meta, the FullSnapshot
 * (its data compressed, `cv`, sized by trial so the events come to about
 * `target` characters), and what follows it.
 */
function encodeSentPageLoad(window: BrowserWindow, snapshot: PlannedSnapshot, compress: boolean, target: number): object[] {
  if (!compress) {
    const bare = target < 4 * FURNISHED_PAGE_BYTES;
    let stylesheets = 0;
    for (let spent = 0; !bare && stylesheets < window.site.stylesheets.length; stylesheets++) {
      spent += window.site.stylesheets[stylesheets]!.chars;
      if (spent > 0.6 * target) break;
    }
    const page = window.load(snapshot.firstEventMs, stylesheets, bare, bare ? 0 : Math.min(114, Math.floor((0.2 * target) / REQUEST_CHARS)));
    page.head = page.head.replace(STYLESHEET_MARK_PATTERN, (_, index: string) => page.stylesheets[Number(index)]!.json);
    const blocks: string[] = [];
    let chars = page.head.length + page.tail.length;
    const others = JSON.stringify([page.meta, ...page.after]).length;
    while (chars + others < target * (1 - SIZE_TOLERANCE)) {
      const block = window.addContent(target - chars - others);
      blocks.push(block);
      chars += block.length + 1;
    }
    const data = JSON.parse(`${page.head}${blocks.join(',')}${page.tail}`);
    return [page.meta, { type: EventType.FullSnapshot, data, timestamp: page.timestamp }, ...page.after];
  }
  // The compressed data travels as an escaped latin1 string: size it by its escaped length.
  const escaped = (writer: DeflateWriter, trial: DeflateTrial) => writer.escapedLength(trial);
  const stylesheetsFor = (budget: number) => {
    let count = 0;
    for (let spent = 0; count < window.site.stylesheets.length; count++) {
      spent += escapedLength(deflatedStylesheet(window.site.stylesheets[count]!, 'utf8').deflated);
      if (spent > 0.6 * budget) break;
    }
    return count;
  };
  for (const bare of target < 4 * FURNISHED_PAGE_BYTES ? [true] : [false, true]) {
    const writer = new DeflateWriter(SENT_TEXT, gzip.header(snapshot.firstEventMs, FFLATE_GZIP));
    const page = window.load(snapshot.firstEventMs, bare ? 0 : stylesheetsFor(target), bare, bare ? 0 : Math.min(114, Math.floor((0.2 * target) / REQUEST_CHARS)));
    const others = JSON.stringify([page.meta, ...page.after]).length + '{"type":2,"data":"","timestamp":0000000000000,"cv":"2024-10"}'.length;
    writer.write(page.head, page.stylesheets);
    if (!bare && others + escaped(writer, writer.trial(page.tail)) > target) continue;
    const trial = fillToSize(writer, Math.max(0, target - others), page.tail, escaped, (missing, first) => (first ? '' : ',') + window.addContent(missing));
    const data = writer.finish(trial).toString('latin1');
    return [page.meta, { type: EventType.FullSnapshot, data, timestamp: page.timestamp, cv: COMPRESSED_EVENT_VERSION }, ...page.after];
  }
  throw new Error('internal error: a bare page is always made');
}

// ===========================================================================
// 6. Messages: each format's envelope around the snapshot data, the Kafka
// key and headers, chunks of `$snapshot` data, batches of `$snapshot_items`
// events, vegeta targets; and the room librdkafka and kcat leave for them,
// which fits the chunk size to --max-message-bytes.
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


/** `null` or the value as JSON. */
const pythonOrNull = (value: string | null): string => (value === null ? 'null' : pythonString(value));
const jsonOrNull = (value: string | number | null): string => (value === null ? 'null' : JSON.stringify(value));

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
function maxValueBytes(config: Settings, headers: readonly Header[]): number {
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
 * Fits the chunk size (and so every message) to --max-message-bytes, naming
 * the flag at fault when they cannot fit: --chunk-size if it was given, the
 * token if it is what takes the room, else --max-message-bytes itself.
 */
function fitMessageLimit(config: Settings, chunkSize: number | undefined): number {
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

/**
 * The widest envelope, key and headers any message of the run can have
 * around its data, with librdkafka's overhead and kcat's margin: what
 * --max-message-bytes must leave room for.
 */
function maxEnvelopeBytes(config: Settings): number {
  const identity: Identity = { sessionId: UUID_SHAPE, distinctId: UUID_SHAPE, ip: '255.255.255.255', site: 0 };
  const frame = new MessageFrame(config, identity, `https://${'w'.repeat(MAX_SITE_URL_LENGTH - 8)}`);
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
interface ChunkFields {
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
class MessageFrame {
  private readonly config: Settings;
  private readonly identity: Identity;
  /** The session's own fields, escaped once for every message. */
  private readonly pythonIdentity: string;
  private readonly pythonProperties: string;
  private readonly pythonToken: string;
  private readonly teamId: string;
  private readonly itemsIdentity: string;
  private readonly itemsDistinctId: string;
  private readonly jsonToken: string;

  constructor(config: Settings, identity: Identity, siteUrl: string) {
    this.config = config;
    this.identity = identity;
    const { distinctId, ip, sessionId } = identity;
    this.pythonIdentity = `"distinct_id": ${pythonString(distinctId)}, "ip": ${pythonString(ip)}, "site_url": ${pythonString(siteUrl)}`;
    this.pythonProperties = escapeInData(`"distinct_id": ${pythonString(distinctId)}, "$session_id": ${pythonString(sessionId)}`);
    this.pythonToken = pythonOrNull(config.token);
    this.teamId = jsonOrNull(config.teamId);
    this.itemsIdentity = `"distinct_id":${JSON.stringify(distinctId)},"ip":${JSON.stringify(ip)}`;
    this.itemsDistinctId = escapeInData(JSON.stringify(distinctId));
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
 * numbers, then those of a non-empty `payload` object; sorted by timestamp,
 * stably.
 *
 * @example
 * eventsSummary([{ type: 3, timestamp: 5, data: { source: 1, positions: [] } }]);
 * // '[{"timestamp": 5, "type": 3, "data": {"source": 1}}]'
 */
function eventsSummary(events: readonly RecordedEvent[]): string {
  const fields = (data: Record<string, unknown>, keep: Set<string>) =>
    Object.entries(data).filter(([key, value]) => keep.has(key) && summarizable(value))
      .map(([key, value]) => `${pythonString(key)}: ${typeof value === 'string' ? pythonString(value) : value}`);
  const items = [...events].sort((a, b) => a.timestamp - b.timestamp).map(({ timestamp, type, data }) => {
    const kept = fields(data as Record<string, unknown>, SUMMARY_FIELDS);
    const { payload } = data as { payload?: unknown };
    // Python's `if payload:` skips an empty dict, such as the `{}` of `window hidden`.
    if (payload && typeof payload === 'object' && !Array.isArray(payload) && Object.keys(payload).length > 0) {
      kept.push(`"payload": {${fields(payload as Record<string, unknown>, SUMMARY_PAYLOAD_FIELDS).join(', ')}}`);
    }
    return `{"timestamp": ${timestamp}, "type": ${type}, "data": {${kept.join(', ')}}}`;
  });
  return `[${items.join(', ')}]`;
}

/** JSON with every object's keys sorted, as capture-rs re-serializes rrweb events (serde_json without preserve_order). */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const entries = Object.entries(value).filter(([, item]) => item !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${sortedJson(item)}`).join(',')}}`;
}

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
  private readonly frame: MessageFrame;
  /** posthog-js's ids: session, windows and events, one UUIDv7 clock. */
  private readonly clientIds: UuidV7;
  /** capture's ids and the stochastic rounding of random payload sizes. */
  private readonly captureRng: RandomGenerator;
  private readonly payloadRng: RandomGenerator;
  /** `--payload random`'s letters: one stream a session, each snapshot its next stretch. */
  private readonly payloadLetters: RandomLetters | undefined;
  private readonly site: Site | undefined;
  private readonly contentRng: RandomGenerator;
  private readonly windows: BrowserWindow[] = [];
  private readonly windowIds: string[] = [];
  private upcoming: PlannedSnapshot | undefined;
  /** Snapshots so far. */
  snapshots = 0;

  constructor(config: Config, index: number, arrivalMs: number) {
    this.config = config;
    this.index = index;
    const random = new SessionRandom(config.seed, index);
    this.plan = new SessionPlan(config, random, arrivalMs);
    this.clientIds = new UuidV7(random.stream('ids'));
    this.identity = sampleIdentity(random, arrivalMs, this.clientIds);
    this.captureRng = random.stream('capture');
    this.payloadRng = random.stream('payload');
    this.contentRng = random.stream('content');
    const opaque = config.format === 'snapshot' && config.payload === 'random';
    this.payloadLetters = opaque ? new RandomLetters(random.state('payload')) : undefined;
    this.site = opaque ? undefined : siteOf(config.seed, this.identity.site);
    // Random payloads need no site; the legacy envelope still names one, the same for the same index.
    this.frame = new MessageFrame(config, this.identity, this.site?.origin ?? `https://site-${this.identity.site}.example.com`);
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
    if (snapshot.window === this.windowIds.length) {
      this.windowIds.push(this.clientIds.at(snapshot.firstEventMs));
      if (this.site) this.windows.push(new BrowserWindow(this.site, this.contentRng));
    }
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
    if (this.site) {
      const { member, events } = legacyRrwebData(this.windows[snapshot.window]!, snapshot);
      data = base64Of(member);
      eventsSummaryText = eventsSummary(events);
    } else {
      data = randomSnapshotData(this.payloadLetters!, this.payloadRng, snapshot.size);
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
    // An event is escaped once more in `data`, which can make its text up to about twice as long.
    const events = sentEvents(this.windows[snapshot.window]!, snapshot, this.config.compressEvents, room / 2);
    const texts = events.map((event) => escapeInData(sortedJson(event)));
    const size = events.reduce((sum: number, event) => sum + JSON.stringify(event).length + 1, 1);
    const batches: string[][] = [[]];
    let batchBytes = 0;
    for (const text of texts) {
      // Compressed fields are latin1 characters, two bytes each in UTF-8 above 0x7f.
      const bytes = Buffer.byteLength(text);
      if (batches.at(-1)!.length > 0 && batchBytes + 1 + bytes > room) {
        batches.push([]);
        batchBytes = -1;
      }
      batches.at(-1)!.push(text);
      batchBytes += 1 + bytes;
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
    const events = sentEvents(this.windows[snapshot.window]!, snapshot, config.compressEvents, Infinity);
    const snapshotData = JSON.stringify(events);
    const properties =
      `{"$snapshot_bytes":${snapshotData.length},"$snapshot_data":${snapshotData},"$session_id":${JSON.stringify(identity.sessionId)},` +
      `"$window_id":${JSON.stringify(windowId)},"$lib":"web","$lib_version":"${POSTHOG_JS_VERSION}","token":${jsonOrNull(config.token)},` +
      `"distinct_id":${JSON.stringify(identity.distinctId)}}`;
    const uuid = this.clientIds.at(snapshot.sentAtMs);
    const offset = Math.floor(uniform(this.payloadRng) * MAX_SEND_OFFSET_MS);
    const body = base64Of(gzipSync(`[{"uuid":"${uuid}","event":"$snapshot","properties":${properties},"offset":${offset}}]`, BODY_GZIP));
    const url = `${config.captureUrl}${config.captureUrl.includes('?') ? '&' : '?'}_=${snapshot.sentAtMs}&ver=${POSTHOG_JS_VERSION}`;
    const message: Message = {
      headers: () => [], head: `{"method":"POST","url":${JSON.stringify(url)},"body":"`, data: body.text, dataLength: body.length,
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

/**
 * How many sessions are in flight: now, at most, and the time-weighted mean
 * from the first arrival to the latest, in the run's own time (the drain
 * after the last arrival would only pull it down).
 */
export class InFlight {
  now = 0;
  max = 0;
  private area = 0;
  private firstUs: number | undefined;
  private lastUs = 0;
  private arrivals = { area: 0, spanUs: 0 };

  arrive(atUs: number): void {
    this.advance(atUs);
    this.arrivals = { area: this.area, spanUs: atUs - this.firstUs! };
    this.max = Math.max(this.max, ++this.now);
  }

  leave(atUs: number): void {
    this.advance(atUs);
    this.now--;
  }

  get mean(): number {
    return this.arrivals.spanUs === 0 ? this.now : this.arrivals.area / this.arrivals.spanUs;
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
const MAX_CATCH_UP_MS = 100; // --help says 0.1 s

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
class LineWriter {
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
function makeStdioBlocking(): void {
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
class SizeHistogram {
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
class RunStats {
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
// 8. main: parseFlags (the command line checked against every section's
// limits), then write every snapshot's lines in schedule order, stop on a
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
 * Parses the command line into a Config, or returns 'help' or the shard
 * files to merge: the flags as section 1 reads them, then checked against
 * the caps on draws (section 2) and the room a message leaves (section 6).
 *
 * @example
 * parseFlags(['--count', '10', '--start', '2024-01-01']).count; // 10
 * parseFlags(['--count', '-1']); // throws UsageError
 */
export function parseFlags(argv: readonly string[], nowMs = Date.now()): Config | MergeRequest | 'help' {
  const commandLine = parseCommandLine(argv, nowMs);
  if (commandLine === 'help' || 'merge' in commandLine) return commandLine;
  const { settings, chunkSize } = commandLine;
  refuseFrequentCaps(settings);
  return { ...settings, chunkSize: settings.format === 'vegeta' ? 0 : fitMessageLimit(settings, chunkSize) };
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
function isoString(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  if (day !== isoDay.day) isoDay = { day, prefix: new Date(day * DAY_MS).toISOString().slice(0, 11) };
  const time = ms - day * DAY_MS;
  const millis = time % 1000;
  return (
    `${isoDay.prefix}${twoDigits(Math.floor(time / 3_600_000))}:${twoDigits(Math.floor(time / 60_000) % 60)}:` +
    `${twoDigits(Math.floor(time / 1000) % 60)}.${millis < 100 ? (millis < 10 ? '00' : '0') : ''}${millis}Z`
  );
}

/** JSON text as it reads inside another JSON string (the envelopes' `data`), escaped once more. */
function escapeInData(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

/**
 * A string as Python's json.dumps writes it (ensure_ascii): JSON.stringify's
 * escapes, and every character outside printable ASCII as a lower-case \uXXXX.
 */
function pythonString(text: string): string {
  return JSON.stringify(text).replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const executedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (executedDirectly) process.exitCode = await main(process.argv.slice(2));
