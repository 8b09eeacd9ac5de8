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
 * This script prints those messages, one per line on stdout, for
 * kafka-console-producer, kcat or vegeta, or produces them to Kafka itself,
 * with every header capture sets:
 *
 *   npx tsx ./generate.ts --count 100 --format snapshot-items --token phc_x --kafka localhost:9092
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
 *   3. Recording     the site, each window's page, the person, what rrweb records
 *   4. Compression   gzip framing and deflate blocks
 *   5. Payloads      the snapshot data each format carries
 *   6. Messages      envelopes, headers, chunks, items batches, vegeta targets
 *   7. Output        interleaving, --jobs workers, writing, pacing, Kafka, stats
 *   8. main          parseFlags, then the run from start to exit status
 *   Appendix         small pure helpers
 */

import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, readSync, realpathSync, renameSync, rmSync, statSync, write as writeToFd, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { constants as zlibConstants, crc32, deflateRawSync, type ZlibOptions } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
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

/** The flags every Kafka format takes: its message limit, and how its messages reach Kafka. */
const KAFKA_FLAGS = ['max-message-bytes', 'kafka', 'topic', 'kafka-option', 'key', 'headers'] as const;

/**
 * The output formats, one entry each: what a line is, the Kafka topic
 * PostHog's capture writes it to (--topic's default; null for what is not a
 * Kafka message), the flags that mean something for it alone, and what
 * befalls its messages without --token. A new format is an entry here and
 * its messages in section 6 (FORMAT_MESSAGES).
 */
export const OUTPUT_FORMATS = {
  snapshot: {
    help: "$snapshot messages of the session_recording_events topic, data chunked, as PostHog's Python capture wrote them",
    topic: 'session_recording_events',
    flags: ['payload', 'team-id', 'chunk-size', ...KAFKA_FLAGS],
    withoutToken: "PostHog's legacy consumer drops messages with neither team_id nor token",
  },
  'snapshot-items': {
    help: '$snapshot_items messages of session_recording_snapshot_item_events, rrweb events as JSON, as capture-rs writes them',
    topic: 'session_recording_snapshot_item_events',
    flags: ['no-compress-events', ...KAFKA_FLAGS],
    withoutToken: "PostHog's recording consumers drop messages without a token header",
  },
  vegeta: {
    help: 'one target per snapshot for vegeta attack -lazy -format=json, posting it to --capture-url as posthog-js does',
    topic: null,
    flags: ['no-compress-events', 'capture-url'],
    withoutToken: 'capture rejects recordings without a token',
  },
} as const;

/** What each line is: one of OUTPUT_FORMATS. */
export type Format = keyof typeof OUTPUT_FORMATS;
/** What `--format snapshot` carries as snapshot data: opaque random text or real rrweb events. */
export type Payload = 'random' | 'rrweb';

const COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
const SECURITY_PROTOCOLS = ['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'] as const;
const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

/** How --kafka produces: the settings --kafka-option gives, by what they mean. */
export interface ProducerSettings {
  /** Replicas that must have a batch before the broker acknowledges it: 0, 1 or -1 (all in sync). */
  acks: 0 | 1 | -1;
  compression: (typeof COMPRESSIONS)[number];
  /** How long a message may wait for its batch to fill before it goes anyway. */
  lingerMs: number;
  /** Bytes of one partition's record batch at most, as the broker counts them; undefined: --max-message-bytes. */
  batchBytes: number | undefined;
  /** Bytes made but not yet acknowledged, at most: the bound on memory, where backpressure starts. */
  bufferBytes: number;
  clientId: string;
  requestTimeoutMs: number;
  retries: number;
  retryBackoffMs: number;
  /** Whether to ask the broker to create a missing topic; off, so a misspelt topic fails rather than fills a new one. */
  autoCreateTopics: boolean;
  securityProtocol: (typeof SECURITY_PROTOCOLS)[number];
  saslMechanism: (typeof SASL_MECHANISMS)[number];
  saslUsername: string | undefined;
  saslPassword: string | undefined;
  caFile: string | undefined;
  certificateFile: string | undefined;
  keyFile: string | undefined;
  verifyCertificates: boolean;
}

/** Where --kafka delivers: the cluster, the topic, and how. */
export interface KafkaConfig {
  brokers: string[];
  topic: string;
  producer: ProducerSettings;
}

const PRODUCER_DEFAULTS: ProducerSettings = {
  acks: -1, // librdkafka's and Java's default: a message counts once every in-sync replica has it
  compression: 'none', // capture-rs's default
  lingerMs: 5, // librdkafka's default
  batchBytes: undefined,
  bufferBytes: 32 * 2 ** 20, // Java's buffer.memory
  clientId: 'generate.ts',
  requestTimeoutMs: 30_000, // librdkafka's and Java's request.timeout.ms
  retries: 5,
  retryBackoffMs: 1000, // with 5 retries, rides out a broker's restart or a leader election of about 5 s
  autoCreateTopics: false,
  securityProtocol: 'plaintext',
  saslMechanism: 'PLAIN',
  saslUsername: undefined,
  saslPassword: undefined,
  caFile: undefined,
  certificateFile: undefined,
  keyFile: undefined,
  verifyCertificates: true,
};

/** Reads a --kafka-option value into the settings it sets, or undefined if the option does not accept it. */
type ReadSetting = (text: string) => Partial<ProducerSettings> | undefined;
const wholeSetting = (min: number, set: (value: number) => Partial<ProducerSettings>): ReadSetting => (text) =>
  /^\d+$/.test(text) && Number.isSafeInteger(Number(text)) && Number(text) >= min ? set(Number(text)) : undefined;
const wordSetting = <T extends string>(words: readonly T[], set: (value: T) => Partial<ProducerSettings>): ReadSetting => (text) => {
  const word = words.find((choice) => choice.toLowerCase() === text.toLowerCase());
  return word === undefined ? undefined : set(word);
};
const textSetting = (set: (value: string) => Partial<ProducerSettings>): ReadSetting => (text) => (text === '' ? undefined : set(text));
const BOOLEAN_WORDS = ['true', 'false'] as const;
const compressionSetting = { accepts: COMPRESSIONS.join(', '), read: wordSetting(COMPRESSIONS, (compression) => ({ compression })) };
const mechanismSetting = { accepts: SASL_MECHANISMS.join(', '), read: wordSetting(SASL_MECHANISMS, (saslMechanism) => ({ saslMechanism })) };

/** --kafka-option names, as librdkafka (kcat) and the Java client spell them, with what each accepts. */
const KAFKA_OPTIONS: Record<string, { accepts: string; read: ReadSetting }> = {
  acks: { accepts: '0, 1 or all', read: wordSetting(['0', '1', 'all', '-1'], (word) => ({ acks: word === '0' ? 0 : word === '1' ? 1 : -1 })) },
  'compression.type': compressionSetting,
  'compression.codec': compressionSetting,
  'linger.ms': { accepts: 'a whole number of milliseconds', read: wholeSetting(0, (lingerMs) => ({ lingerMs })) },
  'batch.size': { accepts: 'a whole number of bytes >= 1', read: wholeSetting(1, (batchBytes) => ({ batchBytes })) },
  'buffer.memory': { accepts: 'a whole number of bytes >= 1', read: wholeSetting(1, (bufferBytes) => ({ bufferBytes })) },
  'client.id': { accepts: 'non-empty text', read: textSetting((clientId) => ({ clientId })) },
  'request.timeout.ms': { accepts: 'a whole number of milliseconds >= 1', read: wholeSetting(1, (requestTimeoutMs) => ({ requestTimeoutMs })) },
  retries: { accepts: 'a whole number', read: wholeSetting(0, (retries) => ({ retries })) },
  'retry.backoff.ms': { accepts: 'a whole number of milliseconds', read: wholeSetting(0, (retryBackoffMs) => ({ retryBackoffMs })) },
  'allow.auto.create.topics': { accepts: 'true or false', read: wordSetting(BOOLEAN_WORDS, (word) => ({ autoCreateTopics: word === 'true' })) },
  'security.protocol': { accepts: SECURITY_PROTOCOLS.join(', '), read: wordSetting(SECURITY_PROTOCOLS, (securityProtocol) => ({ securityProtocol })) },
  'sasl.mechanism': mechanismSetting,
  'sasl.mechanisms': mechanismSetting,
  'sasl.username': { accepts: 'non-empty text', read: textSetting((saslUsername) => ({ saslUsername })) },
  'sasl.password': { accepts: 'non-empty text', read: textSetting((saslPassword) => ({ saslPassword })) },
  'ssl.ca.location': { accepts: 'a PEM file', read: textSetting((caFile) => ({ caFile })) },
  'ssl.certificate.location': { accepts: 'a PEM file', read: textSetting((certificateFile) => ({ certificateFile })) },
  'ssl.key.location': { accepts: 'a PEM file', read: textSetting((keyFile) => ({ keyFile })) },
  'enable.ssl.certificate.verification': { accepts: 'true or false', read: wordSetting(BOOLEAN_WORDS, (word) => ({ verifyCertificates: word === 'true' })) },
};

/** Capture refuses a recording request over 25 MB (capture-rs's body limit): an rrweb snapshot is at most this many characters. */
const MAX_RRWEB_SNAPSHOT_CHARS = 25_000_000;
/** Sessions have at most this many windows: tabs of one visit. */
const MAX_WINDOWS = 1000;
/**
 * --jobs at most: each worker holds its own heap and up to 16 MiB of lines
 * (64 held 2.1 GB at snapshot-items `--count 20`; 1,000 ran the machine out
 * of memory), and the main thread writes every worker's lines, about 1.6
 * GB/s at best against 10-42 MB/s a worker makes, so more never go faster.
 */
const MAX_JOBS = 64;
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

/** A whole number of at least `min` (and at most `max`, if given), exactly representable. */
function wholeNumberFrom(min: number, max?: number): Parse<number> {
  const what = max === undefined ? `a whole number >= ${min}` : `a whole number from ${min} to ${max}`;
  const parse = numberFrom(min, false, what);
  return (text, flag) => {
    const value = parse(text, flag);
    if (!Number.isSafeInteger(value) || (max !== undefined && value > max)) throw new UsageError(`--${flag} accepts ${what}, got '${text}'`);
    return value;
  };
}

const anyWholeNumber: Parse<number> = (text, flag) => {
  const value = Number(text);
  if (!/^[+-]?\d+$/.test(text) || !Number.isSafeInteger(value)) throw new UsageError(`--${flag} accepts a whole number, got '${text}'`);
  return value;
};

/** Times are kept in microseconds, exact in a double below 2^53 µs (mid-2255): everything a run writes comes before this. */
const LAST_TIME_MS = Date.UTC(2250, 0, 1);
/** Sessions start before this, and so have 50 years to end before LAST_TIME_MS. */
const LAST_START_MS = Date.UTC(2200, 0, 1);

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
/** What each of DURATION's groups counts, largest unit first. */
const DURATION_UNITS_MS = [86_400_000, 3_600_000, 60_000, 1000, 1];
/** 1d, 1h30m, 90s, 250ms: each unit at most once, largest first, so 30m1h and 1s1s are refused. */
const DURATION = /^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/;
/** A duration such as 90s, 10m or 1h30m, or a plain number of seconds (0.5, .5). */
const duration: Parse<number> = (text, flag) => {
  const parts = DURATION.exec(text);
  const ms = NUMBER.test(text) ? Number(text) * 1000 : parts ? DURATION_UNITS_MS.reduce((sum, unitMs, at) => sum + Number(parts[at + 1] ?? 0) * unitMs, 0) : NaN;
  if (!(ms > 0) || !Number.isFinite(ms)) {
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

/** Characters no header or JSON field should carry: controls (NEL and DEL among them), format characters, line and paragraph separators. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
/** Text that can stand in a Kafka header and a JSON string: printable, without space at either end. */
const headerText: Parse<string> = (text, flag) => {
  if (text.trim() !== text || text === '' || UNPRINTABLE.test(text)) {
    throw new UsageError(`--${flag} accepts printable text without spaces at either end, got ${JSON.stringify(text)}`);
  }
  return text;
};

/** A file name to write. */
const fileName: Parse<string> = (text, flag) => {
  if (text === '' || text.endsWith('/')) throw new UsageError(`--${flag} accepts a file name, got ${JSON.stringify(text)}`);
  return text;
};

/** host[:port],...: Kafka's bootstrap brokers; a host is a name, an IPv4 address or a bracketed IPv6 one; the port defaults to 9092. */
const brokerList: Parse<string[]> = (text, flag) => {
  const brokers = text.split(',');
  const valid = (broker: string) => {
    const match = /^(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?$/i.exec(broker);
    return match !== null && (match[1] === undefined || (Number(match[1]) >= 1 && Number(match[1]) <= 65535));
  };
  if (!brokers.every(valid)) throw new UsageError(`--${flag} accepts host:port[,host:port...] such as localhost:9092, got '${text}'`);
  return brokers;
};

/** A Kafka topic name: 1 to 249 letters, digits, '.', '_' and '-', as Kafka allows. */
const topicName: Parse<string> = (text, flag) => {
  if (!/^[a-z0-9._-]{1,249}$/i.test(text) || text === '.' || text === '..') {
    throw new UsageError(`--${flag} accepts a Kafka topic name (up to 249 letters, digits, '.', '_' and '-'), got '${text}'`);
  }
  return text;
};

/** NAME=VALUE with NAME a KAFKA_OPTIONS entry: the producer settings it sets. */
const kafkaOption: Parse<Partial<ProducerSettings>> = (text, flag) => {
  const equals = text.indexOf('=');
  const [name, value] = equals < 0 ? [text, undefined] : [text.slice(0, equals), text.slice(equals + 1)];
  const option = KAFKA_OPTIONS[name];
  if (!option || value === undefined) {
    throw new UsageError(`--${flag} accepts NAME=VALUE with NAME one of ${Object.keys(KAFKA_OPTIONS).join(', ')}, got '${text}'`);
  }
  const settings = option.read(value);
  if (!settings) throw new UsageError(`--${flag} ${name} accepts ${option.accepts}, got '${value}'`);
  return settings;
};

/** A flag that takes a value and has a default: its value is always there. */
interface Setting<T> {
  parse: Parse<T>;
  default: string;
  valueName: string;
  help: string;
}
/** A flag that takes a value and may be absent. */
interface Option<T> {
  parse: Parse<T>;
  valueName: string;
  help: string;
}
/** A flag that may be given again and again, each value parsed on its own. */
interface Repeated<T> {
  parse: Parse<T>;
  valueName: string;
  help: string;
  repeated: true;
}
/** A switch: present or not. */
interface Toggle {
  help: string;
}
type FlagSpec = Setting<unknown> | Option<unknown> | Repeated<unknown> | Toggle;

const setting = <T>(parse: Parse<T>, defaultText: string, valueName: string, help: string): Setting<T> => ({ parse, default: defaultText, valueName, help });
const option = <T>(parse: Parse<T>, valueName: string, help: string): Option<T> => ({ parse, valueName, help });
const repeated = <T>(parse: Parse<T>, valueName: string, help: string): Repeated<T> => ({ parse, valueName, help, repeated: true });
const toggle = (help: string): Toggle => ({ help });

/**
 * Every flag, in the order `--help` lists them: the one table behind parsing,
 * the values' types and `--help`. The original script's flags keep its names
 * and defaults.
 */
export const FLAGS = {
  count: option(wholeNumberFrom(0), 'N', 'number of sessions to generate (default 100; unlimited with --duration)'),
  duration: option(duration, 'TIME', 'stop after this much wall-clock time (90s, 10m, 1h30m), after a whole line'),
  output: option(fileName, 'FILE', 'write to FILE instead of stdout, atomically: to a temporary file beside it, renamed to FILE once the run is whole (to the file a symbolic link FILE leads to; a device, named pipe or /dev/stdout is written in place)'),
  format: setting(oneOf(...(Object.keys(OUTPUT_FORMATS) as Format[])), 'snapshot', 'FORMAT',
    Object.entries(OUTPUT_FORMATS).map(([name, { help }]) => `${name}: ${help}`).join('; ')),
  payload: option(oneOf<Payload>('random', 'rrweb'), 'PAYLOAD',
    'the snapshot data: random (opaque base64 of a gzip member, exactly the sampled size) or rrweb (base64 of gzip of ' +
      'UTF-16 JSON of rrweb events, within 5% of the sampled size) (default random)'),
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
  'team-id': option(anyWholeNumber, 'N', 'team_id of every message (default: null)'),
  'chunk-size': option(wholeNumberFrom(1), 'CHARS',
    'split snapshot data into chunks of at most this many characters, one message each (default 900000, or less if the message limit needs it)'),
  'max-message-bytes': setting(wholeNumberFrom(1), '1000000', 'BYTES',
    'the most a message may take as librdkafka (kcat) checks it and a broker counts it: value, key, headers and the record ' +
      "batch's overhead; librdkafka's default message.max.bytes"),
  kafka: option(brokerList, 'BROKERS',
    'produce every message to this Kafka cluster (host:port,...) instead of writing stdout: keyed by $session_id, with every header ' +
      'capture-rs sets, each acknowledged by the broker or the run ends with status 1 saying how many were not (needs the package ' +
      '@platformatic/kafka and node 22 or later)'),
  topic: option(topicName, 'TOPIC',
    'the topic --kafka produces to (default: session_recording_events for --format snapshot, session_recording_snapshot_item_events ' +
      'for snapshot-items); it must exist'),
  'kafka-option': repeated(kafkaOption, 'NAME=VALUE',
    `a producer setting for --kafka, named as librdkafka names it; give it again for each: ${Object.keys(KAFKA_OPTIONS).join(', ')}`),
  key: toggle("prefix each line with its Kafka key, the $session_id, and a tab (kcat -K '\\t', kafka-console-producer --property parse.key=true)"),
  headers: toggle('prefix each line with the Kafka headers capture sets, name:value,... and a tab (kafka-console-producer --property parse.headers=true)'),
  'no-compress-events': toggle('send events uncompressed, as posthog-js did before its 2024-10 compression (cv) of large events'),
  'capture-url': setting(httpUrl, 'http://127.0.0.1:8000/s/?compression=gzip-js', 'URL',
    "PostHog's capture endpoint for recordings, which vegeta targets post to"),
  rate: setting(numberFrom(0), '0', 'N', 'N messages (or targets) a second, evenly spaced from the first; a generator that falls behind catches up by at most 0.1 s of them; 0 for as fast as possible'),
  realtime: toggle('write each message when its now comes, counted from the run\'s start (with the default --start, now tracks the clock)'),
  speed: option(numberFrom(0, true), 'X', 'with --realtime, move through time X times faster (0.5 for half speed)'),
  shard: setting(shardSpec, '0/1', 'I/N', 'make only the sessions whose index is I modulo N; the N shards together are exactly the run without --shard'),
  jobs: option(wholeNumberFrom(0, MAX_JOBS), 'N', 'make sessions on N threads, merged into the very bytes one makes: 1 is a worker thread, N of 2 or more ' +
    `are N - 1 workers and the main thread; 0 makes them on the main thread alone; at most ${MAX_JOBS} (default: for rrweb recordings one per core, or 1 when stdout ` +
    'is a terminal or with --realtime; 0 for random payloads)'),
  progress: toggle('a live line on stderr: sessions, in flight, messages, MB, MB/s (on when stderr is a terminal)'),
  'no-progress': toggle('no progress line, even on a terminal'),
  stats: toggle('a summary on stderr at the end: what was delivered, speed, sessions in flight, size percentiles per kind and a histogram of sizes'),
  verbose: toggle('describe each session on stderr as it ends'),
  merge: toggle('merge the shard files named after the flags (made with the same flags but --shard) into the unsharded run, ' +
    'in order of now and then $session_id, as the run without --shard writes them; only --output applies with it'),
  version: toggle('print the version and exit'),
  help: toggle('show this help and exit'),
} satisfies Record<string, FlagSpec>;

type FlagName = keyof typeof FLAGS;

// OUTPUT_FORMATS comes before FLAGS, which reads its names; this checks its flags are FLAGS' own.
OUTPUT_FORMATS satisfies Record<Format, { flags: readonly FlagName[] }>;

/** Whether `format` takes the format-specific flag `name`. */
const takesFlag = (format: Format, name: FlagName): boolean => (OUTPUT_FORMATS[format].flags as readonly FlagName[]).includes(name);

/** The formats a flag is for, or undefined for a flag of every format. */
function formatsOf(name: FlagName): Format[] | undefined {
  const formats = (Object.keys(OUTPUT_FORMATS) as Format[]).filter((format) => takesFlag(format, name));
  return formats.length > 0 ? formats : undefined;
}
/** One-letter forms of the flags used most, and each such flag's letter. */
const SHORT_FLAGS: Readonly<Record<string, FlagName>> = { c: 'count', d: 'duration', f: 'format', h: 'help', o: 'output', r: 'rate', s: 'seed-value', V: 'version' };
const LETTER_OF: ReadonlyMap<FlagName, string> = new Map(Object.entries(SHORT_FLAGS).map(([letter, name]) => [name, letter]));
/** This file's version, which --version prints (a copied file has no package.json). */
const VERSION = '0.2.0';
type ValueOf<F> = F extends Repeated<infer T> ? T[] : F extends Setting<infer T> ? T : F extends Option<infer T> ? T | undefined : boolean;
/** `seed-value` as `seedValue`: a flag's name as a field. */
type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
const camelCase = (name: string): string => name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());

/** The command line's values, typed from FLAGS by camelCase name: settings always have one, options may not, switches are booleans. */
export type Flags = { -readonly [K in FlagName as CamelCase<K>]: ValueOf<(typeof FLAGS)[K]> };

/**
 * Everything a run needs: the flags' values, and what is resolved from
 * several of them or from the limits of later sections.
 */
export type Config = Omit<Flags, 'count' | 'payload' | 'start' | 'chunkSize' | 'kafka' | 'topic' | 'kafkaOption' | 'help' | 'version' | 'merge'> & {
  /** Sessions to make: --count, 100 by default, unlimited with --duration alone. */
  count: number;
  /** What snapshot data is: --payload where it applies (random by default); the other formats carry rrweb events. */
  payload: Payload;
  /** Milliseconds since the epoch at which the first session starts: --start, or the time of the run. */
  startMs: number;
  /** Characters of snapshot data per chunk (--format snapshot): --chunk-size or the default, fitted to the message limit. */
  chunkSize: number;
  /** --kafka's cluster, topic and producer settings; null writes lines. */
  kafka: KafkaConfig | null;
};

/** A Config but for the chunk size, which takes the envelopes of section 6 to fit. */
type Settings = Omit<Config, 'chunkSize'>;

/** The quantities drawn from a log-normal, each with a --NAME-mean and a --NAME-standard-deviation. */
type Drawn = 'windowCount' | 'fullSnapshotCount' | 'fullSnapshotSize' | 'incrementalSnapshotCount' | 'incrementalSnapshotSize';

/** A drawn quantity's mean and standard deviation, as its two flags give them. */
function distribution<N extends Drawn>(flags: Pick<Flags, `${N}Mean` | `${N}StandardDeviation`>, name: N): Distribution {
  return { mean: flags[`${name}Mean`], standardDeviation: flags[`${name}StandardDeviation`] };
}

/** With --realtime, how many times faster than `now` moves the lines are written; null writes them as fast as allowed. */
const realtimeSpeed = (config: Pick<Flags, 'realtime' | 'speed'>): number | null => (config.realtime ? (config.speed ?? 1) : null);

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

/** --help's entry for each flag of FLAGS: its one-letter form, value, help, default and the formats it applies to. */
function flagHelp(): string {
  return Object.entries(FLAGS).map(([name, spec]: [string, FlagSpec]) => {
    const short = LETTER_OF.has(name as FlagName) ? `-${LETTER_OF.get(name as FlagName)}, ` : '';
    const valueName = 'valueName' in spec ? ` ${spec.valueName}` : '';
    const fallback = 'default' in spec ? ` (default ${spec.default})` : '';
    const formats = formatsOf(name as FlagName);
    const only = formats ? ` [--format ${formats.join(', ')}]` : '';
    return `  ${short}--${name}${valueName}\n${wrap(spec.help + fallback + only, '        ')}`;
  }).join('\n');
}

/** The `--help` text: what the tool does, every flag with its default, limits and pipelines. */
export function helpText(): string {
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
PostHog's consumers read the project token from a Kafka header, and today's
(session_recording_snapshot_item_events) also session_id and distinct_id,
which must match the body: give --token and produce with --kafka, which sends
every header capture sets, or print them with --headers for Kafka 3.2's
kafka-console-producer. kcat's -H sets one header for the whole run: enough
for the legacy topic only; today's consumer dead-letters what it delivers.
--kafka needs the package @platformatic/kafka and node 22 or later.

Session i comes from random streams derived from (--seed-value, i) alone: the
same flags and --start give the same bytes, memory stays flat, and the N
shards of --shard I/N together are exactly the run without it. --rate,
--progress and --stats never change a byte of stdout.

Limits: snapshots of rrweb events are at most ${MAX_RRWEB_SNAPSHOT_CHARS} characters
(capture's limit on a request); flags that would draw larger ones more than
once in ${Math.round(1 / MAX_CAPPED_SHARE)} snapshots are refused, and the rare larger draw is cut to it.
Sessions have at most ${MAX_WINDOWS} windows, drawn the same way.

Flags:
${flagHelp()}

Examples:
  # today's topic and consumer: every header capture-rs sets, keyed, each message acknowledged
  npx tsx ./generate.ts --count 100 --format snapshot-items --token phc_x --kafka localhost:9092
  # a soak run: 500 sessions in flight, each message when its time comes, for ten minutes
  npx tsx ./generate.ts --duration 10m --realtime --concurrency 500 --format snapshot-items --token phc_x --kafka localhost:9092
  # the same headers through Kafka 3.2's console producer
  npx tsx ./generate.ts --count 100 --format snapshot-items --token phc_x --headers --key | kafka-console-producer.sh \\
      --topic session_recording_snapshot_item_events --bootstrap-server localhost:9092 \\
      --property parse.headers=true --property parse.key=true
  # the legacy topic, whose consumers need only the token header: kcat will do
  npx tsx ./generate.ts --count 100 --key --token phc_x | kcat -P -H token=phc_x -K '\\t' -b localhost:9092 -t session_recording_events
  npx tsx ./generate.ts --count 1000 --format vegeta --token phc_x | vegeta attack -lazy -format=json -rate=200 | vegeta report

Exit status: 0 when done, or when the reader goes away (| head, or an -o
pipe's); 1 when stdout cannot be written (disk full), or when Kafka did not
acknowledge every message (one line says how many and why); 2 on bad input
(one line on stderr, nothing on stdout or to Kafka); 130, 143 or 129 after
SIGINT (Ctrl-C), SIGTERM or SIGHUP, which stop after the line being written
(with --kafka, once what was made is acknowledged). A closed stdout (>&-)
becomes node's read-write /dev/null, as Python's subprocess.DEVNULL gives on
purpose: the run goes on, with a warning.
`;
}

/** A value that starts with a dash: a negative number, such as a seed. */
const NEGATIVE = /^-[\d.]/;

/** The flag an argument names (`--count`, `--count=5`, `-c`), if any, and whether its value is the next argument. */
function flagOf(arg: string): { name: FlagName; valueFollows: boolean } | undefined {
  const long = arg.startsWith('--');
  const name = long ? arg.slice(2).split('=')[0]! : SHORT_FLAGS[arg.slice(1)];
  if (name === undefined || !Object.hasOwn(FLAGS, name)) return undefined;
  return { name: name as FlagName, valueFollows: 'parse' in FLAGS[name as FlagName] && !arg.includes('=') };
}

/** The flag a mistyped one most likely meant: the only one it begins, or one within two edits. */
function nearestFlag(typed: string): FlagName | undefined {
  const names = Object.keys(FLAGS) as FlagName[];
  const extended = names.filter((name) => name.startsWith(typed));
  if (typed.length >= 3 && extended.length === 1) return extended[0];
  let nearest: FlagName | undefined;
  let nearestEdits = 3;
  for (const name of names) {
    const edits = editDistance(typed, name);
    if (edits < nearestEdits) [nearest, nearestEdits] = [name, edits];
  }
  return nearest;
}

/**
 * Refuses an argument that names no flag, with the flag it most likely
 * meant. A negative value after a flag is its value; after `--` only
 * positional arguments follow.
 */
function refuseUnknownFlags(argv: readonly string[]): void {
  for (let at = 0; at < argv.length; at++) {
    const arg = argv[at]!;
    if (arg === '--') return;
    if (!arg.startsWith('-') || arg === '-') continue;
    const flag = flagOf(arg);
    if (flag?.valueFollows && NEGATIVE.test(argv[at + 1] ?? '')) at++;
    if (flag) continue;
    const typed = arg.split('=')[0]!;
    const meant = typed.startsWith('--') ? nearestFlag(typed.slice(2)) : undefined;
    throw new UsageError(`unknown flag '${typed}'${meant ? ` (did you mean --${meant}?)` : ''}: see --help`);
  }
}

/**
 * Joins a flag and a negative value into `--flag=-5`: parseArgs takes a
 * value starting with a dash for a flag of its own.
 */
function attachValues(argv: readonly string[]): string[] {
  const args: string[] = [];
  for (let at = 0; at < argv.length; at++) {
    const arg = argv[at]!;
    const flag = arg.startsWith('-') ? flagOf(arg) : undefined;
    const value = argv[at + 1];
    if (flag?.valueFollows && value !== undefined && NEGATIVE.test(value)) {
      args.push(`--${flag.name}=${value}`);
      at++;
    } else {
      args.push(arg);
    }
  }
  return args;
}

/** Reads the command line into typed values, and which flags were given; each flag at most once. */
function readFlags(argv: readonly string[]): { values: Flags; given: Set<FlagName>; files: string[] } {
  refuseUnknownFlags(argv);
  const options = Object.fromEntries(Object.entries(FLAGS).map(([name, spec]: [string, FlagSpec]) => {
    const short = LETTER_OF.get(name as FlagName);
    return [name, { type: 'parse' in spec ? 'string' : 'boolean', multiple: 'repeated' in spec, ...(short && { short }) } as const];
  }));
  let parsed;
  try {
    parsed = parseArgs({ args: attachValues(argv), options, strict: true, allowPositionals: true, tokens: true });
  } catch (error) {
    // parseArgs names the flag in the first line of its message; its "argument is ambiguous" means a flag came where a value was due.
    const firstLine = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    const message = firstLine.replace(/\.$/, '').replace('argument is ambiguous', 'needs a value, not another flag');
    throw new UsageError(`${message} (see --help)`);
  }
  const given = new Set<FlagName>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    const name = token.name as FlagName;
    if (given.has(name) && !('repeated' in FLAGS[name])) throw new UsageError(`--${name} is given more than once: give each flag once (see --help)`);
    given.add(name);
  }
  const raw = parsed.values as Record<string, string | boolean | (string | boolean)[] | undefined>;
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    const text = raw[name] ?? ('default' in spec ? spec.default : undefined);
    const field = camelCase(name);
    if ('repeated' in spec) values[field] = (Array.isArray(text) ? text : []).map((item) => spec.parse(String(item), name));
    else values[field] = 'parse' in spec ? (typeof text === 'string' ? spec.parse(text, name) : undefined) : text === true;
  }
  return { values: values as Flags, given, files: parsed.positionals };
}

/** `--merge FILE...`: shard files to merge into the unsharded run, written to --output or stdout. */
export interface MergeRequest {
  merge: string[];
  output: string | undefined;
}

/** The command line read and checked flag by flag, and against each other; parseFlags (section 8) checks the rest. */
interface CommandLine {
  settings: Settings;
  /** --chunk-size, if given. */
  chunkSize: number | undefined;
}

/** --kafka's destination and producer settings, checked against the other flags; null without --kafka. */
function kafkaConfig(values: Flags, given: Set<FlagName>): KafkaConfig | null {
  if (values.kafka === undefined) {
    const stray = (['topic', 'kafka-option'] as const).find((name) => given.has(name));
    if (stray) throw new UsageError(`--${stray} applies with --kafka only`);
    return null;
  }
  if (values.output !== undefined) throw new UsageError('--output names a file for lines, which --kafka does not write: it produces each message to Kafka');
  const prefix = (['key', 'headers'] as const).find((name) => values[name]);
  if (prefix) throw new UsageError(`--${prefix} prefixes lines of stdout, which --kafka does not write: each message it produces carries its key and headers`);
  const producer = values.kafkaOption.reduce<ProducerSettings>((settings, option) => ({ ...settings, ...option }), PRODUCER_DEFAULTS);
  if (producer.batchBytes !== undefined && producer.batchBytes > values.maxMessageBytes) {
    throw new UsageError(`--kafka-option batch.size accepts at most --max-message-bytes, ${values.maxMessageBytes} ` +
      `(a broker refuses a larger batch), got ${producer.batchBytes}`);
  }
  const sasl = producer.securityProtocol.startsWith('sasl');
  const credentials = [producer.saslUsername, producer.saslPassword].filter((text) => text !== undefined).length;
  if (sasl && credentials < 2) throw new UsageError(`--kafka-option security.protocol ${producer.securityProtocol} needs sasl.username and sasl.password`);
  if (!sasl && credentials > 0) throw new UsageError('--kafka-option sasl.username and sasl.password apply with security.protocol sasl_plaintext or sasl_ssl');
  const tlsFiles = [producer.caFile, producer.certificateFile, producer.keyFile].some((file) => file !== undefined);
  if (!producer.securityProtocol.endsWith('ssl') && (tlsFiles || !producer.verifyCertificates)) {
    throw new UsageError('--kafka-option ssl.* and enable.ssl.certificate.verification apply with security.protocol ssl or sasl_ssl');
  }
  // --kafka is a flag of the Kafka formats alone, each with its topic.
  return { brokers: values.kafka, topic: values.topic ?? OUTPUT_FORMATS[values.format].topic!, producer };
}

/** What a command line asks for besides a run: --help, --version or --merge. */
export type Request = MergeRequest | 'help' | 'version';

/** Reads the command line into settings, a merge of shard files, or 'help' or 'version'. */
function parseCommandLine(argv: readonly string[], nowMs: number): CommandLine | Request {
  const { values, given, files } = readFlags(argv);
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (values.merge) {
    const other = [...given].find((name) => name !== 'merge' && name !== 'output');
    if (other) throw new UsageError(`--merge takes file names and --output only, not --${other}`);
    if (files.length === 0) throw new UsageError('--merge needs the names of the shard files to merge');
    return { merge: files, output: values.output };
  }
  if (files.length > 0) throw new UsageError(`unexpected argument '${files[0]}': flags take the form --name value (see --help)`);
  const { format } = values;
  for (const name of given) {
    const formats = formatsOf(name);
    if (formats && !formats.includes(format)) {
      throw new UsageError(`--${name} applies to --format ${formats.join(' and ')} only, not --format ${format}`);
    }
  }
  if (values.progress && values.noProgress) throw new UsageError('--progress and --no-progress contradict each other');
  if (values.speed !== undefined && !values.realtime) throw new UsageError('--speed applies with --realtime only: it sets how fast now moves');
  // kafka-console-producer's parse.headers splits headers at commas.
  if (values.headers && values.token?.includes(',')) throw new UsageError(`--token accepts no ',' with --headers (it separates headers), got ${JSON.stringify(values.token)}`);
  // What asks for something other than a run, and what is resolved below, leave the flags here.
  const { help, version, merge, start, chunkSize, topic, kafkaOption, ...flags } = values;
  const settings: Settings = {
    ...flags,
    count: values.count ?? (values.duration === undefined ? 100 : Infinity),
    payload: values.payload ?? (takesFlag(format, 'payload') ? 'random' : 'rrweb'),
    startMs: start ?? nowMs,
    kafka: kafkaConfig(values, given),
  };
  return { settings, chunkSize };
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
/**
 * A whole number as en-US writes it, thousands grouped by commas: what
 * toLocaleString('en-US') returns, without ICU, whose number formatter (made
 * anew at each call) and locale data took 5-6 MiB of resident memory.
 */
const grouped = (whole: number): string => String(whole).replace(/\B(?=(\d{3})+$)/g, ',');
const pick = <T>(rng: RandomGenerator, items: readonly T[]): T => items[Math.floor(unit(rng) * items.length)]!;
/** Picks toward the front of a list, as popular classes, icons and routes are used most (about Zipf). */
const pickPopular = <T>(rng: RandomGenerator, items: readonly T[]): T => items[Math.floor(items.length * unit(rng) ** 2.5)]!;
/** One of `items`, each as likely as its weight (the first if rounding leaves the roll unspent). */
function pickWeighted<T>(rng: RandomGenerator, items: readonly T[], weight: (item: T) => number): T {
  let roll = unit(rng) * items.reduce((sum, item) => sum + weight(item), 0);
  return items.find((item) => (roll -= weight(item)) < 0) ?? items[0]!;
}

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

/** posthog-js flushes its buffer of events at most every 2 s; idle spells stretch the gaps between batches. */
const MIN_FLUSH_GAP_MS = 2000;
const MEAN_EXTRA_GAP_MS = 3000;
/**
 * Snapshots of each kind a session may have: both kinds at the cap, a gap
 * of 6 s each (their mean is 5 s), still end within the 50 years between
 * LAST_START_MS and LAST_TIME_MS.
 */
const MAX_SNAPSHOTS_OF_A_KIND = Math.floor((LAST_TIME_MS - LAST_START_MS) / (2 * 6000));
/** Network latency between the browser sending a batch and capture receiving it, at most. */
const MAX_LATENCY_US = 250_000;

/** The cap on a snapshot's size: what capture accepts for rrweb events; random data streams at any size. */
const snapshotSizeCap = (settings: Settings): number => (settings.payload === 'random' ? Infinity : MAX_RRWEB_SNAPSHOT_CHARS);

/** Refuses flags that would draw windows, snapshot counts or sizes beyond their caps more than once in 1/MAX_CAPPED_SHARE. */
function refuseFrequentCaps(settings: Settings): void {
  refuseRareDrawsBeyond(MAX_WINDOWS, 'window-count', distribution(settings, 'windowCount'), 1);
  refuseRareDrawsBeyond(MAX_SNAPSHOTS_OF_A_KIND, 'full-snapshot-count', distribution(settings, 'fullSnapshotCount'), 1);
  refuseRareDrawsBeyond(MAX_SNAPSHOTS_OF_A_KIND, 'incremental-snapshot-count', distribution(settings, 'incrementalSnapshotCount'), 0);
  const cap = snapshotSizeCap(settings);
  refuseRareDrawsBeyond(cap, 'full-snapshot-size', distribution(settings, 'fullSnapshotSize'), 1);
  refuseRareDrawsBeyond(cap, 'incremental-snapshot-size', distribution(settings, 'incrementalSnapshotSize'), 1);
}

/** The flags that set how many snapshots a session has. */
type SnapshotCounts = Pick<Flags, `${'fullSnapshotCount' | 'incrementalSnapshotCount' | 'windowCount'}${'Mean' | 'StandardDeviation'}`>;

/** Snapshots a session has on average: max(F, W) full ones (every window opens with one) and I incremental ones. */
function meanSnapshots(config: SnapshotCounts): number {
  const [windows, full] = [distribution(config, 'windowCount'), distribution(config, 'fullSnapshotCount')];
  let fullSnapshots = full.mean;
  // E[max(F, W)] = E[F] + sum over k >= 2 of P(W >= k) P(F < k).
  for (let k = 2; k <= MAX_WINDOWS && windows.mean > 1; k++) {
    const windowsAtLeastK = 1 - wholeNumberCdf(windows, 1, k - 1);
    // The approximate CDF reaches 1 (or passes it) long before MAX_WINDOWS: later terms are its rounding noise.
    if (windowsAtLeastK <= 0) break;
    fullSnapshots += windowsAtLeastK * wholeNumberCdf(full, 1, k - 1);
  }
  return fullSnapshots + config.incrementalSnapshotCountMean;
}

/**
 * How long a session is in flight on average, in ms: from its arrival to its
 * last message, one flush gap per snapshot and a latency.
 */
export function meanSessionMs(config: SnapshotCounts): number {
  return meanSnapshots(config) * (MIN_FLUSH_GAP_MS + MEAN_EXTRA_GAP_MS) + MAX_LATENCY_US / 2000;
}

/**
 * Refuses a run whose last session would arrive after LAST_START_MS: so
 * many sessions, or so few in flight (--concurrency), that arrivals would
 * spread past 2200. The last arrival is a sum of --count exponential gaps:
 * its mean and five standard deviations must fit.
 */
function refuseLateArrivals(settings: Settings): void {
  if (!Number.isFinite(settings.count)) return;
  const gaps = settings.count + 5 * Math.sqrt(settings.count);
  const leastConcurrency = (meanSessionMs(settings) * gaps) / (LAST_START_MS - settings.startMs);
  if (settings.concurrency < leastConcurrency) {
    throw new UsageError(`--concurrency accepts at least ${leastConcurrency.toPrecision(2)} with --count ${settings.count} ` +
      `(fewer in flight would spread arrivals past 2200), got ${settings.concurrency}`);
  }
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
    this.rng = runStream(config.seedValue, 'arrivals');
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
  /** Each kind's size, as the flags give it, and the largest a snapshot may take: cut there, as --help says. */
  private readonly sizes: Record<SnapshotKind, Distribution>;
  private readonly sizeCap: number;
  private readonly rng: RandomGenerator;
  private fullLeft: number;
  private incrementalLeft: number;
  private openWindows = 0;
  private ordinal = 0;
  private clockMs: number;

  constructor(config: Config, random: SessionRandom, arrivalMs: number) {
    this.sizeCap = snapshotSizeCap(config);
    this.rng = random.stream('plan');
    this.sizes = { full: distribution(config, 'fullSnapshotSize'), incremental: distribution(config, 'incrementalSnapshotSize') };
    this.windows = sampleWholeNumber(this.rng, distribution(config, 'windowCount'), 1, MAX_WINDOWS);
    this.fullSnapshots = Math.max(sampleWholeNumber(this.rng, distribution(config, 'fullSnapshotCount'), 1, MAX_SNAPSHOTS_OF_A_KIND), this.windows);
    this.incrementalSnapshots = sampleWholeNumber(this.rng, distribution(config, 'incrementalSnapshotCount'), 0, MAX_SNAPSHOTS_OF_A_KIND);
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
    const size = sampleWholeNumber(rng, full ? this.sizes.full : this.sizes.incremental, 1, this.sizeCap);
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

/** Writes a 32-bit number big-endian at `at`. */
function writeUint32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}

/** Writes a 48-bit millisecond time big-endian into bytes 0..5, as UUIDv7 and PostHog's UUIDT start. */
function writeMs48(bytes: Uint8Array, ms: number): void {
  const high = Math.floor(ms / 2 ** 32);
  bytes[0] = high >>> 8;
  bytes[1] = high & 0xff;
  writeUint32(bytes, 2, ms >>> 0);
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

const UUID_SCRATCH = new Uint8Array(16);

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
// 3. Recording: the site (a design system, its stylesheets, icons and site
// map), the page model (a page load's nodes as rrweb's mirror holds them,
// where they are laid out, and what the page's scripts change), and the
// person acting on it (a hand on the mouse, gestures, reading); a window
// ties them into what rrweb and posthog-js record of a visit, in time
// order. Every event refers only to nodes that exist at its time, as
// rrweb's Replayer needs.
// ===========================================================================

/** rrweb's event types, incremental sources and node types (@rrweb/types). */
const EventType = { FullSnapshot: 2, IncrementalSnapshot: 3, Meta: 4, Custom: 5, Plugin: 6 } as const;
const IncrementalSource = { Mutation: 0, MouseMove: 1, MouseInteraction: 2, Scroll: 3, ViewportResize: 4, Input: 5, StyleSheetRule: 8, StyleDeclaration: 13 } as const;
const NodeType = { Document: 0, DocumentType: 1, Element: 2, Text: 3 } as const;

/** An rrweb event as posthog-js holds it before sending: `{type, data, timestamp}`, in rrweb's key order. */
interface RecordedEvent {
  type: number;
  data: object;
  timestamp: number;
}

/** An incremental snapshot event. */
const incremental = (atMs: number, data: object): RecordedEvent => ({ type: EventType.IncrementalSnapshot, data, timestamp: atMs });

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

// --- The site: its design system, stylesheets, icons and navigation ------------------

/** A colour as `#rrggbb` from hue (degrees), saturation and lightness (0-1). */
function hexColour(hue: number, saturation: number, lightness: number): string {
  const chroma = saturation * Math.min(lightness, 1 - lightness);
  const channel = (n: number) => {
    const k = (n + hue / 30) % 12;
    return Math.round(255 * (lightness - chroma * Math.max(-1, Math.min(k - 3, 9 - k, 1)))).toString(16).padStart(2, '0');
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
}

const SHADES = ['50', '100', '200', '300', '400', '500', '600', '700', '800', '900'];
/** Lightness of a site's gray ramp from 50 to 900, as Tailwind's neutral ramps run. */
const GRAY_LIGHTNESS = [0.98, 0.96, 0.91, 0.84, 0.66, 0.47, 0.35, 0.26, 0.17, 0.11];
/** Font stacks as sites write them, each falling back to faces every system has. */
const SANS_STACKS = [
  'Inter, ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
  '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Helvetica, Arial, sans-serif, "Apple Color Emoji"',
  '"IBM Plex Sans", -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif',
  '"Source Sans Pro", "Helvetica Neue", Helvetica, Arial, sans-serif',
  'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", Arial, sans-serif',
];
const MONO_STACKS = [
  'ui-monospace, SFMono-Regular, Menlo, Monaco, Consolas, "Liberation Mono", "Courier New", monospace',
  '"JetBrains Mono", "Fira Code", Menlo, Consolas, "Liberation Mono", monospace',
];

/** A site's look: its components' class prefix, a palette (CSS custom properties), fonts and corner radius. */
interface Theme {
  prefix: string;
  colours: [string, string][];
  sans: string;
  mono: string;
  radius: number;
}

/** A palette around one brand hue: the brand in three shades, an accent, status colours and a gray ramp tinted toward the brand. */
function makeTheme(rng: RandomGenerator): Theme {
  const hue = between(rng, 0, 359);
  const saturation = 0.6 + 0.25 * unit(rng);
  const tint = 0.04 + 0.12 * unit(rng);
  const colours: [string, string][] = [
    ['brand', hexColour(hue, saturation, 0.46)], ['brand-dark', hexColour(hue, saturation, 0.36)], ['brand-light', hexColour(hue, saturation, 0.95)],
    ['accent', hexColour((hue + between(rng, 120, 210)) % 360, 0.7, 0.5)],
    ['success', hexColour(142, 0.64, 0.36)], ['warning', hexColour(38, 0.92, 0.46)], ['danger', hexColour(0, 0.72, 0.5)],
    ...GRAY_LIGHTNESS.map((lightness, at): [string, string] => [`gray-${SHADES[at]}`, hexColour(hue, tint, lightness)]),
    ['surface', '#ffffff'], ['border', hexColour(hue, tint, 0.9)],
  ];
  return { prefix: capitalized(pick(rng, words()).slice(0, 7)), colours, sans: pick(rng, SANS_STACKS), mono: pick(rng, MONO_STACKS), radius: pick(rng, [4, 6, 8, 10]) };
}

type SiteKind = 'docs' | 'app';

/**
 * The frame's geometry in px, per kind of site: the stylesheet sets it, and
 * the layout estimate (where a person aims) assumes it. Docs: a header, a
 * sidebar, the article column and an "on this page" rail in a centred
 * container; apps: a top bar, a navigation column and the rest.
 */
const FRAME = {
  docs: { header: 64, sidebar: 272, rail: 224, container: 1440, padX: 48, padTop: 32, column: 720, mobileHeader: 56, mobilePadTop: 24 },
  app: { header: 48, sidebar: 224, rail: 0, container: 4096, padX: 24, padTop: 24, column: 4096, mobileHeader: 48, mobilePadTop: 16 },
} as const;
/** Below this viewport width the sidebar goes and the header's links give way to a menu button (Tailwind's `lg`). */
const MOBILE_WIDTH = 1024;
/** From this viewport width the docs' rail shows (Tailwind's `xl`). */
const RAIL_WIDTH = 1280;
/** The main column's side padding on a phone. */
const MOBILE_FRAME = { padX: 16 } as const;
/**
 * Sizes of the design system's parts in px that the layout counts on, so a
 * person finds the n-th row or card: navigation rows, table rows, cards,
 * controls, code lines, and the space blocks leave after them.
 */
const PX = {
  row: 32, tableHead: 40, tableRow: 44, card: 148, stat: 120, gap: 16, control: 36, smallControl: 28,
  codeHeader: 40, codeLine: 20, block: 32, appBlock: 24,
} as const;

/** One icon of a site's set on a 24-unit grid: outlined (strokes) or solid (fills), one to four shapes. */
interface Icon {
  paths: string[];
  solid: boolean;
}

/** A page of a site, as its navigation names it. */
interface SitePage {
  title: string;
  route: string;
}

/** A site's pages share its design system, stylesheets, icons, navigation, API and scripts, as real sites do. */
interface Site {
  origin: string;
  /** docs: articles in a sidebar of sections, inline <style>; app: dense UI, tables and forms, linked stylesheets, CSS-in-JS rules. */
  kind: SiteKind;
  name: string;
  theme: Theme;
  stylesheets: Stylesheet[];
  /** The design system alone, which pages too small to link the build inline. */
  critical: Stylesheet;
  icons: Icon[];
  /** Hashed class names its components carry besides their own (CSS modules, CSS-in-JS), as build tools name them. */
  hashed: string[];
  /** The site map: sections of pages, as its sidebar lists them. */
  sections: { title: string; icon: number; pages: SitePage[] }[];
  /** The header's links; some open a menu. */
  topLinks: { label: string; route: string; menu: boolean }[];
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
/** A site's CSS comes in files of about this size, so pages can link a few or all of them; the first is its design system. */
const STYLESHEET_CHARS = 48_000;

// --- Icons: SVG path data a browser parses --------------------------------------------

/** A coordinate as icon sets write them: at most two decimals, no exponent. */
const coordinate = (value: number) => String(Math.round(value * 100) / 100);
/** Coordinates joined as path data separates them. */
const coordinates = (...values: number[]) => values.map(coordinate).join(' ');

/** Shapes icons are drawn from, each path data of `M`, `L`, `H`, `V`, `C`, `S`, `A` and `Z` commands with their arguments in full. */
const ICON_SHAPES: readonly ((rng: RandomGenerator) => string)[] = [
  // A circle: two half-circle arcs.
  (rng) => {
    const [cx, cy, r] = [between(rng, 8, 16), between(rng, 8, 16), between(rng, 3, 7) + unit(rng)];
    return `M${coordinates(cx - r, cy)}A${coordinates(r, r)} 0 1 0 ${coordinates(cx + r, cy)}A${coordinates(r, r)} 0 1 0 ${coordinates(cx - r, cy)}Z`;
  },
  // A rounded rectangle: sides and quarter arcs.
  (rng) => {
    const [x, y, w, h, r] = [between(rng, 2, 6), between(rng, 2, 6), between(rng, 10, 16), between(rng, 8, 16), between(rng, 1, 3)];
    return `M${coordinates(x + r, y)}H${coordinate(x + w - r)}A${coordinates(r, r)} 0 0 1 ${coordinates(x + w, y + r)}V${coordinate(y + h - r)}` +
      `A${coordinates(r, r)} 0 0 1 ${coordinates(x + w - r, y + h)}H${coordinate(x + r)}A${coordinates(r, r)} 0 0 1 ${coordinates(x, y + h - r)}` +
      `V${coordinate(y + r)}A${coordinates(r, r)} 0 0 1 ${coordinates(x + r, y)}Z`;
  },
  // A chevron or an arrow: a polyline.
  (rng) => {
    const [x, y, size] = [between(rng, 6, 12), between(rng, 5, 9), between(rng, 4, 7)];
    return `M${coordinates(x, y)}L${coordinates(x + size, y + size)}L${coordinates(x, y + 2 * size)}${unit(rng) < 0.4 ? `M${coordinates(x - size, y + size)}H${coordinate(x + size)}` : ''}`;
  },
  // A closed blob of cubic curves, continued smoothly.
  (rng) => {
    const point = () => coordinates(between(rng, 300, 2100) / 100, between(rng, 300, 2100) / 100);
    let path = `M${point()}C${point()} ${point()} ${point()}`;
    for (let segment = between(rng, 1, 4); segment > 0; segment--) path += `S${point()} ${point()}`;
    return `${path}Z`;
  },
  // Lines of a list or a menu: horizontal strokes.
  (rng) => {
    let path = '';
    for (let lines = between(rng, 2, 4), y = between(rng, 5, 8); lines > 0; lines--, y += between(rng, 4, 6)) path += `M${coordinates(between(rng, 3, 6), y)}H${coordinate(between(rng, 14, 21))}`;
    return path;
  },
  // An arc of a gauge or a refresh symbol, with its arrow head.
  (rng) => {
    const r = between(rng, 6, 9);
    return `M${coordinates(12 - r, 12)}A${coordinates(r, r)} 0 ${between(rng, 0, 1)} 1 ${coordinates(12, 12 - r)}L${coordinates(14, 12 - r - 2)}M${coordinates(12, 12 - r)}L${coordinates(14, 12 - r + 2)}`;
  },
  // A detailed outline as icon sets draw them: a closed run of relative cubic curves with three decimals.
  (rng) => {
    const fine = () => (between(rng, -4500, 4500) / 1000).toString();
    let path = `M${coordinates(between(rng, 400, 2000) / 100, between(rng, 400, 2000) / 100)}`;
    for (let segment = between(rng, 6, 24); segment > 0; segment--) path += `c${[fine(), fine(), fine(), fine(), fine(), fine()].join(' ')}`;
    return `${path}Z`;
  },
];

/** An icon: one to four shapes, outlined (as most UI icon sets) or solid. */
function makeIcon(rng: RandomGenerator): Icon {
  // Most icons of a set have a detailed outline; simple shapes complete them.
  const detailed = ICON_SHAPES[ICON_SHAPES.length - 1]!;
  return { paths: Array.from({ length: between(rng, 1, 4) }, (_, at) => (at === 0 && unit(rng) < 0.6 ? detailed : pick(rng, ICON_SHAPES))(rng)), solid: unit(rng) < 0.3 };
}

/** The posthog-js release whose real recordings the model is measured against (bench/REALISM.md). */
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


// --- Stylesheets: the design system first, then the rest of a production build ---------

/**
 * The design system's rules, `&` standing for the site's component prefix:
 * a reset, typography, the frame of each kind of site, components, the
 * portal's overlays (closed ones hidden, as real sites keep them) and
 * hover and focus states. Every size the layout estimate assumes is here.
 */
const DESIGN_RULES: readonly (readonly [string, string])[] = [
  ['*, ::before, ::after', 'box-sizing: border-box; margin: 0; padding: 0; border: 0 solid var(--border);'],
  ['html', 'line-height: 1.5; -webkit-text-size-adjust: 100%; tab-size: 4; font-family: var(--font-sans); -webkit-font-smoothing: antialiased;'],
  ['body', 'min-height: 100vh; font-size: 16px; color: var(--gray-900); background-color: var(--surface);'],
  ['h1, h2, h3, h4, h5, h6', 'font-size: inherit; font-weight: inherit;'],
  ['a', 'color: inherit; text-decoration: inherit;'],
  ['b, strong', 'font-weight: 600;'],
  ['code, kbd, pre', 'font-family: var(--font-mono);'],
  ['table', 'border-collapse: separate; border-spacing: 0; text-indent: 0;'],
  ['button, input, select, textarea', 'font: inherit; color: inherit; background-color: transparent;'],
  ['button, [role="button"]', 'cursor: pointer;'],
  ['ol, ul, menu', 'list-style: none;'],
  ['svg', 'display: block; flex-shrink: 0;'],
  ['[hidden]', 'display: none;'],
  [':focus-visible', 'outline: 2px solid var(--brand); outline-offset: 2px;'],
  ['::selection', 'background-color: var(--brand-light);'],
  ['.&-Header', `position: sticky; top: 0; z-index: 30; display: flex; align-items: center; gap: 24px; height: ${FRAME.docs.header}px; padding: 0 24px; background-color: var(--surface); border-bottom: 1px solid var(--border);`],
  ['.&-Logo', 'display: flex; align-items: center; gap: 8px; font-size: 18px; font-weight: 700; color: var(--gray-900); white-space: nowrap;'],
  ['.&-Logo svg', 'width: 28px; height: 28px; color: var(--brand);'],
  ['.&-Nav', 'display: flex; align-items: stretch; height: 100%;'],
  ['.&-NavItem', 'position: relative; display: flex;'],
  ['.&-NavLink', 'display: flex; align-items: center; gap: 4px; height: 63px; padding: 0 12px; font-size: 14px; font-weight: 500; color: var(--gray-600); white-space: nowrap;'],
  ['.&-NavLink:hover, .&-NavLink[aria-expanded="true"]', 'color: var(--gray-900);'],
  ['.&-NavLink[aria-current="page"]', 'color: var(--brand); box-shadow: inset 0 -2px 0 var(--brand);'],
  ['.&-NavLink svg', 'width: 16px; height: 16px;'],
  ['.&-Menu', 'position: absolute; top: 100%; left: 0; z-index: 40; display: none; width: 320px; padding: 8px; background-color: var(--surface); border: 1px solid var(--border); border-radius: var(--radius); box-shadow: var(--shadow-lg);'],
  ['.&-NavItem:hover > .&-Menu, .&-NavItem:focus-within > .&-Menu', 'display: block;'],
  ['.&-MenuItem', 'display: flex; gap: 12px; padding: 8px; border-radius: var(--radius);'],
  ['.&-MenuItem:hover', 'background-color: var(--gray-50);'],
  ['.&-MenuItem svg', 'width: 20px; height: 20px; color: var(--brand);'],
  ['.&-MenuItem__title', 'font-size: 14px; line-height: 20px; font-weight: 600; color: var(--gray-900);'],
  ['.&-MenuItem__text', 'font-size: 13px; line-height: 18px; color: var(--gray-500);'],
  ['.&-HeaderActions', 'display: flex; align-items: center; gap: 12px; margin-left: auto;'],
  ['.&-Search', 'display: flex; align-items: center; gap: 8px; width: 240px; height: 36px; padding: 0 10px; color: var(--gray-500); background-color: var(--gray-50); border: 1px solid var(--border); border-radius: var(--radius);'],
  ['.&-Search svg', 'width: 16px; height: 16px;'],
  ['.&-Search input', 'flex: 1; min-width: 0; height: 100%; font-size: 14px; outline: none;'],
  ['.&-Kbd', 'padding: 0 6px; font-family: var(--font-sans); font-size: 12px; line-height: 20px; color: var(--gray-500); border: 1px solid var(--border); border-radius: 4px;'],
  ['.&-MenuButton', 'display: none;'],
  ['.&-Button', `display: inline-flex; align-items: center; justify-content: center; gap: 6px; height: ${PX.control}px; padding: 0 14px; font-size: 14px; font-weight: 500; line-height: 20px; white-space: nowrap; border: 1px solid transparent; border-radius: var(--radius); transition: background-color .15s, border-color .15s, color .15s;`],
  ['.&-Button svg', 'width: 16px; height: 16px;'],
  ['.&-Button--primary', 'color: #fff; background-color: var(--brand);'],
  ['.&-Button--primary:hover', 'background-color: var(--brand-dark);'],
  ['.&-Button--secondary', 'color: var(--gray-800); background-color: var(--surface); border-color: var(--gray-300); box-shadow: var(--shadow-sm);'],
  ['.&-Button--secondary:hover', 'background-color: var(--gray-50);'],
  ['.&-Button--ghost', 'color: var(--gray-600);'],
  ['.&-Button--ghost:hover', 'color: var(--gray-900); background-color: var(--gray-100);'],
  ['.&-Button--small', `height: ${PX.smallControl}px; padding: 0 10px; font-size: 13px;`],
  ['.&-Button--icon', 'width: 36px; padding: 0;'],
  ['.&-Button:disabled', 'opacity: .5; cursor: not-allowed;'],
  ['.&-IconButton', 'display: inline-flex; align-items: center; justify-content: center; width: 32px; height: 32px; color: var(--gray-500); border-radius: 6px;'],
  ['.&-IconButton:hover', 'color: var(--gray-900); background-color: var(--gray-100);'],
  ['.&-IconButton svg', 'width: 18px; height: 18px;'],
  ['.&-Layout', `display: grid; grid-template-columns: ${FRAME.docs.sidebar}px minmax(0, 1fr); grid-template-areas: "sidebar main"; max-width: ${FRAME.docs.container}px; margin: 0 auto;`],
  ['.&-Sidebar', `grid-area: sidebar; position: sticky; top: ${FRAME.docs.header}px; height: calc(100vh - ${FRAME.docs.header}px); overflow-y: auto; padding: 16px 12px 32px; border-right: 1px solid var(--border);`],
  ['.&-SidebarGroup__toggle', `display: flex; align-items: center; justify-content: space-between; width: 100%; height: ${PX.row}px; padding: 0 8px; font-size: 14px; font-weight: 600; color: var(--gray-900); text-align: left; border-radius: 6px;`],
  ['.&-SidebarGroup__toggle svg', 'width: 16px; height: 16px; color: var(--gray-400); transition: transform .15s;'],
  ['.&-SidebarGroup__toggle[aria-expanded="true"] svg', 'transform: rotate(90deg);'],
  ['.&-SidebarLink', `display: flex; align-items: center; gap: 8px; height: ${PX.row}px; padding: 0 8px 0 20px; font-size: 14px; color: var(--gray-600); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; border-radius: 6px;`],
  ['.&-SidebarLink:hover', 'color: var(--gray-900); background-color: var(--gray-50);'],
  ['.&-SidebarLink[aria-current="page"]', 'font-weight: 500; color: var(--brand); background-color: var(--brand-light);'],
  ['.&-Rail', 'grid-area: rail; display: none;'],
  ['.&-Rail__title', 'height: 28px; font-size: 12px; font-weight: 600; letter-spacing: .04em; text-transform: uppercase; color: var(--gray-500);'],
  ['.&-RailLink', 'display: block; height: 28px; font-size: 13px; line-height: 28px; color: var(--gray-600); white-space: nowrap; overflow: hidden; text-overflow: ellipsis;'],
  ['.&-RailLink:hover', 'color: var(--brand);'],
  ['.&-Main', `grid-area: main; min-width: 0; padding: ${FRAME.docs.padTop}px ${FRAME.docs.padX}px 96px;`],
  ['.&-Article', `max-width: ${FRAME.docs.column}px;`],
  ['.&-Breadcrumbs', 'display: flex; align-items: center; gap: 8px; height: 20px; margin-bottom: 16px; overflow: hidden; font-size: 14px; line-height: 20px; color: var(--gray-500); white-space: nowrap;'],
  ['.&-Breadcrumbs a:hover', 'color: var(--gray-900);'],
  ['.&-Breadcrumbs li', 'display: flex; align-items: center; gap: 8px;'],
  ['.&-Breadcrumbs__separator', 'color: var(--gray-300);'],
  ['.&-Article h1', 'margin-bottom: 16px; font-size: 36px; line-height: 44px; font-weight: 700; letter-spacing: -.02em; color: var(--gray-900);'],
  ['.&-Lead', 'margin-bottom: 12px; font-size: 18px; line-height: 30px; color: var(--gray-600);'],
  ['.&-Meta', 'display: flex; gap: 16px; height: 20px; margin-bottom: 32px; font-size: 14px; line-height: 20px; color: var(--gray-500);'],
  ['.&-Prose', 'display: flow-root; margin-bottom: 32px; font-size: 16px; line-height: 28px; color: var(--gray-700);'],
  ['.&-Prose h2', 'padding-top: 16px; margin-bottom: 12px; font-size: 24px; line-height: 32px; font-weight: 600; color: var(--gray-900); scroll-margin-top: 80px;'],
  ['.&-Prose h3', 'margin-bottom: 8px; font-size: 18px; line-height: 28px; font-weight: 600; color: var(--gray-900);'],
  ['.&-Prose p', 'margin-bottom: 16px;'],
  ['.&-Prose a', 'font-weight: 500; color: var(--brand); text-decoration: underline; text-underline-offset: 3px;'],
  ['.&-Prose a:hover', 'color: var(--brand-dark);'],
  ['.&-Anchor, .&-Prose .&-Anchor', 'margin-left: 8px; font-weight: 400; color: var(--gray-300); text-decoration: none; opacity: .4; transition: opacity .15s;'],
  ['h1:hover > .&-Anchor, h2:hover > .&-Anchor', 'opacity: 1;'],
  ['.&-Prose code', 'padding: 2px 4px; font-size: 14px; color: var(--gray-900); background-color: var(--gray-100); border-radius: 4px;'],
  ['.&-Prose ul', 'margin-bottom: 16px; padding-left: 24px; list-style: disc;'],
  ['.&-Prose ol', 'margin-bottom: 16px; padding-left: 24px; list-style: decimal;'],
  ['.&-Prose li', 'margin-bottom: 8px; padding-left: 4px;'],
  ['.&-Prose strong', 'color: var(--gray-900);'],
  ['.&-Code', 'display: flow-root; margin-bottom: 32px; overflow: hidden; background-color: var(--gray-900); border: 1px solid var(--gray-800); border-radius: var(--radius);'],
  ['.&-Code__header', `display: flex; align-items: center; justify-content: space-between; height: ${PX.codeHeader}px; padding: 0 6px 0 16px; font-size: 13px; color: var(--gray-300); border-bottom: 1px solid var(--gray-800);`],
  ['.&-Code pre', `padding: 16px; overflow: hidden; font-size: 14px; line-height: ${PX.codeLine}px; color: var(--gray-100); white-space: pre;`],
  ['.&-Code .&-Button--ghost', 'color: var(--gray-300);'],
  ['.&-Code .&-Button--ghost:hover', 'color: #fff; background-color: var(--gray-800);'],
  ['.token.keyword', 'color: color-mix(in srgb, var(--accent) 70%, white);'],
  ['.token.string', 'color: color-mix(in srgb, var(--success) 55%, white);'],
  ['.token.function', 'color: color-mix(in srgb, var(--brand) 55%, white);'],
  ['.token.number', 'color: color-mix(in srgb, var(--warning) 70%, white);'],
  ['.token.comment', 'color: var(--gray-400); font-style: italic;'],
  ['.token.punctuation', 'color: var(--gray-300);'],
  ['.&-Callout', 'display: flex; gap: 12px; margin-bottom: 32px; padding: 16px; font-size: 15px; line-height: 24px; color: var(--gray-700); background-color: var(--gray-50); border: 1px solid var(--border); border-left: 4px solid var(--brand); border-radius: var(--radius);'],
  ['.&-Callout--warning', 'border-left-color: var(--warning);'],
  ['.&-Callout svg', 'width: 20px; height: 20px; margin-top: 2px; color: var(--brand);'],
  ['.&-Callout__title', 'font-weight: 600; color: var(--gray-900);'],
  ['.&-CardGrid', `display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: ${PX.gap}px; margin-bottom: ${PX.block}px;`],
  ['.&-Card', `display: flex; flex-direction: column; gap: 8px; height: ${PX.card}px; padding: 20px; overflow: hidden; background-color: var(--surface); border: 1px solid var(--border); border-radius: var(--radius); transition: border-color .15s, box-shadow .15s;`],
  ['.&-Card:hover', 'border-color: var(--brand); box-shadow: var(--shadow);'],
  ['.&-Card svg', 'width: 24px; height: 24px; color: var(--brand);'],
  ['.&-Card__title', 'font-size: 16px; line-height: 24px; font-weight: 600; color: var(--gray-900); white-space: nowrap; overflow: hidden; text-overflow: ellipsis;'],
  ['.&-Card__text', 'display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; font-size: 14px; line-height: 20px; color: var(--gray-500);'],
  ['.&-TableWrap', `margin-bottom: ${PX.block}px; overflow: hidden; border: 1px solid var(--border); border-radius: var(--radius);`],
  ['.&-Table', 'width: 100%; table-layout: fixed; font-size: 14px;'],
  ['.&-Table th', `height: ${PX.tableHead}px; padding: 0 12px; overflow: hidden; font-size: 12px; font-weight: 600; letter-spacing: .04em; text-align: left; text-transform: uppercase; text-overflow: ellipsis; white-space: nowrap; color: var(--gray-500); background-color: var(--gray-50); border-bottom: 1px solid var(--border);`],
  ['.&-Table td', `height: ${PX.tableRow}px; padding: 0 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; color: var(--gray-700); border-bottom: 1px solid var(--border);`],
  ['.&-Table tr:last-child td', 'border-bottom-color: transparent;'],
  ['.&-Table tbody tr:hover', 'background-color: var(--gray-50);'],
  ['.&-Table a', 'font-weight: 500; color: var(--gray-900);'],
  ['.&-Table a:hover', 'color: var(--brand); text-decoration: underline;'],
  ['.&-Badge', 'display: inline-flex; align-items: center; height: 22px; padding: 0 8px; font-size: 12px; font-weight: 500; color: var(--gray-700); background-color: var(--gray-100); border-radius: 9999px;'],
  ['.&-Badge--success', 'color: var(--success); background-color: color-mix(in srgb, var(--success) 14%, white);'],
  ['.&-Badge--warning', 'color: var(--warning); background-color: color-mix(in srgb, var(--warning) 14%, white);'],
  ['.&-Badge--danger', 'color: var(--danger); background-color: color-mix(in srgb, var(--danger) 12%, white);'],
  ['.&-Avatar', 'display: inline-flex; align-items: center; justify-content: center; width: 24px; height: 24px; margin-right: 8px; font-size: 11px; font-weight: 600; vertical-align: middle; color: #fff; background-color: var(--accent); border-radius: 9999px;'],
  ['.&-Topbar', `position: sticky; top: 0; z-index: 30; display: flex; align-items: center; gap: 12px; height: ${FRAME.app.header}px; padding: 0 16px; background-color: var(--surface); border-bottom: 1px solid var(--border);`],
  ['.&-Topbar .&-Logo svg', 'width: 24px; height: 24px;'],
  ['.&-Switcher', 'display: flex; align-items: center; gap: 6px; height: 32px; padding: 0 8px; font-size: 14px; font-weight: 600; white-space: nowrap; border-radius: 6px;'],
  ['.&-Switcher:hover', 'background-color: var(--gray-100);'],
  ['.&-Switcher svg', 'width: 16px; height: 16px; color: var(--gray-400);'],
  ['.&-Topbar .&-Search', 'width: 320px; height: 32px; margin-left: 16px;'],
  ['.&-Topbar__end', 'display: flex; align-items: center; gap: 4px; margin-left: auto;'],
  ['.&-Shell', `display: grid; grid-template-columns: ${FRAME.app.sidebar}px minmax(0, 1fr);`],
  ['.&-AppNav', `position: sticky; top: ${FRAME.app.header}px; height: calc(100vh - ${FRAME.app.header}px); overflow-y: auto; padding: 8px; background-color: var(--gray-50); border-right: 1px solid var(--border);`],
  ['.&-AppNav__heading', `display: flex; align-items: flex-end; height: ${PX.row}px; padding: 0 8px 6px; font-size: 11px; font-weight: 600; letter-spacing: .06em; text-transform: uppercase; color: var(--gray-400);`],
  ['.&-NavRow', `display: flex; align-items: center; gap: 8px; height: ${PX.row}px; padding: 0 8px; font-size: 14px; color: var(--gray-700); white-space: nowrap; overflow: hidden; border-radius: 6px;`],
  ['.&-NavRow:hover', 'background-color: var(--gray-100);'],
  ['.&-NavRow[aria-current="page"]', 'font-weight: 500; color: var(--gray-900); background-color: var(--surface); box-shadow: var(--shadow-sm);'],
  ['.&-NavRow svg', 'width: 16px; height: 16px; color: var(--gray-500);'],
  ['.&-NavRow .&-Badge', 'height: 18px; margin-left: auto; padding: 0 6px; font-size: 11px;'],
  ['.&-AppMain', `min-width: 0; padding: ${FRAME.app.padTop}px ${FRAME.app.padX}px 64px;`],
  ['.&-PageHeader', 'display: flex; align-items: flex-start; justify-content: space-between; gap: 16px; height: 52px; margin-bottom: 20px;'],
  ['.&-PageHeader__titles', 'min-width: 0;'],
  ['.&-PageHeader h1', 'overflow: hidden; font-size: 24px; line-height: 32px; font-weight: 700; color: var(--gray-900); white-space: nowrap; text-overflow: ellipsis;'],
  ['.&-PageHeader p', 'overflow: hidden; font-size: 14px; line-height: 20px; color: var(--gray-500); white-space: nowrap; text-overflow: ellipsis;'],
  ['.&-PageHeader__actions', 'display: flex; flex-shrink: 0; gap: 8px;'],
  ['.&-Tabs', 'display: flex; gap: 24px; height: 40px; margin-bottom: 16px; border-bottom: 1px solid var(--border);'],
  ['.&-Tab', 'height: 40px; font-size: 14px; font-weight: 500; color: var(--gray-500); white-space: nowrap; border-bottom: 2px solid transparent;'],
  ['.&-Tab:hover', 'color: var(--gray-900);'],
  ['.&-Tab[aria-selected="true"]', 'color: var(--brand); border-bottom-color: var(--brand);'],
  ['.&-Toolbar', 'display: flex; align-items: center; gap: 8px; height: 36px; margin-bottom: 16px;'],
  ['.&-Input', 'width: 100%; height: 40px; padding: 0 12px; font-size: 14px; color: var(--gray-900); background-color: var(--surface); border: 1px solid var(--gray-300); border-radius: var(--radius); box-shadow: var(--shadow-sm);'],
  ['.&-Input:focus', 'outline: none; border-color: var(--brand); box-shadow: 0 0 0 3px var(--brand-light);'],
  ['.&-Input::placeholder', 'color: var(--gray-400);'],
  ['textarea.&-Input', 'height: 96px; padding: 8px 12px; resize: vertical;'],
  ['.&-Toolbar .&-Input', 'width: 280px; height: 36px;'],
  ['.&-Select', 'padding-right: 36px; background-image: url("data:image/svg+xml,%3csvg xmlns=\'http://www.w3.org/2000/svg\' viewBox=\'0 0 20 20\' fill=\'none\'%3e%3cpath d=\'M6 8L10 12L14 8\' stroke=\'%239ca3af\' stroke-width=\'1.5\'/%3e%3c/svg%3e"); background-position: right 10px center; background-repeat: no-repeat; background-size: 20px; appearance: none;'],
  ['.&-StatGrid', `display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: ${PX.gap}px; margin-bottom: ${PX.appBlock}px;`],
  ['.&-Stat', `height: ${PX.stat}px; padding: 16px; overflow: hidden; background-color: var(--surface); border: 1px solid var(--border); border-radius: var(--radius);`],
  ['.&-Stat__label', 'overflow: hidden; font-size: 13px; line-height: 20px; color: var(--gray-500); white-space: nowrap; text-overflow: ellipsis;'],
  ['.&-Stat__value', 'font-size: 28px; line-height: 36px; font-weight: 700; color: var(--gray-900);'],
  ['.&-Stat svg', 'width: 100%; height: 24px; margin-top: 8px; color: var(--brand);'],
  ['.&-Panel', 'display: flow-root; margin-bottom: 24px; padding: 20px; background-color: var(--surface); border: 1px solid var(--border); border-radius: var(--radius);'],
  ['.&-Panel__title', 'margin-bottom: 4px; font-size: 16px; line-height: 24px; font-weight: 600; color: var(--gray-900);'],
  ['.&-Panel__text', 'margin-bottom: 16px; font-size: 14px; line-height: 20px; color: var(--gray-500);'],
  ['.&-Field', 'margin-bottom: 16px;'],
  ['.&-Label', 'display: block; margin-bottom: 6px; font-size: 14px; line-height: 20px; font-weight: 500; color: var(--gray-700);'],
  ['.&-Help', 'margin-top: 6px; font-size: 13px; line-height: 18px; color: var(--gray-500);'],
  ['.&-Chart', 'display: block; width: 100%; height: 200px; color: var(--brand);'],
  ['.&-Feed', 'margin-bottom: 24px;'],
  ['.&-Feed li', 'display: flex; align-items: center; gap: 12px; height: 56px; overflow: hidden; font-size: 14px; white-space: nowrap; border-bottom: 1px solid var(--border);'],
  ['.&-Feed time', 'margin-left: auto; font-size: 13px; color: var(--gray-400);'],
  ['.&-Pagination', 'display: flex; align-items: center; justify-content: space-between; height: 36px; margin-bottom: 24px; font-size: 14px; color: var(--gray-500);'],
  ['.&-Portal', 'position: absolute; top: 0; left: 0; width: 100%; z-index: 50;'],
  ['.&-Dialog', 'position: fixed; inset: 0; display: flex; align-items: center; justify-content: center; background-color: rgb(0 0 0 / .4);'],
  ['.&-Dialog[data-state="closed"], .&-Popover[data-state="closed"], .&-Drawer[data-state="closed"]', 'display: none;'],
  ['.&-Dialog__panel', 'width: min(560px, 100% - 32px); max-height: 80vh; overflow-y: auto; padding: 24px; background-color: var(--surface); border-radius: 12px; box-shadow: var(--shadow-lg);'],
  ['.&-Popover', 'position: absolute; min-width: 200px; padding: 4px; background-color: var(--surface); border: 1px solid var(--border); border-radius: var(--radius); box-shadow: var(--shadow-lg);'],
  ['.&-Drawer', 'position: fixed; inset: 0 auto 0 0; width: 320px; overflow-y: auto; padding: 16px; background-color: var(--surface); box-shadow: var(--shadow-lg);'],
  ['.&-Tooltip', 'position: absolute; padding: 4px 8px; font-size: 12px; color: #fff; background-color: var(--gray-900); border-radius: 4px; opacity: 0; pointer-events: none; transition: opacity .15s;'],
  ['[data-tooltip]:hover > .&-Tooltip', 'opacity: 1;'],
  ['.&-Toast', 'position: fixed; right: 24px; bottom: 24px; display: flex; align-items: center; gap: 12px; width: 360px; padding: 12px 16px; font-size: 14px; color: var(--gray-900); background-color: var(--surface); border: 1px solid var(--border); border-radius: var(--radius); box-shadow: var(--shadow-lg);'],
  ['.&-Toast svg', 'width: 20px; height: 20px; color: var(--success);'],
  ['.&-SrOnly', 'position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0, 0, 0, 0); white-space: nowrap; border-width: 0;'],
];

/** The design system's responsive rules: phones (the frame folds away) and wide screens (the docs' rail). */
const RESPONSIVE_RULES: readonly (readonly [string, readonly (readonly [string, string])[]])[] = [
  [`(max-width: ${MOBILE_WIDTH - 1}px)`, [
    ['.&-Header', `height: ${FRAME.docs.mobileHeader}px; gap: 12px; padding: 0 16px;`],
    ['.&-Nav, .&-HeaderActions > :not(.&-MenuButton)', 'display: none;'],
    ['.&-MenuButton', 'display: inline-flex;'],
    ['.&-Layout, .&-Shell', 'display: block;'],
    ['.&-Sidebar, .&-AppNav, .&-Topbar .&-Search', 'display: none;'],
    ['.&-Main', `padding: ${FRAME.docs.mobilePadTop}px ${MOBILE_FRAME.padX}px 64px;`],
    ['.&-AppMain', `padding: ${FRAME.app.mobilePadTop}px ${MOBILE_FRAME.padX}px 64px;`],
    ['.&-CardGrid, .&-StatGrid', 'grid-template-columns: minmax(0, 1fr);'],
  ]],
  [`(min-width: ${RAIL_WIDTH}px)`, [
    ['.&-Layout', `grid-template-columns: ${FRAME.docs.sidebar}px minmax(0, 1fr) ${FRAME.docs.rail}px; grid-template-areas: "sidebar main rail";`],
    ['.&-Rail', `display: block; position: sticky; top: ${FRAME.docs.header}px; align-self: start; height: calc(100vh - ${FRAME.docs.header}px); overflow-y: auto; padding: 32px 16px;`],
  ]],
  ['print', [['.&-Header, .&-Sidebar, .&-Rail, .&-Topbar, .&-AppNav', 'display: none;']]],
];

/** Class names a template adds to an element for tone and states, without changing its size, as Tailwind markup does. */
const TONE_UTILITIES = [
  'antialiased', 'text-gray-500', 'text-gray-600', 'text-gray-700', 'text-gray-900', 'hover:text-gray-900', 'hover:text-brand', 'hover:bg-gray-50',
  'hover:bg-gray-100', 'dark:text-gray-100', 'dark:text-gray-300', 'dark:bg-gray-900', 'dark:bg-gray-800', 'dark:border-gray-700', 'dark:hover:bg-gray-800',
  'transition-colors', 'duration-150', 'cursor-pointer', 'select-none', 'focus-visible:outline-none', 'focus-visible:ring-2', 'focus-visible:ring-brand',
  'shrink-0', 'min-w-0', 'relative', 'isolate', 'group', 'group-hover:text-brand', 'border-gray-200', 'print:hidden', 'motion-reduce:transition-none',
];

/** Spacing steps of the utilities, in quarter rems (Tailwind's scale). */
const SPACE_STEPS = ['0', '0.5', '1', '1.5', '2', '2.5', '3', '4', '5', '6', '8', '10', '12', '16', '20', '24', '32'];
const PALETTE_NAMES = ['brand', 'brand-dark', 'brand-light', 'accent', 'success', 'warning', 'danger', 'white', ...SHADES.map((shade) => `gray-${shade}`)];
const colourValue = (name: string) => (name === 'white' ? '#fff' : `var(--${name})`);
const rem = (step: string) => (step === '0' ? '0' : `${Number(step) / 4}rem`);
const TEXT_SIZES: Record<string, string> = { xs: '.75rem; line-height: 1rem', sm: '.875rem; line-height: 1.25rem', base: '1rem; line-height: 1.5rem', lg: '1.125rem; line-height: 1.75rem', xl: '1.25rem; line-height: 1.75rem', '2xl': '1.5rem; line-height: 2rem', '3xl': '1.875rem; line-height: 2.25rem' };

/** Utility families as Tailwind builds them: a name prefix, its values, and the declarations of each. */
const UTILITY_FAMILIES: readonly (readonly [string, readonly string[], (value: string) => string])[] = [
  ['p', SPACE_STEPS, (v) => `padding: ${rem(v)};`], ['px', SPACE_STEPS, (v) => `padding-left: ${rem(v)}; padding-right: ${rem(v)};`],
  ['py', SPACE_STEPS, (v) => `padding-top: ${rem(v)}; padding-bottom: ${rem(v)};`], ['pt', SPACE_STEPS, (v) => `padding-top: ${rem(v)};`],
  ['pb', SPACE_STEPS, (v) => `padding-bottom: ${rem(v)};`], ['pl', SPACE_STEPS, (v) => `padding-left: ${rem(v)};`], ['pr', SPACE_STEPS, (v) => `padding-right: ${rem(v)};`],
  ['m', SPACE_STEPS, (v) => `margin: ${rem(v)};`], ['mx', SPACE_STEPS, (v) => `margin-left: ${rem(v)}; margin-right: ${rem(v)};`],
  ['my', SPACE_STEPS, (v) => `margin-top: ${rem(v)}; margin-bottom: ${rem(v)};`], ['mt', SPACE_STEPS, (v) => `margin-top: ${rem(v)};`],
  ['mb', SPACE_STEPS, (v) => `margin-bottom: ${rem(v)};`], ['ml', SPACE_STEPS, (v) => `margin-left: ${rem(v)};`], ['mr', SPACE_STEPS, (v) => `margin-right: ${rem(v)};`],
  ['gap', SPACE_STEPS, (v) => `gap: ${rem(v)};`], ['w', SPACE_STEPS, (v) => `width: ${rem(v)};`], ['h', SPACE_STEPS, (v) => `height: ${rem(v)};`],
  ['size', SPACE_STEPS, (v) => `width: ${rem(v)}; height: ${rem(v)};`], ['space-y', SPACE_STEPS, (v) => `--tw-space-y: ${rem(v)};`],
  ['text', PALETTE_NAMES, (v) => `color: ${colourValue(v)};`], ['bg', PALETTE_NAMES, (v) => `background-color: ${colourValue(v)};`],
  ['border', PALETTE_NAMES, (v) => `border-color: ${colourValue(v)};`], ['ring', PALETTE_NAMES, (v) => `--tw-ring-color: ${colourValue(v)};`],
  ['text', Object.keys(TEXT_SIZES), (v) => `font-size: ${TEXT_SIZES[v]};`],
  ['font', ['normal', 'medium', 'semibold', 'bold'], (v) => `font-weight: ${{ normal: 400, medium: 500, semibold: 600, bold: 700 }[v]};`],
  ['rounded', ['none', 'sm', 'md', 'lg', 'xl', 'full'], (v) => `border-radius: ${{ none: '0', sm: '.125rem', md: '.375rem', lg: '.5rem', xl: '.75rem', full: '9999px' }[v]};`],
  ['shadow', ['sm', 'md', 'lg', 'none'], (v) => `box-shadow: ${v === 'none' ? '0 0 #0000' : `var(--shadow-${v})`};`],
  ['opacity', ['0', '25', '50', '75', '100'], (v) => `opacity: ${Number(v) / 100};`], ['z', ['0', '10', '20', '30', '40', '50'], (v) => `z-index: ${v};`],
  ['duration', ['75', '100', '150', '200', '300', '500'], (v) => `transition-duration: ${v}ms;`],
  ['tracking', ['tight', 'normal', 'wide'], (v) => `letter-spacing: ${{ tight: '-.025em', normal: '0', wide: '.025em' }[v]};`],
];
/** Utilities that are one keyword each: their declarations. */
const KEYWORD_UTILITIES: Record<string, string> = {
  flex: 'display: flex;', 'inline-flex': 'display: inline-flex;', grid: 'display: grid;', block: 'display: block;', hidden: 'display: none;',
  'items-center': 'align-items: center;', 'items-start': 'align-items: flex-start;', 'justify-between': 'justify-content: space-between;',
  'justify-center': 'justify-content: center;', 'flex-col': 'flex-direction: column;', 'flex-wrap': 'flex-wrap: wrap;', grow: 'flex-grow: 1;',
  'shrink-0': 'flex-shrink: 0;', 'min-w-0': 'min-width: 0;', relative: 'position: relative;', absolute: 'position: absolute;', sticky: 'position: sticky;',
  isolate: 'isolation: isolate;', truncate: 'overflow: hidden; text-overflow: ellipsis; white-space: nowrap;', 'whitespace-nowrap': 'white-space: nowrap;',
  'overflow-hidden': 'overflow: hidden;', 'overflow-auto': 'overflow: auto;', 'select-none': 'user-select: none;', 'cursor-pointer': 'cursor: pointer;',
  underline: 'text-decoration-line: underline;', uppercase: 'text-transform: uppercase;', antialiased: '-webkit-font-smoothing: antialiased;',
  transition: 'transition-property: color, background-color, border-color, opacity, box-shadow, transform; transition-duration: .15s;',
  'transition-colors': 'transition-property: color, background-color, border-color; transition-duration: .15s;', 'transition-none': 'transition-property: none;',
  'outline-none': 'outline: 2px solid transparent; outline-offset: 2px;', 'ring-2': 'box-shadow: 0 0 0 2px var(--tw-ring-color, var(--brand));',
  group: '', 'sr-only': 'position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0, 0, 0, 0); white-space: nowrap;',
};
/** Variants: how a prefix (`hover:`, `md:`) turns a utility's selector, and the at-rule around it. */
const VARIANTS: readonly (readonly [string, (selector: string) => string, string])[] = [
  ['', (s) => s, ''], ['hover:', (s) => `${s}:hover`, ''], ['focus:', (s) => `${s}:focus`, ''], ['focus-visible:', (s) => `${s}:focus-visible`, ''],
  ['active:', (s) => `${s}:active`, ''], ['disabled:', (s) => `${s}:disabled`, ''], ['group-hover:', (s) => `.group:hover ${s}`, ''],
  ['dark:', (s) => `.dark ${s}`, ''], ['dark:hover:', (s) => `.dark ${s}:hover`, ''], ['sm:', (s) => s, '(min-width: 640px)'],
  ['md:', (s) => s, '(min-width: 768px)'], ['lg:', (s) => s, '(min-width: 1024px)'], ['xl:', (s) => s, '(min-width: 1280px)'],
  ['print:', (s) => s, 'print'], ['motion-reduce:', (s) => s, '(prefers-reduced-motion: reduce)'],
];

/** A utility's declarations from its name without variants (`bg-gray-50`), or undefined for a name no family makes. */
function utilityDeclarations(name: string): string | undefined {
  if (name in KEYWORD_UTILITIES) return KEYWORD_UTILITIES[name];
  for (const [prefix, values, declare] of UTILITY_FAMILIES) {
    if (name.startsWith(`${prefix}-`) && values.includes(name.slice(prefix.length + 1))) return declare(name.slice(prefix.length + 1));
  }
  return undefined;
}

/** A class name as a CSS selector writes it: `hover:bg-gray-100` as `.hover\:bg-gray-100`. */
const classSelector = (name: string) => `.${name.replace(/[:.@[\]%/]/g, (char) => `\\${char}`)}`;

/** The rule of a utility `name` (`bg-gray-800`) with `declarations`, under a variant (`dark:hover:`), as browsers serialize it. */
function variantRule([prefix, select, media]: (typeof VARIANTS)[number], name: string, declarations: string): string {
  const rule = `${select(classSelector(`${prefix}${name}`))} { ${declarations} }`;
  return media ? `@media ${media} {\n  ${rule}\n}` : rule;
}

/** Variants longest first where one extends another, so `dark:hover:` is found before `dark:`. */
const VARIANTS_LAST_FIRST = [...VARIANTS].reverse();

/** The rule of a utility class with its variants (`dark:hover:bg-gray-800`), as browsers serialize it. */
function utilityRule(name: string): string {
  const variant = VARIANTS_LAST_FIRST.find(([prefix]) => prefix !== '' && name.startsWith(prefix)) ?? VARIANTS[0]!;
  const bare = name.slice(variant[0].length);
  return variantRule(variant, bare, utilityDeclarations(bare) ?? '');
}

/** Every utility without variants and its declarations, in the order stylesheets list them: made on first use, then kept. */
let utilityTable: readonly (readonly [string, string])[] | undefined;
function utilities(): readonly (readonly [string, string])[] {
  utilityTable ??= [...Object.keys(KEYWORD_UTILITIES), ...UTILITY_FAMILIES.flatMap(([prefix, values]) => values.map((value) => `${prefix}-${value}`))]
    .map((name) => [name, utilityDeclarations(name) ?? ''] as const);
  return utilityTable;
}

/** The CSS text of rules written with `&` for the component prefix. */
function rulesCss(rules: readonly (readonly [string, string])[], prefix: string): string {
  return rules.map(([selector, declarations]) => `${selector.replaceAll('&', prefix)} { ${declarations} }`).join('');
}

/**
 * A site's design system as its first stylesheet: the palette and scales as
 * custom properties (and a dark theme, applied by a class as such sites do),
 * the rules above, the responsive ones, and the utilities its markup uses.
 */
function designSystemCss(theme: Theme): string {
  const variables = theme.colours.map(([name, value]) => `--${name}: ${value};`).join(' ');
  const dark = theme.colours.filter(([name]) => name.startsWith('gray-')).map(([name], at, grays) => `--${name}: ${grays[grays.length - 1 - at]![1]};`).join(' ');
  return [
    `:root { ${variables} --radius: ${theme.radius}px; --font-sans: ${theme.sans}; --font-mono: ${theme.mono}; --shadow-sm: 0 1px 2px 0 rgb(0 0 0 / .05); ` +
      '--shadow: 0 1px 3px 0 rgb(0 0 0 / .1), 0 1px 2px -1px rgb(0 0 0 / .1); --shadow-md: 0 4px 6px -1px rgb(0 0 0 / .1), 0 2px 4px -2px rgb(0 0 0 / .1); ' +
      '--shadow-lg: 0 10px 15px -3px rgb(0 0 0 / .1), 0 4px 6px -4px rgb(0 0 0 / .1); }',
    `.dark { ${dark} --surface: ${theme.colours.find(([name]) => name === 'gray-900')![1]}; color-scheme: dark; }`,
    rulesCss(DESIGN_RULES, theme.prefix),
    ...RESPONSIVE_RULES.map(([query, rules]) => `@media ${query} {\n  ${rulesCss(rules, theme.prefix)}\n}`),
    ...TONE_UTILITIES.map(utilityRule),
  ].join('');
}

/** Component parts and states of the rest of a component library, which a page's markup mostly does not use. */
const LIBRARY_PARTS = ['content', 'icon', 'label', 'body', 'header', 'footer', 'row', 'cell', 'title', 'inner', 'trigger', 'item', 'separator', 'indicator'];
const LIBRARY_STATES = ['primary', 'secondary', 'small', 'large', 'active', 'disabled', 'selected', 'open', 'loading', 'invalid', 'highlighted', 'compact'];
/** Declarations a component library writes, from the palette and scales. */
const LIBRARY_DECLARATIONS: readonly ((rng: RandomGenerator) => string)[] = [
  (rng) => `color: var(--${pick(rng, PALETTE_NAMES.slice(8))});`, (rng) => `background-color: var(--${pick(rng, PALETTE_NAMES.slice(8))});`,
  (rng) => `padding: ${rem(pick(rng, SPACE_STEPS))} ${rem(pick(rng, SPACE_STEPS))};`, (rng) => `gap: ${rem(pick(rng, SPACE_STEPS))};`,
  (rng) => `display: ${pick(rng, ['flex', 'grid', 'inline-flex', 'block'])};`, (rng) => `align-items: ${pick(rng, ['center', 'flex-start', 'stretch'])};`,
  (rng) => `border-radius: ${pick(rng, ['var(--radius)', '4px', '9999px'])};`, () => 'border: 1px solid var(--border);',
  (rng) => `font-size: ${pick(rng, ['12px', '13px', '14px', '16px'])};`, (rng) => `font-weight: ${pick(rng, [400, 500, 600])};`,
  (rng) => `box-shadow: var(--shadow${pick(rng, ['-sm', '', '-lg'])});`, (rng) => `transition: ${pick(rng, ['color', 'background-color', 'opacity', 'transform'])} .15s ease;`,
];

/** Declarations that neither move nor recolour anything at rest: for hashed classes and CSS-in-JS rules, which any element may carry. */
const QUIET_DECLARATIONS: readonly ((rng: RandomGenerator) => string)[] = [
  (rng) => `transition-property: ${pick(rng, ['color, background-color', 'opacity', 'box-shadow', 'transform'])};`, (rng) => `transition-duration: ${pick(rng, [100, 150, 200, 300])}ms;`,
  (rng) => `transition-timing-function: ${pick(rng, ['ease', 'ease-in-out', 'cubic-bezier(.4, 0, .2, 1)'])};`, () => '-webkit-tap-highlight-color: transparent;',
  () => 'caret-color: var(--brand);', (rng) => `outline-offset: ${between(rng, 1, 3)}px;`, (rng) => `text-underline-offset: ${between(rng, 2, 4)}px;`,
  (rng) => `scroll-margin-top: ${pick(rng, [64, 80, 96])}px;`, () => 'touch-action: manipulation;',
];

/**
 * The rest of a site's CSS after its design system, `chars` characters of
 * it: every utility in every variant, family by family as a utility build
 * writes them (those the design system already has left out), then the
 * parts and states of components of its library that pages rarely use.
 */
function buildCss(rng: RandomGenerator, theme: Theme, chars: number, skip: ReadonlySet<string>): string {
  const rules: string[] = [];
  let length = 0;
  const add = (rule: string) => {
    rules.push(rule);
    length += rule.length;
  };
  for (const variant of VARIANTS) {
    for (const [name, declarations] of utilities()) if (length < chars && !skip.has(`${variant[0]}${name}`) && unit(rng) < 0.8) add(variantRule(variant, name, declarations));
  }
  while (length < chars) {
    const component = `.${theme.prefix}-${capitalized(pick(rng, words()))}`;
    for (let part = between(rng, 1, 6); part > 0 && length < chars; part--) {
      const selector = `${component}${unit(rng) < 0.5 ? `__${pick(rng, LIBRARY_PARTS)}` : ''}${unit(rng) < 0.4 ? `--${pick(rng, LIBRARY_STATES)}` : ''}${unit(rng) < 0.15 ? ':hover' : ''}`;
      add(`${selector} { ${Array.from({ length: between(rng, 1, 5) }, () => pick(rng, LIBRARY_DECLARATIONS)(rng)).join(' ')} }`);
    }
  }
  return rules.join('');
}

/**
 * One of a site's stylesheet files, its CSS made on first use from a stream
 * of its own: pages too small to link stylesheets never pay for them, and
 * the bytes do not depend on which page asked first.
 */
class Stylesheet {
  private readonly make: () => string;
  private text: string | undefined;
  private length: number | undefined;

  constructor(make: () => string) {
    this.make = make;
  }

  /** The CSS text as it reads inside a JSON string, kept from first use: for events that carry it whole. */
  get json(): string {
    return (this.text ??= this.made());
  }

  /**
   * The same text, made again unless it is kept, and not kept: for its
   * compressed blocks, made once an encoding, so that a site does not keep
   * its CSS (300-900 kB a site, 2.5 MiB for a legacy worker's six) as well.
   */
  made(): string {
    if (this.text !== undefined) return this.text;
    const text = escapeInData(this.make());
    this.length = text.length;
    return text;
  }

  /** Characters of `json`. */
  get chars(): number {
    return this.length ?? this.json.length;
  }
}

/** Of each stylesheet file, about this share is an inlined font, as production CSS carries them (6% of a real page's JSON, 4-12% of its CSS). */
const FONT_SHARE = 0.06;

/**
 * An icon font's face as builds inline them: `chars` characters of base64,
 * incompressible. No element of the site uses its family, so browsers
 * never fetch or decode it, as with the unused weights and icon fonts of
 * real builds.
 */
function fontFace(rng: RandomGenerator, theme: Theme, chars: number): string {
  const bytes = Buffer.alloc(Math.max(3, Math.floor((chars * 3) / 4)));
  for (let at = 0; at < bytes.length; at += 4) bytes.writeInt32LE(rng.next(), Math.min(at, bytes.length - 4));
  return `@font-face { font-family: "${theme.prefix} Icons"; font-style: normal; font-weight: ${between(rng, 3, 7) * 100}; font-display: block; src: url("data:font/woff2;base64,${bytes.toString('base64')}") format("woff2"); }`;
}

/** The design system's rules for the hashed classes its components also carry (CSS modules, CSS-in-JS): transitions and touches that change nothing at rest. */
function hashedRules(rng: RandomGenerator, site: Site): string {
  return site.hashed.map((name) => `.${name} { ${Array.from({ length: between(rng, 1, 3) }, () => pick(rng, QUIET_DECLARATIONS)(rng)).join(' ')} }`).join('');
}

/**
 * A site's CSS of about `total` characters in files of about
 * STYLESHEET_CHARS: the design system first, then the rest of its build,
 * each file with an inlined font. File k comes from stream k + 1 of the
 * site's digest, made when a page first links it.
 */
function makeStylesheets(total: number, digest: Buffer, site: Site): Stylesheet[] {
  const files = Math.max(1, Math.round(total / STYLESHEET_CHARS));
  const fileChars = total / files;
  const designed = new Set(TONE_UTILITIES);
  return Array.from({ length: files }, (_, file) => new Stylesheet(() => {
    const rng = streamFrom(digest, file + 1);
    const font = fontFace(rng, site.theme, FONT_SHARE * fileChars);
    const design = file === 0 ? designSystemCss(site.theme) + hashedRules(rng, site) : '';
    return design + font + buildCss(rng, site.theme, fileChars - design.length - font.length, designed);
  }));
}

// --- A site: made on first use from its digest, with its icons and stylesheets, then kept --------

/** A random token of letters and digits, as build tools name bundles. */
function randomToken(rng: RandomGenerator, length: number): string {
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let token = '';
  for (let at = 0; at < length; at++) token += letters[between(rng, 0, letters.length - 1)];
  return token;
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

const sites = new Map<string, Site>();
let domainSuffixes: readonly string[] | undefined;
/** A URL path segment from a title: `Data pipelines` as `data-pipelines`. */
const slug = (title: string) => title.toLowerCase().replace(/[^a-z0-9]+/g, '-');

/** A site from its digest: one stream for the site, one for each stylesheet file. */
function makeSite(digest: Buffer): Site {
  const rng = streamFrom(digest, 0);
  const suffixes = (domainSuffixes ??= faker.definitions.internet.domain_suffix ?? ['com']);
  const name = capitalized(pick(rng, words()));
  const origin = `https://${slug(name)}-${pick(rng, words())}.${pick(rng, suffixes)}`;
  const kind: SiteKind = unit(rng) < 0.5 ? 'docs' : 'app';
  const sections = Array.from({ length: kind === 'docs' ? between(rng, 5, 10) : between(rng, 8, 18) }, () => {
    const title = capitalized(phrase(rng, 1, 2));
    const pages = Array.from({ length: between(rng, 3, 12) }, () => {
      const page = capitalized(phrase(rng, 1, 4));
      return { title: page, route: `/${slug(title)}/${slug(page)}` };
    });
    return { title, icon: 0, pages };
  });
  const bundle = () => `${origin}/static/${pick(rng, ['chunk', 'index', 'vendor', 'main'])}-${randomToken(rng, 8)}.js`;
  const scripts = Array.from({ length: between(rng, 4, 12) }, bundle);
  const icons = Array.from({ length: between(rng, 30, 70) }, () => makeIcon(rng));
  for (const section of sections) section.icon = between(rng, 0, icons.length - 1);
  const hashed = Array.from({ length: between(rng, 60, 160) }, () => (kind === 'app' ? `css-${randomToken(rng, 6).toLowerCase()}` : `_${pick(rng, words())}_${randomToken(rng, 5).toLowerCase()}_${between(rng, 1, 99)}`));
  const site: Site = {
    origin, kind, name, theme: makeTheme(rng), stylesheets: [], critical: new Stylesheet(() => ''), icons, hashed, sections,
    topLinks: Array.from({ length: between(rng, 3, 6) }, (_, at) => ({ label: capitalized(pick(rng, words())), route: `/${pick(rng, words())}`, menu: at < 2 && unit(rng) < 0.6 })),
    routes: sections.flatMap((section) => section.pages.map((page) => page.route)),
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
  site.critical = new Stylesheet(() => designSystemCss(site.theme) + hashedRules(streamFrom(digest, site.stylesheets.length + 1), site));
  site.recorderStart = recorderStartEvents(rng, site);
  return site;
}

/** Site `index` of the run with seed `seed`, made on first use and kept: its stylesheets are compressed once. */
function siteOf(seed: number, index: number): Site {
  const key = `${seed}/${index}`;
  let site = sites.get(key);
  if (!site) sites.set(key, (site = makeSite(digestOf(`${seed}/site/${index}`))));
  return site;
}

// --- The page model: rrweb's mirror of a page, its nodes to be, where they are -------

/** What events may do with a node: its role, packed in a byte. */
const Role = { Gone: 0, Element: 1, Text: 2, Clickable: 3, Field: 4, Container: 5, Fixed: 6, Live: 7 } as const;

/**
 * One window's page as rrweb's mirror holds it: which node ids exist, their
 * parents and children, and what events may do with each. Typed arrays of
 * ids, 16-bit while every id fits (11 bytes a node; 32-bit past 65,535 ids,
 * 21 bytes), so a thousand sessions in flight with pages of thousands of
 * nodes fit in tens of MB: at 750 windows in flight, 45 MiB of 32-bit
 * mirrors were most of a worker's memory.
 *
 * @example
 * const mirror = new Mirror();
 * mirror.add(1, 0, Role.Fixed);
 */
class Mirror {
  private parent: Uint16Array | Int32Array = new Uint16Array(1024);
  private firstChild: Uint16Array | Int32Array = new Uint16Array(1024);
  private nextSibling: Uint16Array | Int32Array = new Uint16Array(1024);
  private previousSibling: Uint16Array | Int32Array = new Uint16Array(1024);
  private lastChild: Uint16Array | Int32Array = new Uint16Array(1024);
  private role = new Uint8Array(1024);
  /** The highest id given out; ids are never reused. */
  maxId = 0;
  /** Nodes of the rarer roles, so events find one without scanning (removed ids are dropped as met). */
  private readonly pools = new Map<number, number[]>([[Role.Clickable, []], [Role.Field, []], [Role.Container, []], [Role.Live, []]]);

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
    this.pools.get(role)?.push(id);
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

  firstChildOf(id: number): number {
    return this.firstChild[id]!;
  }

  nextSiblingOf(id: number): number {
    return this.nextSibling[id]!;
  }

  /** A random node of `role` that exists and has an id of at most `maxId` (it existed at that time), if there is one. */
  pick(rng: RandomGenerator, role: number, maxId: number): number | undefined {
    const pool = this.pools.get(role);
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

  /**
   * Grows the arrays by a quarter: pages keep their mirrors as long as their
   * sessions are in flight, and doubling left a third unused. Ids are below
   * the arrays' length: 16 bits hold them up to 65,536 slots.
   */
  private grow(id: number): void {
    const size = Math.max(id + 1, Math.ceil(this.parent.length * 1.25));
    const ids = (array: Uint16Array | Int32Array): Uint16Array | Int32Array => {
      const copy = size <= 0x10000 ? new Uint16Array(size) : new Int32Array(size);
      copy.set(array);
      return copy;
    };
    this.parent = ids(this.parent);
    this.firstChild = ids(this.firstChild);
    this.nextSibling = ids(this.nextSibling);
    this.previousSibling = ids(this.previousSibling);
    this.lastChild = ids(this.lastChild);
    const role = new Uint8Array(size);
    role.set(this.role);
    this.role = role;
  }
}



/** A rectangle in px: of the page, which scrolls with the document, or (`fixed`) of the viewport, as sticky bars are. */
interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
  fixed: boolean;
}

/**
 * A node to be: its tag, attributes and children, or text; ids come when it
 * is serialized. A `box` says where it is: on a link, button or field it
 * makes a target a person aims at, on others a region the pointer can be
 * over. A list's `item` makes another child like its own, for re-renders.
 */
type Draft = { tag: string; attributes: Record<string, string>; children: Draft[]; role: number; svg?: true; box?: Box; item?: () => Draft } | { text: string; role: number; style?: true };

const element = (tag: string, attributes: Record<string, string>, children: Draft[] = [], role: number = Role.Element): Draft =>
  ({ tag, attributes, children, role });
const textNode = (content: string): Draft => ({ text: content, role: Role.Text });
/** Text a script updates now and then: a count, a time ago (as React renders an interpolation: a text node of its own beside the words around it). */
const liveText = (content: string): Draft => ({ text: content, role: Role.Live });
/** Gives a list the maker of its items; returns it. */
function listOf(draft: Draft, item: () => Draft): Draft {
  if ('tag' in draft) draft.item = item;
  return draft;
}
/** Gives a draft its place; returns it. */
function placed(draft: Draft, x: number, y: number, width: number, height: number, fixed = false): Draft {
  if ('tag' in draft) draft.box = { x, y, width, height, fixed };
  return draft;
}

/** Class names that change nothing of an element's size or place: transitions, focus rings, dark-theme and print variants. */
const NEUTRAL_UTILITIES = TONE_UTILITIES.filter((name) => !/^(text-|hover:text|shrink|min-w|relative)/.test(name));
/** Class names that colour text, for elements that hold text. */
const TEXT_UTILITIES = TONE_UTILITIES.filter((name) => /^(hover:)?text-gray/.test(name));

/** A class attribute as a site's templates write it: its components' classes (`&` its prefix) and a few utilities that do not move anything. */
function classes(rng: RandomGenerator, site: Site, names: string, text = false): string {
  let value = names.replaceAll('&', site.theme.prefix);
  if (unit(rng) < 0.6) value += ` ${pickPopular(rng, site.hashed)}`;
  for (let count = between(rng, 2, 7); count > 0; count--) value += ` ${pickPopular(rng, text && unit(rng) < 0.4 ? TEXT_UTILITIES : NEUTRAL_UTILITIES)}`;
  return value;
}

/** An attribute value that names what a template rendered, as analytics and tests mark elements. */
const dataAttr = (rng: RandomGenerator, what: string) => `${pick(rng, words())}-${what}`;

function markSvg(draft: Draft): Draft {
  if ('tag' in draft) {
    draft.svg = true;
    draft.children.forEach(markSvg);
  }
  return draft;
}

/** An inline SVG icon of the site's set, `size` px square, in the current text colour. */
function iconDraft(rng: RandomGenerator, site: Site, size: number): Draft {
  const icon = pickPopular(rng, site.icons);
  const paint: Record<string, string> = icon.solid
    ? { fill: 'currentColor' }
    : { fill: 'none', stroke: 'currentColor', 'stroke-width': '1.5', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' };
  const paths = icon.paths.map((d) => element('path', icon.solid ? { d, 'fill-rule': 'evenodd', 'clip-rule': 'evenodd' } : { d }, [], Role.Fixed));
  return markSvg(element('svg', { width: String(size), height: String(size), viewBox: '0 0 24 24', ...paint, 'aria-hidden': 'true' }, paths, Role.Fixed));
}

/** Average advance of a character of words in em: 0.45 (Arial, Helvetica) to 0.51 (DejaVu Sans), measured in Chromium. */
const CHAR_EM = 0.48;
const textWidth = (chars: number, fontPx: number) => chars * fontPx * CHAR_EM;
/** Lines a text of `chars` characters takes in `width` px, broken at words (about half a word lost a line). */
const linesOf = (chars: number, fontPx: number, width: number) => Math.max(1, Math.ceil(chars / Math.max(8, width / (fontPx * CHAR_EM) - 4)));
/** Width of a button of the design system: its padding and border, an icon if any, its label. */
const buttonWidth = (label: string, icon: boolean, small = false) => (small ? 22 : 30) + (icon ? 22 : 0) + textWidth(label.length, small ? 13 : 14);

/** Where a page's parts are for its viewport, in px; the stylesheet's sizes (FRAME) put them there. */
interface Layout {
  width: number;
  height: number;
  mobile: boolean;
  header: number;
  /** The main column, where content blocks go: left edge and width, and where its content starts. */
  column: { x: number; width: number; top: number };
  main: Box;
  sidebar: Box | undefined;
  rail: Box | undefined;
}

function layoutOf(kind: SiteKind, [width, height]: readonly [number, number], framed: boolean): Layout {
  const frame = FRAME[kind];
  if (!framed) {
    // A page without its frame: the main column alone, padded as in the frame.
    const padX = width < MOBILE_WIDTH ? MOBILE_FRAME.padX : frame.padX;
    const column = { x: padX, width: Math.min(frame.column, width - 2 * padX), top: width < MOBILE_WIDTH ? frame.mobilePadTop : frame.padTop };
    return { width, height, mobile: width < MOBILE_WIDTH, header: 0, column, main: { x: 0, y: 0, width, height, fixed: false }, sidebar: undefined, rail: undefined };
  }
  if (width < MOBILE_WIDTH) {
    const column = { x: MOBILE_FRAME.padX, width: width - 2 * MOBILE_FRAME.padX, top: frame.mobileHeader + frame.mobilePadTop };
    return { width, height, mobile: true, header: frame.mobileHeader, column, main: { x: 0, y: frame.mobileHeader, width, height, fixed: false }, sidebar: undefined, rail: undefined };
  }
  const hasRail = frame.rail > 0 && width >= RAIL_WIDTH;
  const left = Math.max(0, (width - frame.container) / 2);
  const mainX = left + frame.sidebar;
  const mainWidth = Math.min(width, frame.container) - frame.sidebar - (hasRail ? frame.rail : 0);
  return {
    width, height, mobile: false, header: frame.header,
    column: { x: mainX + frame.padX, width: Math.min(frame.column, mainWidth - 2 * frame.padX), top: frame.header + frame.padTop },
    main: { x: mainX, y: frame.header, width: mainWidth, height, fixed: false },
    sidebar: { x: left, y: frame.header, width: frame.sidebar, height: height - frame.header, fixed: true },
    rail: hasRail ? { x: mainX + mainWidth, y: frame.header, width: frame.rail, height: height - frame.header, fixed: true } : undefined,
  };
}

/** The main column as blocks fill it: its left edge and width, how far down it is filled (px of the page), and the headings the rail announced. */
interface Column {
  x: number;
  width: number;
  y: number;
  mobile: boolean;
  headings: string[];
}

/** A link of the site's own: a route of its site map. */
const href = (rng: RandomGenerator, site: Site) => `${site.origin}${pickPopular(rng, site.routes)}`;

/** The link a docs heading carries to itself, shown on hover, as docs generators add them. */
const anchorLink = (site: Site, title: string): Draft =>
  element('a', { class: `${site.theme.prefix}-Anchor`, href: `#${slug(title)}`, 'aria-label': `Link to ${title}` }, [textNode('#')]);

/** A paragraph of prose: sentences, now and then a link or inline code; returns the draft and its characters. */
function prose(rng: RandomGenerator, site: Site, sentences: number): { draft: Draft; chars: number } {
  const children: Draft[] = [];
  let chars = 0;
  for (let count = 0; count < sentences; count++) {
    const text = `${count > 0 ? ' ' : ''}${sentence(rng)}`;
    children.push(textNode(text));
    chars += text.length;
    if (unit(rng) < 0.3) {
      const label = phrase(rng, 1, 3);
      children.push(textNode(' '), unit(rng) < 0.6 ? element('a', { href: href(rng, site) }, [textNode(label)], Role.Clickable) : element('code', {}, [textNode(label.replace(/ /g, '_'))]));
      chars += label.length + 1;
    }
  }
  return { draft: element('p', {}, children), chars };
}

/** A line of a code sample: tokens as a highlighter marks them, and the newline that ends it. */
function codeLine(rng: RandomGenerator, maxChars: number): Draft[] {
  const tokens: Draft[] = [];
  let chars = between(rng, 0, 3) * 2;
  if (chars > 0) tokens.push(textNode(' '.repeat(chars)));
  for (let count = between(rng, 1, 6); count > 0; count--) {
    const text = pick(rng, words());
    if (chars + text.length + 1 > maxChars) break;
    tokens.push(element('span', { class: `token ${pick(rng, ['keyword', 'string', 'punctuation', 'function', 'comment', 'number'])}` }, [textNode(text)]), textNode(' '));
    chars += text.length + 1;
  }
  tokens.push(textNode('\n'));
  return tokens;
}

/** Initials, as avatars without a picture show them. */
const initials = (rng: RandomGenerator) => `${pick(rng, words())[0]!.toUpperCase()}${pick(rng, words())[0]!.toUpperCase()}`;

/** A cell of a record's row: a status badge, a person, a date or a number. */
function tableCell(rng: RandomGenerator, site: Site): Draft[] {
  const { prefix } = site.theme;
  const roll = unit(rng);
  if (roll < 0.25) return [element('span', { class: `${prefix}-Badge ${prefix}-Badge--${pick(rng, ['success', 'warning', 'danger', 'success'])}` }, [textNode(pick(rng, words()))])];
  if (roll < 0.5) return [element('span', { class: `${prefix}-Avatar`, 'aria-hidden': 'true' }, [textNode(initials(rng))]), textNode(`${capitalized(pick(rng, words()))} ${capitalized(pick(rng, words()))}`)];
  if (roll < 0.75) return [element('time', { datetime: new Date(Date.UTC(2024, 0, 1) + between(rng, 0, 3e10)).toISOString() }, [liveText(String(between(rng, 2, 59))), textNode(` ${pick(rng, ['minutes', 'hours', 'days'])} ago`)])];
  return [liveText(grouped(between(rng, 0, 99999))), textNode(` ${pick(rng, words())}s`)];
}

/** A table of records: a name linking to the record, then statuses, people, dates and counts; rows of a fixed height. */
function dataTable(rng: RandomGenerator, site: Site, column: Column, rows: number): Draft {
  const columns = column.mobile ? 2 : between(rng, 3, 6);
  const cellWidth = (column.width - 2) / columns;
  const top = column.y + 1 + PX.tableHead;
  const head = element('thead', {}, [element('tr', {}, Array.from({ length: columns }, () => element('th', { scope: 'col' }, [textNode(capitalized(phrase(rng, 1, 2)))])))]);
  const row = (at: number | undefined) => element('tr', { 'data-row-key': String(between(rng, 1, 99999)) }, Array.from({ length: columns }, (_, cell) => {
    if (cell > 0) return element('td', { class: classes(rng, site, '&-Table__cell', true) }, tableCell(rng, site));
    const label = capitalized(phrase(rng, 1, 3));
    const link = element('a', { href: href(rng, site), 'data-attr': dataAttr(rng, 'row-link') }, [textNode(label)], Role.Clickable);
    return element('td', {}, [at === undefined ? link : placed(link, column.x + 13, top + at * PX.tableRow + 12, Math.min(textWidth(label.length, 14), cellWidth - 24), 20)]);
  }));
  const body = listOf(element('tbody', {}, Array.from({ length: rows }, (_, at) => row(at)), Role.Container), () => row(undefined));
  column.y += 2 + PX.tableHead + PX.tableRow * rows + PX.block;
  return element('div', { class: classes(rng, site, '&-TableWrap') }, [element('table', { class: `${site.theme.prefix}-Table` }, [head, body])]);
}

/** Cards linking to other pages: an icon, a title and two lines of text each, two to a row. */
function cardGrid(rng: RandomGenerator, site: Site, column: Column): Draft {
  const perRow = column.mobile ? 1 : 2;
  const count = perRow * between(rng, 1, 2);
  const width = (column.width - PX.gap * (perRow - 1)) / perRow;
  const cards = Array.from({ length: count }, (_, at) => {
    const x = column.x + (at % perRow) * (width + 16);
    const y = column.y + Math.floor(at / perRow) * (PX.card + PX.gap);
    const card = element('a', { class: classes(rng, site, '&-Card'), href: href(rng, site) }, [
      iconDraft(rng, site, 24),
      element('p', { class: `${site.theme.prefix}-Card__title` }, [textNode(capitalized(phrase(rng, 1, 4)))]),
      element('p', { class: `${site.theme.prefix}-Card__text` }, [textNode(`${sentence(rng)} ${sentence(rng)}`)]),
    ], Role.Clickable);
    return placed(card, x, y, width, PX.card);
  });
  column.y += (count / perRow) * (PX.card + PX.gap) - PX.gap + PX.block;
  return element('div', { class: classes(rng, site, '&-CardGrid') }, cards, Role.Container);
}

/** Blocks of a docs article, each advancing the column by the height it takes. */
const DOCS_BLOCKS: readonly ((rng: RandomGenerator, site: Site, column: Column) => Draft)[] = [
  // A section: a heading and paragraphs.
  (rng, site, column) => {
    const title = column.headings.shift() ?? capitalized(phrase(rng, 2, 5));
    const paragraphs = Array.from({ length: between(rng, 1, 3) }, () => prose(rng, site, between(rng, 2, 5)));
    column.y += 16 + 32 * linesOf(title.length, 24, column.width) + 12 + 32;
    for (const { chars } of paragraphs) column.y += 28 * linesOf(chars, 16, column.width) + 16;
    return element('div', { class: classes(rng, site, '&-Prose') }, [element('h2', { id: slug(title) }, [textNode(title), anchorLink(site, title)]), ...paragraphs.map((p) => p.draft)], Role.Container);
  },
  // A list with a term or a link leading each item.
  (rng, site, column) => {
    const item = () => {
      const lead = unit(rng) < 0.5 ? element('strong', {}, [textNode(capitalized(phrase(rng, 1, 3)))]) : element('a', { href: href(rng, site) }, [textNode(capitalized(phrase(rng, 1, 3)))], Role.Clickable);
      const text = ` ${phrase(rng, 4, 14)}.`;
      return { draft: element('li', {}, [lead, textNode(text)]), chars: text.length + 16 };
    };
    const items = Array.from({ length: between(rng, 3, 7) }, () => {
      const { draft, chars } = item();
      column.y += 28 * linesOf(chars, 16, column.width - 28) + 8;
      return draft;
    });
    column.y += 16 + 32;
    return element('div', { class: classes(rng, site, '&-Prose') }, [listOf(element('ul', {}, items, Role.Container), () => item().draft)], Role.Container);
  },
  // A code sample with its language and a copy button.
  (rng, site, column) => {
    const top = column.y;
    const lineChars = Math.floor((column.width - 34) / (14 * 0.62));
    const lines = Array.from({ length: between(rng, 4, 14) }, () => codeLine(rng, lineChars));
    column.y += 2 + PX.codeHeader + 32 + PX.codeLine * lines.length + PX.block;
    const copy = element('button', { class: classes(rng, site, '&-Button &-Button--ghost &-Button--small'), type: 'button', 'data-attr': 'copy-code' }, [iconDraft(rng, site, 16), textNode('Copy')], Role.Clickable);
    const copyWidth = buttonWidth('Copy', true, true);
    return element('div', { class: classes(rng, site, '&-Code') }, [
      element('div', { class: `${site.theme.prefix}-Code__header` }, [element('span', {}, [textNode(pick(rng, ['bash', 'JavaScript', 'TypeScript', 'Python', 'JSON', 'YAML']))]),
        placed(copy, column.x + column.width - 7 - copyWidth, top + 1 + (PX.codeHeader - PX.smallControl) / 2, copyWidth, PX.smallControl)]),
      element('pre', {}, [element('code', { class: `language-${pick(rng, ['js', 'ts', 'python', 'bash'])}` }, lines.flat())]),
    ], Role.Container);
  },
  // A callout: an icon, a title and a few sentences.
  (rng, site, column) => {
    const text = Array.from({ length: between(rng, 1, 3) }, () => sentence(rng)).join(' ');
    column.y += 2 + 32 + 24 + 24 * linesOf(text.length, 15, column.width - 69) + 32;
    return element('div', { class: classes(rng, site, `&-Callout${unit(rng) < 0.3 ? ' &-Callout--warning' : ''}`), role: 'note' }, [
      iconDraft(rng, site, 20),
      element('div', {}, [element('p', { class: `${site.theme.prefix}-Callout__title` }, [textNode(pick(rng, ['Note', 'Tip', 'Important', 'Heads up']))]), element('p', {}, [textNode(text)])]),
    ]);
  },
  (rng, site, column) => dataTable(rng, site, column, between(rng, 3, 8)),
  (rng, site, column) => cardGrid(rng, site, column),
];

/** A line chart: `points` values drawn as path data across a `width` x `height` box. */
function chart(rng: RandomGenerator, width: number, height: number, points: number, className?: string): Draft {
  let value = between(rng, height / 4, (3 * height) / 4);
  let d = '';
  for (let at = 0; at < points; at++) {
    value = Math.min(height - 2, Math.max(2, value + between(rng, -height / 6, height / 6)));
    d += `${at === 0 ? 'M' : 'L'}${coordinates((at * width) / (points - 1), value)}`;
  }
  return markSvg(element('svg', { ...(className && { class: className }), viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', 'aria-hidden': 'true' }, [
    element('path', { d, fill: 'none', stroke: 'currentColor', 'stroke-width': '2', 'vector-effect': 'non-scaling-stroke' }),
  ]));
}

/** A settings form in a panel: labelled fields, help text, and a save button. */
function formPanel(rng: RandomGenerator, site: Site, column: Column): Draft {
  const { prefix } = site.theme;
  let y = column.y + 1 + 20 + 28 + 36;
  const fields = Array.from({ length: between(rng, 2, 5) }, () => {
    const help = unit(rng) < 0.5;
    const multiline = unit(rng) < 0.2;
    const control = multiline
      ? element('textarea', { class: `${prefix}-Input`, rows: '3', name: slug(pick(rng, words())) }, [], Role.Field)
      : element('input', { class: `${prefix}-Input`, type: pick(rng, ['text', 'email', 'url', 'tel']), name: slug(pick(rng, words())), placeholder: phrase(rng, 1, 3), value: '' }, [], Role.Field);
    placed(control, column.x + 21, y + 26, column.width - 42, multiline ? 96 : 40);
    y += 26 + (multiline ? 96 : 40) + (help ? 24 : 0) + 16;
    return element('div', { class: `${prefix}-Field` }, [
      element('label', { class: `${prefix}-Label` }, [textNode(capitalized(phrase(rng, 1, 3)))]), control,
      ...(help ? [element('p', { class: `${prefix}-Help` }, [textNode(sentence(rng))])] : []),
    ]);
  });
  const save = placed(element('button', { class: classes(rng, site, '&-Button &-Button--primary'), type: 'submit' }, [textNode('Save')], Role.Clickable), column.x + 21, y, buttonWidth('Save', false), PX.control);
  column.y = y + PX.control + 21 + PX.appBlock;
  return element('form', { class: classes(rng, site, '&-Panel'), 'data-attr': dataAttr(rng, 'form') }, [
    element('p', { class: `${prefix}-Panel__title` }, [textNode(capitalized(phrase(rng, 1, 3)))]),
    element('p', { class: `${prefix}-Panel__text` }, [textNode(sentence(rng))]),
    ...fields, save,
  ], Role.Container);
}

/** Blocks of an app's page, each advancing the column by the height it takes. */
const APP_BLOCKS: readonly ((rng: RandomGenerator, site: Site, column: Column) => Draft)[] = [
  (rng, site, column) => {
    const table = dataTable(rng, site, column, between(rng, 6, 20));
    const top = column.y;
    const next = element('button', { class: classes(rng, site, '&-Button &-Button--secondary &-Button--small'), type: 'button' }, [textNode('Next')], Role.Clickable);
    column.y += PX.control + PX.appBlock;
    return element('div', {}, [table, element('div', { class: `${site.theme.prefix}-Pagination` }, [
      element('span', {}, ['Showing ', '1', '-', String(between(rng, 10, 50)), ' of ', String(between(rng, 51, 9999))].map(textNode)),
      placed(next, column.x + column.width - buttonWidth('Next', false, true), top + (PX.control - PX.smallControl) / 2, buttonWidth('Next', false, true), PX.smallControl),
    ])], Role.Container);
  },
  // Figures of the day: four linked cards, a number and a sparkline each.
  (rng, site, column) => {
    const perRow = column.mobile ? 1 : 4;
    const width = (column.width - PX.gap * (perRow - 1)) / perRow;
    const stats = Array.from({ length: 4 }, (_, at) => placed(element('a', { class: classes(rng, site, '&-Stat'), href: href(rng, site) }, [
      element('p', { class: `${site.theme.prefix}-Stat__label` }, [textNode(capitalized(phrase(rng, 1, 3)))]),
      element('p', { class: `${site.theme.prefix}-Stat__value` }, [liveText(grouped(between(rng, 0, 99999)))]),
      chart(rng, 120, 24, 12),
    ], Role.Clickable), column.x + (at % perRow) * (width + PX.gap), column.y + Math.floor(at / perRow) * (PX.stat + PX.gap), width, PX.stat));
    column.y += (4 / perRow) * (PX.stat + PX.gap) - PX.gap + PX.appBlock;
    return element('div', { class: classes(rng, site, '&-StatGrid') }, stats, Role.Container);
  },
  // A chart in a panel.
  (rng, site, column) => {
    column.y += 2 + 40 + 28 + 36 + 200 + 24;
    return element('div', { class: classes(rng, site, '&-Panel') }, [
      element('p', { class: `${site.theme.prefix}-Panel__title` }, [textNode(capitalized(phrase(rng, 2, 4)))]),
      element('p', { class: `${site.theme.prefix}-Panel__text` }, [textNode(sentence(rng))]),
      chart(rng, 600, 200, between(rng, 12, 40), `${site.theme.prefix}-Chart`),
    ], Role.Container);
  },
  (rng, site, column) => formPanel(rng, site, column),
  // An activity feed: who did what, when.
  (rng, site, column) => {
    const item = () => element('li', {}, [
      element('span', { class: `${site.theme.prefix}-Avatar`, 'aria-hidden': 'true' }, [textNode(initials(rng))]),
      element('strong', {}, [textNode(capitalized(pick(rng, words())))]), textNode(` ${phrase(rng, 2, 6)}`),
      element('time', {}, [liveText(String(between(rng, 2, 59))), textNode('m ago')]),
    ]);
    const items = Array.from({ length: between(rng, 4, 10) }, item);
    column.y += 56 * items.length + 24;
    return listOf(element('ul', { class: classes(rng, site, '&-Feed') }, items, Role.Container), item);
  },
];

/**
 * What a page keeps closed until asked: dialogs, menus and a navigation
 * drawer in its portal, hidden by the design system until opened. Pages
 * whose content would not fit their height keep the rest here.
 */
const PORTAL_BLOCKS: readonly ((rng: RandomGenerator, site: Site) => Draft)[] = [
  (rng, site) => element('div', { class: `${site.theme.prefix}-Dialog`, role: 'dialog', 'aria-modal': 'true', 'data-state': 'closed' }, [
    element('div', { class: `${site.theme.prefix}-Dialog__panel` }, [
      element('h2', {}, [textNode(capitalized(phrase(rng, 2, 4)))]),
      ...Array.from({ length: between(rng, 1, 4) }, () => prose(rng, site, between(rng, 1, 3)).draft),
      element('button', { class: `${site.theme.prefix}-Button ${site.theme.prefix}-Button--primary`, type: 'button' }, [textNode(capitalized(pick(rng, words())))]),
    ]),
  ]),
  (rng, site) => element('div', { class: `${site.theme.prefix}-Popover`, role: 'menu', 'data-state': 'closed' }, Array.from({ length: between(rng, 3, 12) }, () =>
    element('button', { class: `${site.theme.prefix}-MenuItem`, role: 'menuitem', type: 'button' }, [iconDraft(rng, site, 16), element('span', {}, [textNode(capitalized(phrase(rng, 1, 3)))])]))),
  (rng, site) => element('nav', { class: `${site.theme.prefix}-Drawer`, 'data-state': 'closed', 'aria-label': 'Menu' }, site.sections.slice(0, between(rng, 1, site.sections.length)).map((section) =>
    element('div', {}, [element('p', {}, [textNode(section.title)]), element('ul', {}, section.pages.map((page) => element('li', {}, [element('a', { href: `${site.origin}${page.route}` }, [textNode(page.title)])])))]))),
];

/** Which page of the site a load shows, and the headings its rail announces. */
interface PageInfo {
  section: number;
  page: number;
  title: string;
  headings: string[];
}

/** A page of the site to show: popular sections more often, its title, and the headings its article will have. */
function choosePage(site: Site, rng: RandomGenerator): PageInfo {
  const section = Math.floor(site.sections.length * unit(rng) ** 2);
  const page = between(rng, 0, site.sections[section]!.pages.length - 1);
  return { section, page, title: site.sections[section]!.pages[page]!.title, headings: Array.from({ length: between(rng, 4, 9) }, () => capitalized(phrase(rng, 2, 5))) };
}

/** A chevron, as menus and collapsible groups mark themselves. */
const chevron = (): Draft => markSvg(element('svg', { width: '16', height: '16', viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor', 'stroke-width': '2', 'aria-hidden': 'true' },
  [element('path', { d: 'M9 6L15 12L9 18', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }, [], Role.Fixed)], Role.Fixed));

/** A header menu, closed until its link is hovered: pages with an icon and a line of description. */
function headerMenu(rng: RandomGenerator, site: Site): Draft {
  return element('div', { class: `${site.theme.prefix}-Menu`, role: 'menu' }, Array.from({ length: between(rng, 3, 6) }, () =>
    element('a', { class: `${site.theme.prefix}-MenuItem`, role: 'menuitem', href: href(rng, site) }, [
      iconDraft(rng, site, 20),
      element('div', {}, [element('p', { class: `${site.theme.prefix}-MenuItem__title` }, [textNode(capitalized(phrase(rng, 1, 3)))]),
        element('p', { class: `${site.theme.prefix}-MenuItem__text` }, [textNode(phrase(rng, 3, 8))])]),
    ])), Role.Fixed);
}

/** The search field of a header: an icon, the input, the shortcut; placed at `x` when shown. */
function searchBox(rng: RandomGenerator, site: Site, x: number | undefined, y: number, width: number, height: number, placeholder: string): Draft {
  const input = element('input', { type: 'search', placeholder, 'aria-label': 'Search', autocomplete: 'off', value: '' }, [], Role.Field);
  if (x !== undefined) placed(input, x + 35, y, width - 82, height, true);
  return element('div', { class: classes(rng, site, '&-Search'), role: 'search' }, [iconDraft(rng, site, 16), input, element('kbd', { class: `${site.theme.prefix}-Kbd` }, [textNode('⌘K')])], Role.Fixed);
}

/** A docs site's header: logo, links (some opening menus), search and calls to action; a menu button on phones. */
function docsHeader(rng: RandomGenerator, site: Site, layout: Layout): Draft {
  const { mobile, header, width } = layout;
  const pad = mobile ? 16 : 24;
  const logoWidth = 36 + textWidth(site.name.length, 19);
  const logo = placed(element('a', { class: classes(rng, site, '&-Logo'), href: `${site.origin}/`, 'aria-label': `${site.name} home` }, [iconDraft(rng, site, 28), element('span', {}, [textNode(site.name)])], Role.Clickable), pad, (header - 28) / 2, logoWidth, 28, true);
  let x = pad + logoWidth + 24;
  const items = site.topLinks.map((link) => {
    const linkWidth = 24 + textWidth(link.label.length, 14.5) + (link.menu ? 20 : 0);
    const trigger = link.menu
      ? element('button', { class: classes(rng, site, '&-NavLink'), type: 'button', 'aria-expanded': 'false', 'aria-haspopup': 'menu' }, [textNode(link.label), chevron()], Role.Clickable)
      : element('a', { class: classes(rng, site, '&-NavLink'), href: `${site.origin}${link.route}` }, [textNode(link.label)], Role.Clickable);
    if (!mobile) placed(trigger, x, 0, linkWidth, header - 1, true);
    x += linkWidth;
    return element('div', { class: `${site.theme.prefix}-NavItem` }, [trigger, ...(link.menu ? [headerMenu(rng, site)] : [])], Role.Fixed);
  });
  const [primary, secondary] = [pick(rng, ['Get started', 'Sign up', 'Try it free']), pick(rng, ['Log in', 'Sign in', 'Contact sales'])];
  const primaryX = width - pad - buttonWidth(primary, false);
  const secondaryX = primaryX - 12 - buttonWidth(secondary, false);
  const y = (header - 36) / 2;
  const button = (label: string, variant: string, at: number) => {
    const draft = element('a', { class: classes(rng, site, `&-Button &-Button--${variant}`), href: href(rng, site), 'data-attr': dataAttr(rng, 'cta') }, [textNode(label)], Role.Clickable);
    return mobile ? draft : placed(draft, at, y, buttonWidth(label, false), 36, true);
  };
  const menuButton = element('button', { class: classes(rng, site, '&-MenuButton &-IconButton'), type: 'button', 'aria-label': 'Open menu' }, [iconDraft(rng, site, 20)], Role.Clickable);
  return placed(element('header', { class: classes(rng, site, '&-Header') }, [
    logo,
    element('nav', { class: `${site.theme.prefix}-Nav`, 'aria-label': 'Main' }, items, Role.Fixed),
    element('div', { class: `${site.theme.prefix}-HeaderActions` }, [
      searchBox(rng, site, mobile ? undefined : secondaryX - 252, y, 240, 36, 'Search docs'),
      button(secondary, 'secondary', secondaryX), button(primary, 'primary', primaryX),
      mobile ? placed(menuButton, width - pad - 32, (header - 32) / 2, 32, 32, true) : menuButton,
    ], Role.Fixed),
  ], Role.Fixed), 0, 0, width, header, true);
}

/** Places drafts in the next rows of a sidebar (padded `inset` px, its 1 px border aside), or skips a row; rows below the viewport stay unplaced. */
function sidebarRows(layout: Layout, inset: number, top: number): { place: (draft: Draft) => Draft; skip: () => void } {
  const box = layout.sidebar;
  let row = 0;
  return {
    place: (draft) => {
      const y = layout.header + top + row++ * PX.row;
      return box && y + PX.row <= layout.height ? placed(draft, box.x + inset, y, box.width - 2 * inset - 1, PX.row, true) : draft;
    },
    skip: () => void row++,
  };
}

/** A docs sidebar: the site map's sections, the current one (and a few others) open, the current page marked; rows in view are targets. */
function docsSidebar(rng: RandomGenerator, site: Site, layout: Layout, info: PageInfo): Draft {
  const box = layout.sidebar;
  const { place } = sidebarRows(layout, 12, 16);
  const groups = site.sections.map((section, index) => {
    const open = index === info.section || index === 0 || unit(rng) < 0.25;
    const toggle = place(element('button', { class: classes(rng, site, '&-SidebarGroup__toggle'), type: 'button', 'aria-expanded': String(open) }, [element('span', {}, [textNode(section.title)]), chevron()], Role.Clickable));
    const links = section.pages.map((page, at) => {
      const link = element('a', { class: classes(rng, site, '&-SidebarLink', true), href: `${site.origin}${page.route}`, ...(index === info.section && at === info.page && { 'aria-current': 'page' }) }, [textNode(page.title)], Role.Clickable);
      return element('li', { class: classes(rng, site, '&-SidebarItem') }, [open ? place(link) : link], Role.Fixed);
    });
    return element('div', { class: `${site.theme.prefix}-SidebarGroup` }, [toggle, element('ul', open ? {} : { hidden: '' }, links, Role.Fixed)], Role.Fixed);
  });
  const aside = element('aside', { class: classes(rng, site, '&-Sidebar'), 'aria-label': 'Documentation' }, [element('nav', {}, groups, Role.Fixed)], Role.Fixed);
  return box ? placed(aside, box.x, box.y, box.width, box.height, true) : aside;
}

/** The rail of a docs page: the headings of the article, as links. */
function docsRail(site: Site, layout: Layout, headings: string[]): Draft {
  const box = layout.rail;
  const links = headings.map((heading, at) => {
    const link = element('a', { class: `${site.theme.prefix}-RailLink`, href: `#${slug(heading)}` }, [textNode(heading)], Role.Clickable);
    const y = layout.header + 32 + 28 + at * 28;
    return element('li', {}, [box && y + 28 <= layout.height ? placed(link, box.x + 16, y, box.width - 32, 28, true) : link], Role.Fixed);
  });
  return element('nav', { class: `${site.theme.prefix}-Rail`, 'aria-label': 'On this page' }, [
    element('p', { class: `${site.theme.prefix}-Rail__title` }, [textNode('On this page')]), element('ul', {}, links, Role.Fixed),
  ], Role.Fixed);
}

/** Breadcrumbs: the site, the section, the page; the first one a target. */
function breadcrumbs(site: Site, column: Column, info: PageInfo): Draft {
  const section = site.sections[info.section]!;
  const first = element('a', { href: `${site.origin}/` }, [textNode(site.name)], Role.Clickable);
  placed(first, column.x, column.y, textWidth(site.name.length, 14), 20);
  column.y += 20 + 16;
  const separator = () => element('span', { class: `${site.theme.prefix}-Breadcrumbs__separator`, 'aria-hidden': 'true' }, [textNode('/')]);
  return element('nav', { 'aria-label': 'Breadcrumb' }, [element('ol', { class: `${site.theme.prefix}-Breadcrumbs` }, [
    element('li', {}, [first, separator()]), element('li', {}, [element('a', { href: `${site.origin}${section.pages[0]!.route}` }, [textNode(section.title)], Role.Clickable), separator()]),
    element('li', { 'aria-current': 'page' }, [textNode(info.title)]),
  ])]);
}

/** The start of a docs article: breadcrumbs, title, lead, when it was updated. */
function docsIntro(rng: RandomGenerator, site: Site, column: Column, info: PageInfo): Draft[] {
  const crumbs = breadcrumbs(site, column, info);
  const lead = `${sentence(rng)} ${sentence(rng)}`;
  column.y += 44 * linesOf(info.title.length, 38, column.width) + 16 + 30 * linesOf(lead.length, 18, column.width) + 12 + 20 + 32;
  return [
    crumbs,
    element('h1', {}, [textNode(info.title), anchorLink(site, info.title)]),
    element('p', { class: classes(rng, site, '&-Lead', true) }, [textNode(lead)]),
    element('div', { class: `${site.theme.prefix}-Meta` }, [
      element('span', {}, [textNode(`Last updated ${new Date(Date.UTC(2024, 0, 1) + between(rng, 0, 3e10)).toDateString().slice(4)}`)]),
      element('a', { href: href(rng, site) }, [textNode('Edit this page')], Role.Clickable),
    ]),
  ];
}

/** An app's top bar: logo, project switcher, search, a few icon buttons and the person's avatar. */
function appTopbar(rng: RandomGenerator, site: Site, layout: Layout): Draft {
  const { width, mobile } = layout;
  const project = capitalized(phrase(rng, 1, 2));
  const switcherWidth = 38 + textWidth(project.length, 15);
  const buttons = between(rng, 2, 3);
  const avatarX = width - 16 - 8 - 24;
  const icons = Array.from({ length: buttons }, (_, at) => {
    const button = element('button', { class: classes(rng, site, '&-IconButton'), type: 'button', 'aria-label': capitalized(pick(rng, words())) }, [iconDraft(rng, site, 18)], Role.Clickable);
    return placed(button, avatarX - 4 - (buttons - at) * 36 + 4, 8, 32, 32, true);
  });
  return placed(element('header', { class: classes(rng, site, '&-Topbar') }, [
    placed(element('a', { class: `${site.theme.prefix}-Logo`, href: `${site.origin}/`, 'aria-label': site.name }, [iconDraft(rng, site, 24)], Role.Clickable), 16, 12, 24, 24, true),
    placed(element('button', { class: classes(rng, site, '&-Switcher'), type: 'button', 'aria-haspopup': 'menu' }, [element('span', {}, [textNode(project)]), chevron()], Role.Clickable), 52, 8, switcherWidth, 32, true),
    searchBox(rng, site, mobile ? undefined : 52 + switcherWidth + 28, 8, 320, 32, `Search ${site.name}`),
    element('div', { class: `${site.theme.prefix}-Topbar__end` }, [...icons, element('span', { class: `${site.theme.prefix}-Avatar`, title: phrase(rng, 2, 2) }, [textNode(initials(rng))])], Role.Fixed),
  ], Role.Fixed), 0, 0, width, FRAME.app.header, true);
}

/** An app's navigation: its areas in groups under headings, the current one marked; rows in view are targets. */
function appNav(rng: RandomGenerator, site: Site, layout: Layout, info: PageInfo): Draft {
  const box = layout.sidebar;
  const rows = sidebarRows(layout, 8, 8);
  const groups: Draft[] = [];
  site.sections.forEach((section, index) => {
    if (index % 6 === 0) {
      rows.skip();
      groups.push(element('div', { class: `${site.theme.prefix}-AppNav__heading` }, [textNode(capitalized(pick(rng, words())))], Role.Fixed));
    }
    const link = element('a', { class: classes(rng, site, '&-NavRow', true), href: `${site.origin}${section.pages[0]!.route}`, ...(index === info.section && { 'aria-current': 'page' }) }, [
      iconDraft(rng, site, 16), element('span', {}, [textNode(section.title)]),
      ...(unit(rng) < 0.15 ? [element('span', { class: `${site.theme.prefix}-Badge` }, [textNode(String(between(rng, 1, 99)))])] : []),
    ], Role.Clickable);
    groups.push(rows.place(link));
  });
  const aside = element('aside', { class: classes(rng, site, '&-AppNav') }, [element('nav', { 'aria-label': 'Main' }, groups, Role.Fixed)], Role.Fixed);
  return box ? placed(aside, box.x, box.y, box.width, box.height, true) : aside;
}

/** The start of an app page: breadcrumbs, the title with its actions, tabs and a toolbar. */
function appIntro(rng: RandomGenerator, site: Site, column: Column, info: PageInfo): Draft[] {
  const { prefix } = site.theme;
  const crumbs = breadcrumbs(site, column, info);
  const [primary, secondary] = [`New ${pick(rng, words())}`, capitalized(pick(rng, words()))];
  const primaryX = column.x + column.width - buttonWidth(primary, true);
  const actionButton = (label: string, variant: string, x: number) =>
    placed(element('button', { class: classes(rng, site, `&-Button &-Button--${variant}`), type: 'button', 'data-attr': dataAttr(rng, 'button') }, [iconDraft(rng, site, 16), textNode(label)], Role.Clickable), x, column.y, buttonWidth(label, true), PX.control);
  const header = element('div', { class: `${prefix}-PageHeader` }, [
    element('div', { class: `${prefix}-PageHeader__titles` }, [element('h1', {}, [textNode(info.title)]), element('p', {}, [textNode(sentence(rng))])]),
    element('div', { class: `${prefix}-PageHeader__actions` }, [actionButton(secondary, 'secondary', primaryX - 8 - buttonWidth(secondary, true)), actionButton(primary, 'primary', primaryX)]),
  ]);
  column.y += 52 + 20;
  let x = column.x;
  const tabs = Array.from({ length: between(rng, 2, 5) }, (_, at) => {
    const label = capitalized(pick(rng, words()));
    const tab = placed(element('button', { class: classes(rng, site, '&-Tab'), role: 'tab', type: 'button', 'aria-selected': String(at === 0) }, [textNode(label)], Role.Clickable), x, column.y, textWidth(label.length, 14.5), 40);
    x += textWidth(label.length, 14.5) + 24;
    return tab;
  });
  column.y += 40 + 16;
  const search = placed(element('input', { class: `${prefix}-Input`, type: 'search', placeholder: `Search ${pick(rng, words())}s`, value: '' }, [], Role.Field), column.x, column.y, Math.min(280, column.width), PX.control);
  const filter = placed(element('button', { class: classes(rng, site, '&-Button &-Button--secondary'), type: 'button' }, [iconDraft(rng, site, 16), textNode('Filters')], Role.Clickable), column.x + 288, column.y, buttonWidth('Filters', true), PX.control);
  column.y += PX.control + 16;
  return [crumbs, header, element('div', { class: `${prefix}-Tabs`, role: 'tablist' }, tabs), element('div', { class: `${prefix}-Toolbar` }, column.mobile ? [search] : [search, filter])];
}

/** What a node's entry in a mutation's flat adds takes besides the node: `{"parentId":…,"nextId":…,"node":…}`. */
const FLAT_ADD_CHARS = 40;

/** About how many characters of JSON a draft serializes to, nested in a snapshot or (`flat`) as a mutation's adds: for choosing blocks that fit. */
function draftChars(draft: Draft, flat = false): number {
  const entry = flat ? FLAT_ADD_CHARS : 0;
  if ('text' in draft) return 40 + entry + draft.text.length;
  let chars = 70 + entry + draft.tag.length;
  for (const key in draft.attributes) chars += key.length + draft.attributes[key]!.length + 6;
  for (const child of draft.children) chars += draftChars(child, flat);
  return chars;
}

/** Below this many characters of room, only small blocks; below the tiny limit, only a text node. */
const SMALL_BLOCK_LIMIT = 400;
const TINY_BLOCK_LIMIT = 120;

/**
 * A block of about `chars` characters at most for a page's main column,
 * advancing the column: a drawn block of its kind if it fits, else a short
 * paragraph, else (when very little is missing) the whitespace text a
 * template leaves between elements.
 */
function mainBlock(rng: RandomGenerator, site: Site, column: Column, chars: number): Draft {
  if (chars < TINY_BLOCK_LIMIT) return textNode('\n');
  const y = column.y;
  if (chars >= SMALL_BLOCK_LIMIT) {
    const draft = pick(rng, site.kind === 'docs' ? DOCS_BLOCKS : APP_BLOCKS)(rng, site, column);
    if (draftChars(draft) <= chars) return draft;
    column.y = y;
  }
  const text = `${capitalized(phrase(rng, 3, 12))}.`;
  column.y += (site.kind === 'docs' ? 28 : 20) * linesOf(text.length, site.kind === 'docs' ? 16 : 14, column.width) + 16;
  return element('p', { class: classes(rng, site, site.kind === 'docs' ? '&-Prose' : '&-Panel__text', true) }, [textNode(text)]);
}

/** A block of about `chars` characters at most for the portal: something closed, or whitespace when very little is missing. */
function portalBlock(rng: RandomGenerator, site: Site, chars: number): Draft {
  if (chars < TINY_BLOCK_LIMIT) return textNode('\n');
  const draft = chars >= SMALL_BLOCK_LIMIT ? pick(rng, PORTAL_BLOCKS)(rng, site) : undefined;
  if (draft && draftChars(draft) <= chars) return draft;
  return element('div', { class: `${site.theme.prefix}-Tooltip`, role: 'tooltip' }, [textNode(capitalized(phrase(rng, 1, 5)))]);
}

/** A target a person can aim at: a link, button or field of the page load. */
interface Target {
  id: number;
  box: Box;
  role: number;
  /** A link to another page of the site: following it navigates. */
  navigates: boolean;
}

/** Marks where content goes in a page's serialized JSON: the main column, and the portal closing the body. Control characters nothing else writes. */
const CONTENT_MARK = '\u0007content\u0007';
const PORTAL_MARK = '\u0007portal\u0007';
/** Marks stand-ins for a site's stylesheets in serialized JSON. */
const STYLESHEET_MARK = '\u0007';
/** CSS-in-JS rules an app page has inserted by the time it loads, as emotion keeps them in one <style>. */
const INSERTED_RULES = { min: 20, max: 120 } as const;

/** A rule as CSS-in-JS libraries insert it: a hashed class and declarations that colour rather than move. */
function insertedRule(rng: RandomGenerator): string {
  const declarations = Array.from({ length: between(rng, 1, 4) }, () => pick(rng, QUIET_DECLARATIONS)(rng)).join(' ');
  return `.css-${randomToken(rng, 6).toLowerCase()} { ${declarations} }`;
}

/** The <head> of a page: title, metadata, the linked stylesheets (marked), CSS-in-JS rules, scripts. */
function headDraft(rng: RandomGenerator, site: Site, info: PageInfo, stylesheets: number, bare: boolean): { draft: Draft; cssInJs: Draft | undefined; rules: number } {
  const mark = (index: number) => `${STYLESHEET_MARK}${index}${STYLESHEET_MARK}`;
  const rules = site.kind === 'app' && !bare ? between(rng, INSERTED_RULES.min, INSERTED_RULES.max) : 0;
  const cssInJs = rules > 0 ? element('style', { 'data-emotion': 'css', 'data-s': '', _cssText: Array.from({ length: rules }, () => insertedRule(rng)).join('') }, [], Role.Fixed) : undefined;
  const draft = element('head', {}, [
    element('meta', { charset: 'utf-8' }, [], Role.Fixed),
    element('title', {}, [textNode(bare ? info.title : `${info.title} | ${site.name}`)], Role.Fixed),
    ...(bare ? [] : [element('meta', { name: 'viewport', content: 'width=device-width, initial-scale=1' }, [], Role.Fixed),
      element('meta', { name: 'description', content: sentence(rng) }, [], Role.Fixed)]),
    ...Array.from({ length: stylesheets }, (_, index) => site.kind === 'docs' || bare
      ? element('style', { 'data-href': `/static/css/${index}.css` }, [{ text: mark(index), role: Role.Fixed, style: true }], Role.Fixed)
      : element('link', { rel: 'stylesheet', href: `${site.origin}/static/index-${index}.css`, crossorigin: 'anonymous', _cssText: mark(index) }, [], Role.Fixed)),
    ...(cssInJs ? [cssInJs] : []),
    ...(bare ? [] : site.scripts.map((src) => element('script', { src, defer: '' }, [], Role.Fixed))),
  ], Role.Fixed);
  return { draft, cssInJs, rules };
}

/** The body of a page: its frame (unless `bare`) around the main column, a styled page's start and content until its first viewport is full, and the two content marks. */
function bodyDraft(rng: RandomGenerator, site: Site, layout: Layout, column: Column, info: PageInfo, bare: boolean, styled: boolean): { draft: Draft; route: Draft; main: Draft } {
  const mark = (text: string): Draft => ({ text, role: Role.Fixed });
  const route = element(site.kind === 'docs' ? 'article' : 'div', { class: classes(rng, site, site.kind === 'docs' ? '&-Article' : '&-Page') },
    !styled ? [] : site.kind === 'docs' ? docsIntro(rng, site, column, info) : appIntro(rng, site, column, info), Role.Container);
  // The first viewport's content of a styled page: prose or a table first, as docs and app pages open, then what fits.
  if (styled) (route as { children: Draft[] }).children.push((site.kind === 'docs' ? DOCS_BLOCKS : APP_BLOCKS)[0]!(rng, site, column));
  if (styled) for (let blocks = 1; column.y < layout.height && blocks < 3; blocks++) (route as { children: Draft[] }).children.push(mainBlock(rng, site, column, Infinity));
  (route as { children: Draft[] }).children.push(mark(CONTENT_MARK));
  const main = element('main', { class: classes(rng, site, site.kind === 'docs' ? '&-Main' : '&-AppMain'), id: 'main' }, [route], Role.Fixed);
  placed(main, layout.main.x, layout.main.y, layout.main.width, Number.MAX_SAFE_INTEGER);
  const { prefix } = site.theme;
  const frame: Draft[] = bare ? [main] : site.kind === 'docs'
    ? [element('a', { class: `${prefix}-SrOnly`, href: '#main' }, [textNode('Skip to content')], Role.Fixed), docsHeader(rng, site, layout),
      element('div', { class: `${prefix}-Layout` }, [docsSidebar(rng, site, layout, info), docsRail(site, layout, info.headings), main], Role.Fixed)]
    : [appTopbar(rng, site, layout), element('div', { class: `${prefix}-Shell` }, [appNav(rng, site, layout, info), main], Role.Fixed)];
  const root = bare ? frame : [element('div', { id: 'root' }, frame, Role.Fixed)];
  return { draft: element('body', bare ? {} : { class: classes(rng, site, 'antialiased') }, [...root, mark(PORTAL_MARK)], Role.Fixed), route, main };
}

/**
 * A FullSnapshot's data JSON cut at its two marks (ids `markId` and the
 * next): what comes before the content (without the comma that would
 * separate it from content, which `separator` keeps), what leads from the
 * content to the portal, and what ends it.
 */
function splitAtMarks(json: string, markId: number): { head: string; separator: string; bridge: string; end: string } {
  const markJson = (text: string, id: number) => `{"type":3,"textContent":"${escapeInData(text)}","id":${id}}`;
  const [content, portal] = [markJson(CONTENT_MARK, markId), markJson(PORTAL_MARK, markId + 1)];
  const [contentAt, portalAt] = [json.indexOf(content), json.indexOf(portal)];
  const before = json.slice(0, contentAt);
  const separator = before.endsWith(',') ? ',' : '';
  // Copies, not slices: a slice keeps the whole JSON alive for as long as the page is.
  const copy = (text: string): string => JSON.parse(JSON.stringify(text));
  return { head: separator ? before.slice(0, -1) : before, separator, bridge: copy(json.slice(contentAt + content.length, portalAt)), end: copy(json.slice(portalAt + portal.length)) };
}

/** One flat entry of a mutation's `adds`. */
interface Add {
  parentId: number;
  nextId: number | null;
  node: object;
}

/** A node of a draft as rrweb serializes it: text, or an element with its children (nested in a snapshot, none in an add). */
function serialized(draft: Draft, id: number, childNodes: object[]): object {
  if ('text' in draft) return draft.style ? { type: NodeType.Text, textContent: draft.text, isStyle: true, id } : { type: NodeType.Text, textContent: draft.text, id };
  return draft.svg
    ? { type: NodeType.Element, tagName: draft.tag, attributes: draft.attributes, childNodes, isSVG: true, id }
    : { type: NodeType.Element, tagName: draft.tag, attributes: draft.attributes, childNodes, id };
}

/**
 * One page load of a window, as rrweb's mirror holds it and as its
 * FullSnapshot's JSON is written: the document (ids from 1 in document
 * order), where its parts are (targets and regions, in px), its main
 * column's fill, and the JSON around the content still to come. Content
 * goes into the main column until the page is as tall as it is to be,
 * then into the portal that closes the body, so that the JSON is written
 * front to back and ids stay in document order.
 */
class Page {
  readonly site: Site;
  readonly layout: Layout;
  readonly mirror = new Mirror();
  readonly targets: Target[] = [];
  /** Regions the pointer can be over when over no target: header, sidebars, main, blocks; the smallest holding a point wins. */
  readonly regions: { id: number; box: Box }[] = [];
  /** Lists of the page load whose items scripts re-render, with the maker of new items. */
  readonly lists: { id: number; item: () => Draft }[] = [];
  readonly column: Column;
  /** The FullSnapshot's data JSON before its content, until takeHead hands it over. */
  private head: string;
  /** The route (where content goes), the <main> and <body> elements, the CSS-in-JS <style> (0 if none) and its rules. */
  routeId = 0;
  mainId = 0;
  bodyId = 0;
  styleId = 0;
  styleRules = 0;
  /** The last id of the page load once it is complete (see BrowserWindow). */
  loadMaxId = Infinity;
  private readonly rng: RandomGenerator;
  private readonly ids = { next: 1 };
  /** How tall the main column may grow (px of the page) before content goes to the portal. */
  private readonly heightBudget: number;
  private bridge = '';
  private end = '';
  private portalId = 0;
  private separator = '';

  constructor(site: Site, rng: RandomGenerator, viewport: readonly [number, number], info: PageInfo, stylesheets: number, bare: boolean) {
    this.site = site;
    this.rng = rng;
    this.layout = layoutOf(site.kind, viewport, !bare);
    this.column = { ...this.layout.column, y: this.layout.column.top, mobile: this.layout.mobile, headings: [...info.headings] };
    // Real pages are 1-8 viewports tall, most 2-4.
    this.heightBudget = this.layout.height * (1 + 7 * unit(rng) ** 2);
    const head = headDraft(rng, site, info, stylesheets, bare);
    const body = bodyDraft(rng, site, this.layout, this.column, info, bare, stylesheets > 0);
    const document = { type: NodeType.Document, childNodes: [] as object[], id: this.ids.next++ };
    this.mirror.add(document.id, 0, Role.Fixed);
    const doctypeId = this.ids.next++;
    this.mirror.add(doctypeId, document.id, Role.Fixed);
    document.childNodes.push({ type: NodeType.DocumentType, name: 'html', publicId: '', systemId: '', id: doctypeId });
    document.childNodes.push(this.serialize(element('html', { lang: 'en' }, [head.draft, body.draft], Role.Fixed), document.id, (draft, id) => {
      if (draft === body.route) this.routeId = id;
      else if (draft === body.main) this.mainId = id;
      else if (draft === body.draft) this.bodyId = id;
      else if (draft === head.cssInJs) this.styleId = id;
    }));
    this.styleRules = head.rules;
    // The two marks are the last two nodes in document order: give their ids back.
    this.ids.next -= 2;
    this.mirror.remove(this.ids.next);
    this.mirror.remove(this.ids.next + 1);
    ({ head: this.head, separator: this.separator, bridge: this.bridge, end: this.end } = splitAtMarks(JSON.stringify({ node: document, initialOffset: { left: 0, top: 0 } }), this.ids.next));
  }

  /** The FullSnapshot's data JSON before its content, once: the page lets go of it (100+ kB a session in flight). */
  takeHead(): string {
    const head = this.head;
    this.head = '';
    return head;
  }

  /** JSON that closes the FullSnapshot's data from where content is being written. */
  contentTail(): string {
    return this.portalId ? `],"id":${this.portalId}}${this.end}` : this.bridge.slice(0, -1) + this.end;
  }

  /** The next block of content, about `chars` characters of JSON at most, serialized where content goes now, with what separates it. */
  addContent(chars: number): string {
    this.loadMaxId = Infinity;
    let text = this.separator;
    if (!this.portalId && this.column.y >= this.heightBudget) {
      // The page is as tall as it is to be: open the portal and write there from now on.
      this.portalId = this.ids.next++;
      this.mirror.add(this.portalId, this.bodyId, Role.Container);
      text = `${this.bridge}{"type":${NodeType.Element},"tagName":"div","attributes":{"id":"portal","class":"${this.site.theme.prefix}-Portal"},"childNodes":[`;
    }
    const draft = this.portalId ? portalBlock(this.rng, this.site, chars) : mainBlock(this.rng, this.site, this.column, chars);
    this.separator = ',';
    return text + JSON.stringify(this.serialize(draft, this.portalId || this.routeId));
  }

  /** Ends the page load: what exists now is what it brought. */
  settle(): void {
    if (this.loadMaxId === Infinity) this.loadMaxId = this.ids.next - 1;
  }

  /** The page's height in px as laid out: the main column's content and the padding under it. */
  get height(): number {
    return this.column.y + (this.layout.mobile ? 64 : 96);
  }

  /** The next id to give a node. */
  nextNodeId(): number {
    return this.ids.next;
  }

  /** Serializes drafts as rrweb's snapshot does: nested, ids in document order, each registered in the mirror, targets and regions kept. */
  serialize(draft: Draft, parentId: number, seen?: (draft: Draft, id: number) => void): object {
    const id = this.ids.next++;
    this.mirror.add(id, parentId, draft.role);
    seen?.(draft, id);
    if ('tag' in draft && draft.item) this.lists.push({ id, item: draft.item });
    if ('tag' in draft && draft.box) {
      if (draft.role === Role.Clickable || draft.role === Role.Field) this.targets.push({ id, box: draft.box, role: draft.role, navigates: draft.tag === 'a' && !draft.attributes.href?.startsWith('#') });
      else this.regions.push({ id, box: draft.box });
    }
    return serialized(draft, id, 'tag' in draft ? draft.children.map((child) => this.serialize(child, id, seen)) : []);
  }

  /**
   * Serializes a new subtree as rrweb's mutation observer emits it: flat, one
   * entry a node with `childNodes: []`, each parent before its children,
   * siblings last to first so that `nextId` (the next sibling) exists already.
   */
  flatAdds(draft: Draft, parentId: number, nextId: number | null, adds: Add[]): void {
    const id = this.ids.next++;
    if (nextId) this.mirror.insertBefore(id, parentId, nextId, draft.role);
    else this.mirror.add(id, parentId, draft.role);
    adds.push({ parentId, nextId, node: serialized(draft, id, []) });
    if (!('tag' in draft)) return;
    let next: number | null = null;
    for (let child = draft.children.length - 1; child >= 0; child--) {
      const childId = this.ids.next;
      this.flatAdds(draft.children[child]!, id, next, adds);
      next = childId;
    }
  }

  /** Where a box is in the viewport when the document is scrolled to `scrollY`. */
  viewportY(box: Box, scrollY: number): number {
    return box.fixed ? box.y : box.y - scrollY;
  }

  /** Targets of the page load that still exist and are wholly in view below the header at `scrollY`. */
  visibleTargets(scrollY: number): Target[] {
    const { header, height, width } = this.layout;
    return this.targets.filter(({ id, box }) => {
      const y = this.viewportY(box, scrollY);
      return this.mirror.exists(id) && id <= this.loadMaxId && (box.fixed || y >= header) && y + box.height <= height && box.x + box.width <= width;
    });
  }

  /** The node under a point of the viewport: the smallest target or region there that exists, else the body. */
  hit(x: number, y: number, scrollY: number): number {
    let best = this.bodyId;
    let bestArea = Infinity;
    for (const { id, box } of [...this.targets, ...this.regions]) {
      const top = this.viewportY(box, scrollY);
      const area = box.width * box.height;
      if (x >= box.x && x < box.x + box.width && y >= top && y < top + box.height && area < bestArea && this.mirror.exists(id) && id <= this.loadMaxId) [best, bestArea] = [id, area];
    }
    return best;
  }
}

// --- What the page does by itself: scripts rendering, CSS-in-JS, console, network --------

/** Attribute changes scripts make all the time that move nothing: states, progress, titles. */
const QUIET_ATTRIBUTES: readonly ((rng: RandomGenerator) => Record<string, string>)[] = [
  (rng) => ({ 'aria-busy': String(unit(rng) < 0.5) }),
  (rng) => ({ style: `--tw-translate-y: ${(between(rng, -4000, 4000) / 1000).toFixed(3)}px; --tw-scale: ${(between(rng, 900, 1100) / 1000).toFixed(3)};` }),
  (rng) => ({ 'data-hovered': String(unit(rng) < 0.5) }),
  (rng) => ({ style: `--progress: ${between(rng, 0, 100)}%;` }),
  (rng) => ({ title: capitalized(phrase(rng, 1, 4)) }),
  (rng) => ({ 'data-focus-visible': String(unit(rng) < 0.5) }),
];

/** What makes events of a window's own: the window it reads (its page, site, address) and the window's random stream. */
class WindowPart {
  protected readonly window: BrowserWindow;
  protected readonly rng: RandomGenerator;

  constructor(window: BrowserWindow, rng: RandomGenerator) {
    this.window = window;
    this.rng = rng;
  }
}

/** A mutation's adds stay under this: a render of a few hundred nodes, as the largest real ones (416 adds). */
const MAX_MUTATION_CHARS = 60_000;

/**
 * Characters of JSON a quiet mutation takes: the event around its changes,
 * each change, how many changes one render makes at most, and one change
 * of a `title` but for its text (a scroll correction takes about 75).
 */
const QUIET_CHARS = { base: 90, change: 45, most: 40, titled: 143 } as const;

/** An event if its JSON takes at most `room` characters. */
const fitting = (event: RecordedEvent, room: number): RecordedEvent | undefined => (JSON.stringify(event).length <= room ? event : undefined);

/** A mutation as rrweb records it: removes, adds, then text and attribute changes. */
function mutation(atMs: number, changes: { texts?: object[]; attributes?: object[]; removes?: object[]; adds?: Add[] }): RecordedEvent {
  const { texts = [], attributes = [], removes = [], adds = [] } = changes;
  return incremental(atMs, { source: IncrementalSource.Mutation, texts, attributes, removes, adds });
}

/**
 * The page's own scripts: single-page-app navigations and re-renders of
 * its lists as rrweb's mutation observer records them, quiet attribute and
 * text changes, and (on apps) CSS-in-JS rules inserted into their <style>
 * and declarations set on them (rrweb's StyleSheetRule and
 * StyleDeclaration). Every change names nodes that exist at its time.
 */
class PageScripts extends WindowPart {

  private get page(): Page {
    return this.window.page!;
  }

  /** A single-page-app navigation: the route's content replaced by another page's, about `room` characters of adds; undefined if its start does not fit. */
  navigate(atMs: number, room: number): RecordedEvent | undefined {
    const { page, rng } = this;
    const { site } = page;
    const info = choosePage(site, rng);
    const column: Column = { ...page.layout.column, y: page.layout.column.top, mobile: page.layout.mobile, headings: [...info.headings] };
    const children = site.kind === 'docs' ? docsIntro(rng, site, column, info) : appIntro(rng, site, column, info);
    const goal = Math.min(room, MAX_MUTATION_CHARS) * (0.5 + 0.5 * unit(rng));
    const start = children.reduce((sum, child) => sum + draftChars(child, true), 0);
    if (start > room) return undefined;
    // Blocks are chosen by their nested size; as flat adds they take a third more.
    for (let chars = start; chars < goal; ) {
      const block = mainBlock(rng, site, column, (goal - chars) * 0.7);
      children.push(block);
      chars += draftChars(block, true);
    }
    const removes = [{ parentId: page.mainId, id: page.routeId }];
    page.mirror.remove(page.routeId);
    const adds: Add[] = [];
    const routeId = page.nextNodeId();
    page.flatAdds(element(site.kind === 'docs' ? 'article' : 'div', { class: classes(rng, site, site.kind === 'docs' ? '&-Article' : '&-Page') }, children, Role.Container), page.mainId, null, adds);
    page.routeId = routeId;
    page.column.y = column.y;
    this.window.href = `${site.origin}${site.sections[info.section]!.pages[info.page]!.route}`;
    return mutation(atMs, { removes, adds });
  }

  /** A list re-rendered in place: its first items replaced by new ones like them, as many as about `room` characters hold. */
  render(atMs: number, room: number): RecordedEvent {
    const { page, rng } = this;
    const lists = page.lists.filter((list) => page.mirror.exists(list.id));
    if (lists.length === 0) return this.quiet(atMs, room);
    const list = pick(rng, lists);
    const items: number[] = [];
    for (let child = page.mirror.firstChildOf(list.id); child; child = page.mirror.nextSiblingOf(child)) items.push(child);
    const drafts: Draft[] = [];
    for (let chars = 0; drafts.length < Math.max(1, items.length); ) {
      const draft = list.item();
      const draftSize = draftChars(draft, true);
      if (chars + draftSize > room) break;
      drafts.push(draft);
      chars += draftSize;
    }
    if (drafts.length === 0) return this.quiet(atMs, room);
    const replaced = items.slice(0, drafts.length);
    // What the pointer is over stays: a seeking Replayer hovers it until the next mouse event.
    if (replaced.some((id) => page.mirror.isAncestor(id, this.window.person.pointerId))) return this.quiet(atMs, room);
    const removes = replaced.map((id) => ({ parentId: list.id, id }));
    for (const id of replaced) page.mirror.remove(id);
    // Added last to first, so each one's next sibling exists: the item after the replaced ones, then each new one.
    const adds: Add[] = [];
    let next: number | null = items[drafts.length] ?? null;
    for (let at = drafts.length - 1; at >= 0; at--) {
      const id = page.nextNodeId();
      page.flatAdds(drafts[at]!, list.id, next, adds);
      next = id;
    }
    return mutation(atMs, { removes, adds });
  }

  /**
   * Numbers and states changing in one render, in about `room` characters:
   * live texts (counts, times ago), else attributes that move nothing; with
   * less room than any mutation takes, the scroll position corrected by a
   * few px, as scroll anchoring does when content above loads.
   */
  quiet(atMs: number, room: number): RecordedEvent {
    const { page, rng } = this;
    const changes = Math.max(1, Math.min(QUIET_CHARS.most, Math.floor((room - QUIET_CHARS.base) / QUIET_CHARS.change)));
    const ids = new Set<number>();
    for (let attempt = 0; attempt < 2 * changes && ids.size < changes; attempt++) {
      const id = page.mirror.pick(rng, Role.Live, page.loadMaxId);
      if (id !== undefined) ids.add(id);
    }
    const texts = mutation(atMs, { texts: [...ids].map((id) => ({ id, value: unit(rng) < 0.5 ? grouped(between(rng, 0, 99999)) : String(between(rng, 2, 59)) })) });
    if (ids.size > 0 && fitting(texts, room)) return texts;
    // Attribute changes take about twice a text's room; with little room, a tooltip's text as long as fits.
    for (let attempt = 0; attempt < changes && ids.size < Math.ceil(changes / 2); attempt++) ids.add(page.mirror.pick(rng, Role.Element, page.loadMaxId) ?? page.mainId);
    const attributes = mutation(atMs, { attributes: [...ids].map((id) => ({ id, attributes: pick(rng, QUIET_ATTRIBUTES)(rng) })) });
    const titled = mutation(atMs, { attributes: [{ id: [...ids][0] ?? page.mainId, attributes: { title: capitalized(phrase(rng, 2, 8)).slice(0, Math.max(1, room - QUIET_CHARS.titled)) } }] });
    return fitting(attributes, room) ?? fitting(titled, room) ?? this.window.person.anchor(atMs);
  }

  /** CSS-in-JS inserting the rules of components it renders: appended to its <style>, as emotion does (a quiet change in `room` on pages without). */
  insertRules(atMs: number, room: number): RecordedEvent {
    const { page, rng } = this;
    if (!page.styleId) return this.quiet(atMs, room);
    const adds = Array.from({ length: between(rng, 1, 3) }, () => ({ rule: insertedRule(rng), index: page.styleRules++ }));
    return incremental(atMs, { source: IncrementalSource.StyleSheetRule, id: page.styleId, adds });
  }

  /** A declaration set on one of those rules, as animation and theming code does: a custom property, a delay. */
  setProperty(atMs: number, room: number): RecordedEvent {
    const { page, rng } = this;
    if (!page.styleId || page.styleRules === 0) return this.quiet(atMs, room);
    const property = pick(rng, ['--progress', '--offset', '--scale', 'transition-delay', 'opacity']);
    const value = property === 'transition-delay' ? `${between(rng, 0, 300)}ms` : property === 'opacity' ? String(between(rng, 50, 100) / 100) : String(between(rng, 0, 100));
    return incremental(atMs, { source: IncrementalSource.StyleDeclaration, id: page.styleId, index: [between(rng, 0, page.styleRules - 1)], set: { property, value } });
  }
}

/** Timing values browsers give carry float noise from subtracting clock readings (213.60000002384183). */
const TIMER_NOISE = [0, 0, 0, 2.384185791015625e-8, 1.1920928955078125e-8, -1.1920928955078125e-8];
/** About how many characters of JSON a request takes in a network event, without bodies. */
const REQUEST_CHARS = 1100;

/** What posthog-js records besides rrweb: the console and network plugins' events and its custom events. */
class Telemetry extends WindowPart {

  /** A console message of the site's code, as posthog-js's console plugin records it, its stack trace as deep as `room` characters hold; undefined if none fits. */
  consoleEvent(atMs: number, room = Infinity): RecordedEvent | undefined {
    const { level, payload, trace } = pickPopular(this.rng, this.window.site.console);
    const event = (frames: number) => ({ type: EventType.Plugin, data: { plugin: 'rrweb/console@1', payload: { level, trace: trace.slice(0, frames), payload } }, timestamp: atMs });
    let frames = trace.length;
    while (frames > 1 && JSON.stringify(event(frames)).length > room) frames--;
    return fitting(event(frames), room);
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
    const { rng } = this;
    const { site, href, timeOrigin } = this.window;
    const ms = (value: number) => Math.round(value * 10) / 10 + pick(rng, TIMER_NOISE);
    const startTime = Math.max(0, atMs - timeOrigin - between(rng, 5, 900));
    const durationMs = between(rng, 2, 1500) + unit(rng);
    const endpoint = pick(rng, site.api);
    const name = initiatorType === 'navigation' ? href
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
    const request: Record<string, unknown> = { ...entry, startTime: Math.round(startTime), endTime: Math.round(startTime + durationMs), timeOrigin, timestamp: Math.floor(timeOrigin + startTime) };
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

  /** A network event of the page's fetches: one to three requests, as many as `chars` holds, bodies only where they fit. */
  fetches(atMs: number, chars: number): RecordedEvent {
    return this.networkEvent(atMs, Math.max(1, Math.min(Math.floor(chars / REQUEST_CHARS), between(this.rng, 1, 3))), false, chars);
  }

  custom(atMs: number): RecordedEvent {
    const tag = pick(this.rng, ['window hidden', 'window visible', '$pageview', 'sessionNoLongerIdle']);
    const payload = tag === '$pageview' ? { href: this.window.href } : tag === 'sessionNoLongerIdle' ? { reason: 'user activity', type: 3 } : {};
    return { type: EventType.Custom, data: { tag, payload }, timestamp: atMs };
  }
}

/** posthog-js's own custom events are rare (4-10 a real recording): never a batch's filler when little room is left. */
const CUSTOM_MIN_CHARS = 2000;
/** Console messages, dense text that compresses worst, are no filler for the last room of a batch (see SMALL_ROOM_CHARS). */
const CONSOLE_MIN_CHARS = 1200;
/** With less room than this left in a batch, the person's next event goes before the page's: the page's small events are rare. */
const SMALL_ROOM_CHARS = 1200;
/** A pointer position after a navigation takes at most this many characters of JSON: kept free for it. */
const REHIT_CHARS = 120;
/** The page's own events average about this many characters of JSON, by kind of site: for spreading them over a batch. */
const PAGE_EVENT_CHARS: Record<SiteKind, number> = { docs: 3000, app: 1500 };

/**
 * What the page does by itself, by share of its events and the least room
 * each needs: docs pages fetch, log and change little; apps re-render,
 * insert CSS-in-JS rules and set declarations on them (about half of a real
 * app page's incrementals are such CSSOM changes), fetch and log.
 */
const PAGE_EVENTS: Record<SiteKind, readonly { share: number; minChars: number; make: (window: BrowserWindow, atMs: number, chars: number) => RecordedEvent }[]> = {
  docs: [
    { share: 0.7, minChars: 1500, make: (window, atMs, chars) => window.telemetry.fetches(atMs, chars) },
    { share: 0.2, minChars: CONSOLE_MIN_CHARS, make: (window, atMs, chars) => window.telemetry.consoleEvent(atMs, chars) ?? window.scripts.quiet(atMs, chars) },
    { share: 0.03, minChars: 0, make: (window, atMs, chars) => window.scripts.quiet(atMs, chars) },
    { share: 0.05, minChars: 1500, make: (window, atMs, chars) => window.scripts.render(atMs, chars) },
    { share: 0.01, minChars: CUSTOM_MIN_CHARS, make: (window, atMs) => window.telemetry.custom(atMs) },
  ],
  app: [
    { share: 0.16, minChars: 1500, make: (window, atMs, chars) => window.telemetry.fetches(atMs, chars) },
    { share: 0.06, minChars: CONSOLE_MIN_CHARS, make: (window, atMs, chars) => window.telemetry.consoleEvent(atMs, chars) ?? window.scripts.quiet(atMs, chars) },
    { share: 0.14, minChars: 0, make: (window, atMs, chars) => window.scripts.quiet(atMs, chars) },
    { share: 0.16, minChars: 1500, make: (window, atMs, chars) => window.scripts.render(atMs, chars) },
    { share: 0.22, minChars: 300, make: (window, atMs, chars) => window.scripts.insertRules(atMs, chars) },
    { share: 0.22, minChars: 200, make: (window, atMs, chars) => window.scripts.setProperty(atMs, chars) },
    { share: 0.01, minChars: CUSTOM_MIN_CHARS, make: (window, atMs) => window.telemetry.custom(atMs) },
  ],
};

/**
 * The times of the page's own events in a batch: from its first moment to
 * just before it is sent, about `expected` of them evenly at random; more
 * than expected pile up at the end, as a burst does.
 */
class BatchClock {
  private atMs: number;
  readonly endMs: number;
  private readonly meanStepMs: number;
  private readonly rng: RandomGenerator;

  constructor(rng: RandomGenerator, fromMs: number, sentAtMs: number, expected: number) {
    this.rng = rng;
    this.atMs = fromMs;
    this.endMs = Math.max(fromMs, sentAtMs - 1);
    this.meanStepMs = (this.endMs - fromMs) / Math.max(2, expected);
  }

  /** The next event's time: later than the last (events at one moment replay in no set order), until the end. */
  next(): number {
    this.atMs = Math.min(this.endMs, this.atMs + Math.max(1, Math.floor(2 * this.meanStepMs * unit(this.rng))));
    return this.atMs;
  }
}

// --- The person acting on the page ---------------------------------------------------

/** rrweb's mousemove sampling: a position at most every 50 ms, the positions flushed as one event at most every 500 ms (its two throttles). */
const MOUSEMOVE_SAMPLE_MS = 50;
const MOUSEMOVE_FLUSH_MS = 500;
/** Browsers fire pointer moves once a frame, at 60 Hz, give or take a few ms. */
const FRAME_MS = 1000 / 60;
const FRAME_JITTER_MS = 4;
const FRAME_WITHOUT_EVENT = 0.15;
/** rrweb's scroll sampling: a scroll position at most every 100 ms. */
const SCROLL_SAMPLE_MS = 100;
/** rrweb's MouseInteraction types (@rrweb/types). */
const Interaction = { MouseUp: 0, MouseDown: 1, Click: 2, Focus: 5, Blur: 6 } as const;
/** A movement takes about this long plus Fitts' law's share for each doubling of its distance over the target's size (ms, ms, px). */
const FITTS = { baseMs: 200, perBitMs: 150, widthPx: 40 } as const;
/** Reaches longer than this end in a correction: the fast part falls 4-12% short (and as much aside), as measured hands do. */
const CORRECTED_PX = 250;
const SHORTFALL = { min: 0.04, max: 0.12 } as const;
/** The correction is slower than Fitts' law says for its distance: the hand aims. */
const CORRECTION_SLOWNESS = 1.2;
/** A reading person's hand moves this far on its own now and then (px). */
const FIDGET_PX = { min: 30, max: 160 } as const;
/** A resting hand moves the pointer this far now and then (px). */
const NUDGE_PX = { min: 6, max: 24 } as const;
/** A movement this close to its start or end point is at rest: its first and last few frames are not worth a pointer event. */
const SETTLED_PX = 6;

/** A hand's pointer and rrweb's throttles: when it last flushed positions, and last kept one. */
interface HandState {
  x: number;
  y: number;
  lastFlushMs: number;
  lastSampleMs: number;
}

/** An event a gesture will record, and what recording it changes. */
interface Planned {
  event: RecordedEvent;
  apply?: () => void;
}

/** Minimum-jerk progress along a movement at `t` in [0, 1]: how hands move, slow at both ends. */
const minimumJerk = (t: number) => t * t * t * (10 - 15 * t + 6 * t * t);

/**
 * A hand on the mouse as rrweb records it: the pointer, moved as hands move
 * (Fitts-paced, minimum-jerk, long reaches corrected), its positions kept
 * and flushed as rrweb's two throttles do, as events `record` is given.
 */
class Hand {
  /** Pointer in px of the viewport. */
  x: number;
  y: number;
  /** rrweb's mousemove throttles: when it last flushed, when its pending flush fires, the positions waiting for it, the last kept. */
  lastFlushMs = -Infinity;
  private flushAtMs = Infinity;
  private pending: { x: number; y: number; id: number; atMs: number }[] = [];
  private lastSampleMs = -Infinity;
  private readonly rng: RandomGenerator;
  private readonly record: (planned: Planned) => void;
  /** The page under the hand: its size, and the node at a point of the viewport. */
  private readonly page: () => { width: number; height: number; hit: (x: number, y: number) => number };

  constructor(rng: RandomGenerator, viewport: readonly [number, number], record: (planned: Planned) => void, page: Hand['page']) {
    this.rng = rng;
    this.record = record;
    this.page = page;
    [this.x, this.y] = [between(rng, 0, viewport[0] - 1), between(rng, 0, viewport[1] - 1)];
  }

  /** Where the pointer is and what rrweb's throttles remember: what planning ahead changes and recording sets again. */
  save(): HandState {
    return { x: this.x, y: this.y, lastFlushMs: this.lastFlushMs, lastSampleMs: this.lastSampleMs };
  }

  /** Back to a saved state; positions sampled and not flushed are dropped, as the movement they belonged to was not recorded. */
  restore(state: HandState): void {
    [this.x, this.y, this.lastFlushMs, this.lastSampleMs] = [state.x, state.y, state.lastFlushMs, state.lastSampleMs];
    this.pending = [];
    this.flushAtMs = Infinity;
  }

  /**
   * Moves the pointer to (toX, toY) from `atMs` as hands do: a long reach is
   * a fast movement that falls a little short and to the side, then a slow
   * correction onto the target; then the last positions are flushed.
   * Returns when the hand stops.
   */
  moveTo(toX: number, toY: number, atMs: number): number {
    const distance = Math.hypot(toX - this.x, toY - this.y);
    let stopMs = atMs;
    if (distance >= CORRECTED_PX) {
      const short = 1 - SHORTFALL.min - (SHORTFALL.max - SHORTFALL.min) * unit(this.rng);
      const aside = distance * SHORTFALL.max * (unit(this.rng) - 0.5);
      const [dx, dy] = [(toX - this.x) / distance, (toY - this.y) / distance];
      stopMs = this.submovement(this.x + dx * distance * short - dy * aside, this.y + dy * distance * short + dx * aside, atMs, 1) + between(this.rng, 30, 120);
    }
    stopMs = this.submovement(toX, toY, stopMs, distance >= CORRECTED_PX ? CORRECTION_SLOWNESS : 1);
    if (this.flushAtMs !== Infinity) this.flush(this.flushAtMs);
    return stopMs;
  }

  /** The resting hand nudging the pointer a few px: one position, if rrweb's throttle would flush it at once. */
  nudge(atMs: number): RecordedEvent | undefined {
    if (atMs - this.lastFlushMs < MOUSEMOVE_FLUSH_MS) return undefined;
    const { width, height, hit } = this.page();
    const [distance, angle] = [between(this.rng, NUDGE_PX.min, NUDGE_PX.max), 2 * Math.PI * unit(this.rng)];
    const [x, y] = [Math.min(width - 1, Math.max(0, Math.round(this.x + distance * Math.cos(angle)))), Math.min(height - 1, Math.max(0, Math.round(this.y + distance * Math.sin(angle))))];
    [this.x, this.y, this.lastFlushMs, this.lastSampleMs] = [x, y, atMs, atMs];
    return incremental(atMs, { source: IncrementalSource.MouseMove, positions: [{ x, y, id: hit(x, y), timeOffset: 0 }] });
  }

  /**
   * One movement along a gentle arc to (toX, toY) from `atMs`, at the pace
   * of Fitts' law (`slowness` times it), minimum-jerk; pointer moves come
   * once a frame and rrweb keeps one every 50 ms. Returns when it stops.
   */
  private submovement(toX: number, toY: number, atMs: number, slowness: number): number {
    const { width, height } = this.page();
    const [x1, y1] = [Math.min(width - 1, Math.max(0, toX)), Math.min(height - 1, Math.max(0, toY))];
    const [x0, y0] = [this.x, this.y];
    const distance = Math.hypot(x1 - x0, y1 - y0);
    if (distance < 3) return atMs;
    const durationMs = slowness * (FITTS.baseMs + FITTS.perBitMs * Math.log2(1 + distance / FITTS.widthPx)) * (0.8 + 0.4 * unit(this.rng));
    const bend = (unit(this.rng) - 0.5) * 0.4;
    const [cx, cy] = [(x0 + x1) / 2 - bend * (y1 - y0), (y0 + y1) / 2 + bend * (x1 - x0)];
    const point = (s: number): [number, number] => [(1 - s) ** 2 * x0 + 2 * s * (1 - s) * cx + s * s * x1, (1 - s) ** 2 * y0 + 2 * s * (1 - s) * cy + s * s * y1];
    for (let frame = atMs + FRAME_MS * unit(this.rng); frame < atMs + durationMs + FRAME_MS; frame += FRAME_MS) {
      // Events reach the page a millisecond or two off the frame, and some frames have none: a kept position is 50 to 83 ms after the last.
      const eventMs = Math.round(frame + FRAME_JITTER_MS * (unit(this.rng) - 0.5));
      if (eventMs - this.lastSampleMs < MOUSEMOVE_SAMPLE_MS || unit(this.rng) < FRAME_WITHOUT_EVENT) continue;
      const progress = minimumJerk(Math.min(1, (frame - atMs) / durationMs));
      // A hand starting or settling the last few px is at rest to the eye: it starts later, and lands on the end point then.
      if (progress * distance < SETTLED_PX) continue;
      const [x, y] = point((1 - progress) * distance < SETTLED_PX ? 1 : progress).map(Math.round) as [number, number];
      // A pointer that has not moved a whole pixel fires no event.
      if (x !== this.x || y !== this.y) this.sample(eventMs, x, y);
      if (x === Math.round(x1) && y === Math.round(y1)) break;
    }
    return Math.round(atMs + durationMs);
  }

  /** One kept pointer position, flushed as rrweb's 500 ms throttle does: at once after a quiet spell, else when the spell ends. */
  private sample(atMs: number, x: number, y: number): void {
    // A pending flush fires before a later position; one at its very moment goes with it, as the throttle's own call.
    if (atMs > this.flushAtMs) this.flush(this.flushAtMs);
    this.lastSampleMs = atMs;
    this.pending.push({ x, y, id: this.page().hit(x, y), atMs });
    [this.x, this.y] = [x, y];
    if (atMs - this.lastFlushMs >= MOUSEMOVE_FLUSH_MS) this.flush(atMs);
    else if (this.flushAtMs === Infinity) this.flushAtMs = this.lastFlushMs + MOUSEMOVE_FLUSH_MS;
  }

  private flush(atMs: number): void {
    const positions = this.pending.map(({ x, y, id, atMs: at }) => ({ x, y, id, timeOffset: at - atMs }));
    const state = { x: this.x, y: this.y, lastFlushMs: atMs, lastSampleMs: this.lastSampleMs };
    this.record({ event: incremental(atMs, { source: IncrementalSource.MouseMove, positions }), apply: () => this.restore(state) });
    this.pending = [];
    this.lastFlushMs = atMs;
    this.flushAtMs = Infinity;
  }
}

/** A target in view that passes `wanted`, the nearer to the pointer the likelier: navigation and page content alike. */
function pickTarget(rng: RandomGenerator, page: Page, pointer: { x: number; y: number }, scrollY: number, wanted: (target: Target) => boolean): Target | undefined {
  const candidates = page.visibleTargets(scrollY).filter(wanted);
  if (candidates.length === 0) return undefined;
  const distance = (target: Target) => Math.hypot(target.box.x + target.box.width / 2 - pointer.x, page.viewportY(target.box, scrollY) + target.box.height / 2 - pointer.y);
  const sorted = candidates.sort((a, b) => distance(a) - distance(b));
  return sorted[Math.floor(sorted.length * unit(rng) ** 1.5)];
}

/** A point inside a target to aim at, in px of the viewport: near its middle, toward the start of text, which is where the label surely is. */
function aimAt(rng: RandomGenerator, page: Page, target: Target, scrollY: number): [number, number] {
  const { box } = target;
  const across = Math.min(box.width - 4, Math.max(4, box.width * (0.2 + 0.45 * unit(rng))));
  return [box.x + across, page.viewportY(box, scrollY) + box.height * (0.35 + 0.3 * unit(rng))];
}

/** Reading: a while without a gesture, now and then the hand drifting a little. */
function reading(person: Person, atMs: number): number {
  const { rng, hand } = person;
  const long = person.page.site.kind === 'docs' ? 12_000 : 8_000;
  const durationMs = 1500 + (long - 1500) * unit(rng) ** 2;
  if (unit(rng) < 0.35) {
    const [drift, angle] = [between(rng, 40, 200), 2 * Math.PI * unit(rng)];
    hand.moveTo(hand.x + drift * Math.cos(angle), hand.y + drift * Math.sin(angle), atMs + durationMs * unit(rng) * 0.5);
  }
  return atMs + durationMs;
}

/** Moving to something in view, a link or a button, and lingering over it. */
function wandering(person: Person, atMs: number): number {
  const { rng, page, hand, scrollY } = person;
  const target = pickTarget(rng, page, hand, scrollY, () => true);
  const { column, header, height } = page.layout;
  const [x, y] = target ? aimAt(rng, page, target, scrollY) : [between(rng, column.x, column.x + column.width), between(rng, header + 20, height - 20)];
  return hand.moveTo(x, y, atMs) + between(rng, 200, 1200);
}

/** Moving to a link or button in view and clicking it. */
function clicking(person: Person, atMs: number): number {
  const target = pickTarget(person.rng, person.page, person.hand, person.scrollY, (candidate) => candidate.role === Role.Clickable);
  return target ? person.press(target, atMs) + between(person.rng, 400, 2500) : wandering(person, atMs);
}

/** Clicking a field in view and typing into it, a key every 80-260 ms; posthog-js masks what is typed. */
function typing(person: Person, atMs: number): number {
  const { rng } = person;
  const target = pickTarget(rng, person.page, person.hand, person.scrollY, (candidate) => candidate.role === Role.Field);
  if (!target) return clicking(person, atMs);
  let at = person.press(target, atMs) + between(rng, 150, 600);
  let typed = 0;
  for (let keys = between(rng, 3, 24); keys > 0; keys--, at += between(rng, 80, 260)) {
    typed = typed > 0 && unit(rng) < 0.08 ? typed - 1 : typed + 1;
    person.record({ event: incremental(at, { source: IncrementalSource.Input, text: '*'.repeat(typed), isChecked: false, id: target.id }) });
  }
  return at + between(rng, 300, 1500);
}

/** Scrolling the document by wheel or trackpad: steps every 100 ms or so, large first, then easing off; content comes into view. */
function scrolling(person: Person, atMs: number): number {
  const { rng, page, scrollY } = person;
  const maxScroll = Math.max(0, Math.round(page.height - page.layout.height));
  if (maxScroll < 40) return wandering(person, atMs);
  const down = scrollY < maxScroll - 40 && (scrollY < 80 || unit(rng) < 0.75);
  const distance = Math.min(down ? maxScroll - scrollY : scrollY, between(rng, 150, 1200));
  const steps = between(rng, 2, 5);
  const decay = 0.55 + 0.3 * unit(rng);
  const total = (1 - decay ** steps) / (1 - decay);
  let [y, at, moved] = [scrollY, atMs, 0];
  for (let step = 0; step < steps; step++, at += SCROLL_SAMPLE_MS + between(rng, 0, 12)) {
    moved += (distance * decay ** step) / total;
    const to = Math.round(down ? scrollY + moved : scrollY - moved);
    if (to === y) continue;
    y = to;
    person.record({ event: incremental(at, { source: IncrementalSource.Scroll, id: 1, x: 0, y: to }), apply: () => (person.scrollY = to) });
  }
  person.scrollY = y;
  return at + between(rng, 300, 2500);
}

/**
 * The window's height changing (a browser bar, a dock): width stays, so the
 * layout's columns do; a taller window past the page's end scrolls it back
 * the next frame, as browsers clamp the scroll position.
 */
function resizing(person: Person, atMs: number): number {
  const { layout, height: pageHeight } = person.page;
  const height = Math.max(400, layout.height + between(person.rng, -120, 120));
  person.record({ event: incremental(atMs, { source: IncrementalSource.ViewportResize, width: layout.width, height }), apply: () => (layout.height = height) });
  const to = Math.min(person.scrollY, Math.max(0, Math.round(pageHeight - height)));
  if (to < person.scrollY) {
    person.record({ event: incremental(atMs + between(person.rng, 1, Math.round(FRAME_MS)), { source: IncrementalSource.Scroll, id: 1, x: 0, y: to }), apply: () => (person.scrollY = to) });
    person.scrollY = to;
  }
  return atMs + between(person.rng, 500, 3000);
}

/**
 * What a person does next, by share of gestures on each kind of site: on
 * docs mostly reading, moving and scrolling, few clicks; on apps more
 * clicks and typing. Between gestures they read.
 */
const GESTURES: readonly ({ act: (person: Person, atMs: number) => number } & Record<SiteKind, number>)[] = [
  { act: reading, docs: 0.36, app: 0.25 },
  { act: wandering, docs: 0.45, app: 0.3 },
  { act: scrolling, docs: 0.08, app: 0.06 },
  { act: clicking, docs: 0.07, app: 0.28 },
  { act: typing, docs: 0.03, app: 0.1 },
  { act: resizing, docs: 0.01, app: 0.01 },
];

/**
 * A person at a window: a hand on the mouse, the scroll position, what has
 * focus, and the gesture under way as the events rrweb will record of it
 * (mouse positions, interactions, scrolls, input). Gestures come from
 * GESTURES; between them the person reads.
 */
class Person {
  scrollY = 0;
  /** When the next gesture may start. */
  freeAtMs = 0;
  /** The node the last recorded mouse event names: what a seeking Replayer hovers until the next one. */
  pointerId = 0;
  readonly hand: Hand;
  readonly rng: RandomGenerator;
  private current: Page | undefined;
  private focused = 0;
  private readonly react: (target: Target, atMs: number) => void;
  private queue: Planned[] = [];

  constructor(rng: RandomGenerator, viewport: readonly [number, number], react: (target: Target, atMs: number) => void) {
    this.rng = rng;
    this.react = react;
    this.hand = new Hand(rng, viewport, (planned) => this.record(planned), () => ({
      width: this.page.layout.width, height: this.page.layout.height, hit: (x, y) => this.page.hit(x, y, this.scrollY),
    }));
  }

  get page(): Page {
    return this.current!;
  }

  /** A new page loaded at `atMs`: at its top, nothing focused, a recorder restarted; the pointer stays where the hand left it. */
  onLoad(page: Page, atMs: number): void {
    this.current = page;
    this.scrollY = 0;
    this.focused = 0;
    this.pointerId = 0;
    this.queue = [];
    this.hand.restore({ x: this.hand.x, y: this.hand.y, lastFlushMs: -Infinity, lastSampleMs: -Infinity });
    this.freeAtMs = atMs + between(this.rng, 300, 2000);
  }

  /** A batch starts: what was planned and not recorded by the last one's end did not happen (the hand is where the recorded events left it). */
  startBatch(): void {
    this.queue = [];
  }

  /** Plans an event of the gesture under way, and what recording it changes. */
  record(planned: Planned): void {
    this.queue.push(planned);
  }

  /** When the next event of the gesture under way happens, planning a gesture from `atMs` if none is and one ends before `endMs`. */
  nextAt(atMs: number, endMs: number): number {
    // What the hand was reaching for went away (the page re-rendered): the gesture ends there.
    const target = (this.queue[0]?.event.data as { source: number; id?: number } | undefined);
    if (target && target.source !== IncrementalSource.MouseMove && target.id !== undefined && target.id > 1 && !this.page.mirror.exists(target.id)) this.queue = [];
    const startMs = Math.round(Math.max(atMs, this.freeAtMs));
    if (this.queue.length === 0 && this.current && startMs < endMs) this.plan(startMs, endMs);
    return this.queue[0]?.event.timestamp ?? Infinity;
  }

  /** Characters of JSON the next event takes. */
  nextChars(): number {
    return JSON.stringify(this.queue[0]!.event).length;
  }

  /** The next event of the gesture under way, as recorded now: positions on nodes that still exist. */
  take(): RecordedEvent {
    const { event, apply } = this.queue.shift()!;
    apply?.();
    const data = event.data as { source: number; id?: number; x?: number; positions?: { id: number }[] };
    for (const position of data.positions ?? []) if (!this.page.mirror.exists(position.id)) position.id = this.page.mainId;
    this.pointerId = data.positions?.at(-1)?.id ?? (data.source === IncrementalSource.MouseInteraction && data.x !== undefined ? data.id! : this.pointerId);
    return event;
  }

  /** The hand of a person reading moving a little from `atMs`, if that ends before `endMs`: when its first event comes, else Infinity. */
  fidget(atMs: number, endMs: number): number {
    if (this.queue.length > 0) return this.queue[0]!.event.timestamp;
    const [drift, angle] = [between(this.rng, FIDGET_PX.min, FIDGET_PX.max), 2 * Math.PI * unit(this.rng)];
    const hand = this.hand.save();
    this.hand.moveTo(this.hand.x + drift * Math.cos(angle), this.hand.y + drift * Math.sin(angle), Math.round(atMs));
    this.hand.restore(hand);
    if (this.queue.some((planned) => planned.event.timestamp >= endMs)) this.queue = [];
    return this.queue[0]?.event.timestamp ?? Infinity;
  }

  /**
   * The pointer, unmoved, over what the page put under it: as Chrome fires a
   * mouse event when the layout changes under a still pointer, rrweb records
   * a position. Undefined if it does not fit in `room`.
   */
  rehit(atMs: number, room: number): RecordedEvent | undefined {
    const id = this.page.hit(this.hand.x, this.hand.y, this.scrollY);
    const event = fitting(incremental(atMs, { source: IncrementalSource.MouseMove, positions: [{ x: this.hand.x, y: this.hand.y, id, timeOffset: 0 }] }), room);
    if (event) {
      this.pointerId = id;
      this.hand.restore({ ...this.hand.save(), lastFlushMs: atMs, lastSampleMs: atMs });
    }
    return event;
  }

  /**
   * The smallest event a window makes: the resting hand nudging the pointer
   * (if nothing is under way), else the document's scroll corrected by a few
   * px, as scroll anchoring does when content above it loads.
   */
  anchor(atMs: number): RecordedEvent {
    const nudge = this.queue.length === 0 ? this.hand.nudge(atMs) : undefined;
    if (nudge) {
      this.pointerId = (nudge.data as { positions: { id: number }[] }).positions[0]!.id;
      return nudge;
    }
    this.scrollY = Math.min(this.scrollY + between(this.rng, 1, 24), Math.max(this.scrollY + 1, Math.round(this.page.height - this.page.layout.height)));
    return incremental(atMs, { source: IncrementalSource.Scroll, id: 1, x: 0, y: this.scrollY });
  }

  /** Moving to a target and pressing it: down, focus, up, click, as rrweb records them, after the last positions are flushed. */
  press(target: Target, atMs: number): number {
    const [x, y] = aimAt(this.rng, this.page, target, this.scrollY);
    const stopMs = this.hand.moveTo(x, y, atMs);
    let at = Math.max(stopMs + between(this.rng, 80, 450), this.hand.lastFlushMs + between(this.rng, 5, 60));
    const [px, py] = [this.hand.x + unit(this.rng), this.hand.y + unit(this.rng)];
    const interaction = (type: number, extra: object = {}) => incremental(at, { source: IncrementalSource.MouseInteraction, type, id: target.id, ...extra });
    this.record({ event: interaction(Interaction.MouseDown, { x: px, y: py }) });
    if (this.focused !== target.id) {
      const previous = this.focused;
      if (previous) this.record({ event: incremental(at, { source: IncrementalSource.MouseInteraction, type: Interaction.Blur, id: previous }) });
      this.record({ event: interaction(Interaction.Focus), apply: () => (this.focused = target.id) });
      this.focused = target.id;
    }
    at += between(this.rng, 60, 160);
    this.record({ event: interaction(Interaction.MouseUp, { x: px, y: py }) });
    this.record({ event: interaction(Interaction.Click, { x: Math.floor(px), y: Math.floor(py), pointerType: 0 }), apply: () => this.react(target, at) });
    return at;
  }

  private plan(startMs: number, endMs: number): void {
    const { kind } = this.page.site;
    const gesture = pickWeighted(this.rng, GESTURES, (candidate) => candidate[kind]);
    const saved = { scrollY: this.scrollY, focused: this.focused };
    const hand = this.hand.save();
    const freeAtMs = gesture.act(this, startMs);
    // Planning moved the pointer and the page ahead of the events; recording them moves them again, in order.
    Object.assign(this, saved);
    this.hand.restore(hand);
    // A gesture that would not end within this batch does not start: the person waits instead.
    const ends = this.queue.every((planned) => planned.event.timestamp < endMs);
    if (!ends) this.queue = [];
    this.freeAtMs = ends ? Math.round(freeAtMs) : endMs;
  }
}

// --- The window: a page, the person at it, and a batch's events in time order ----------

const VIEWPORTS = [[1280, 800], [1440, 900], [1512, 823], [1920, 1080], [1366, 768], [1470, 709], [390, 844], [412, 915]] as const;

/**
 * A page load as rrweb records it: the Meta event, the FullSnapshot's JSON
 * up to where its content goes (`head`, with stylesheet marks), and what
 * posthog-js adds right after (its recorder-start custom events, the page
 * view, the initial network requests). Content follows with the window's
 * `addContent` until the payload is the size it is to be; `contentTail`
 * closes it.
 */
interface PageLoad {
  meta: RecordedEvent;
  head: string;
  timestamp: number;
  /** The site's stylesheets the page links, which the head marks as `\u0007<index>\u0007`. */
  stylesheets: Stylesheet[];
  after: RecordedEvent[];
}

/**
 * The browser window a session records: its viewport, the page loaded in
 * it, the person at it, the page's scripts and posthog-js's plugins. For a
 * batch it yields events in time order: the person's gestures, what the
 * page does in reply (a link followed), and the page's own events, as
 * many as the batch's size needs. Clicks, scrolls, input and mouse
 * positions go to nodes of the page load: rrweb's Replayer, seeking, looks
 * nodes up in the live page while nodes added since exist only in its
 * virtual DOM.
 */
class BrowserWindow {
  readonly site: Site;
  readonly viewport: readonly [number, number];
  href = '';
  timeOrigin = 0;
  page: Page | undefined;
  readonly person: Person;
  readonly scripts: PageScripts;
  readonly telemetry: Telemetry;
  private readonly rng: RandomGenerator;
  /** When this window's recorder started (its first furnished page load, which a retry of that load repeats). */
  private startedAt: number | undefined;
  /** What the page owes in reply to the person, in time order. */
  private reactions: { atMs: number; make: (room: number) => RecordedEvent | undefined }[] = [];
  private clock: BatchClock | undefined;
  private pageAtMs = Infinity;
  private lastMs = 0;

  constructor(site: Site, rng: RandomGenerator) {
    this.site = site;
    this.rng = rng;
    this.viewport = pick(rng, VIEWPORTS);
    this.person = new Person(rng, this.viewport, (target, atMs) => this.react(target, atMs));
    this.scripts = new PageScripts(this, rng);
    this.telemetry = new Telemetry(this, rng);
  }

  /**
   * Loads a page at `atMs`: a new document with `stylesheets`, furnished
   * with its frame unless `bare`; and what posthog-js records with it: its
   * recorder-start events (on the window's first page, unless `bare`), the
   * page view and `initialRequests` network entries.
   */
  load(atMs: number, stylesheets: Stylesheet[], bare: boolean, initialRequests: number): PageLoad {
    const { rng, site } = this;
    const info = choosePage(site, rng);
    this.href = `${site.origin}${site.sections[info.section]!.pages[info.page]!.route}`;
    this.timeOrigin = atMs - between(rng, 300, 3000);
    this.page = new Page(site, rng, this.viewport, info, stylesheets.length, bare);
    this.reactions = [];
    const timestamp = atMs + between(rng, 16, 73); // rrweb's Meta comes 16-73 ms before its FullSnapshot
    const [width, height] = this.viewport;
    const meta: RecordedEvent = { type: EventType.Meta, data: { href: this.href, width, height }, timestamp: atMs };
    const after: RecordedEvent[] = [];
    let at = timestamp + between(rng, 1, 20);
    if (!bare && (this.startedAt ?? atMs) === atMs) {
      for (const { tag, payload } of site.recorderStart) after.push({ type: EventType.Custom, data: { tag, payload }, timestamp: at++ });
      this.startedAt = atMs;
    }
    if (!bare) after.push({ type: EventType.Custom, data: { tag: '$pageview', payload: { href: this.href } }, timestamp: at++ });
    if (initialRequests > 0) after.push(this.telemetry.networkEvent(at + between(rng, 50, 400), initialRequests, true));
    this.person.onLoad(this.page, timestamp);
    return { meta, head: this.page.takeHead(), timestamp, stylesheets, after };
  }

  /** One more block of the page load's content, serialized in place, of about `chars` characters at most. */
  addContent(chars: number): string {
    return this.page!.addContent(chars);
  }

  /** JSON that closes the page load's FullSnapshot data. */
  contentTail(): string {
    return this.page!.contentTail();
  }

  /** Starts a batch of events from `fromMs` to just before `sentAtMs`, about `chars` characters of JSON: the page's own events spread over it. */
  startBatch(fromMs: number, sentAtMs: number, chars: number): void {
    this.page!.settle();
    this.clock = new BatchClock(this.rng, fromMs, sentAtMs, chars / PAGE_EVENT_CHARS[this.site.kind]);
    this.pageAtMs = Infinity;
    this.lastMs = fromMs;
    this.person.startBatch();
  }

  /** The batch's next event, of about `room` characters of JSON at most: whichever comes first of the person's, a reply, the page's own. */
  nextEvent(room: number): RecordedEvent {
    const clock = this.clock!;
    if (this.pageAtMs === Infinity) this.pageAtMs = Math.max(clock.next(), this.lastMs);
    let personAtMs = this.person.nextAt(this.lastMs, clock.endMs);
    const reaction = this.reactions[0];
    // Little room left on a page that changes little: a reading person's hand moves on its own now and then.
    if (room < SMALL_ROOM_CHARS && personAtMs === Infinity && this.site.kind === 'docs') personAtMs = this.person.fidget(this.lastMs, Math.min(clock.endMs, reaction?.atMs ?? Infinity));
    if (reaction && reaction.atMs <= Math.min(personAtMs, this.pageAtMs)) {
      this.reactions.shift();
      const event = reaction.make(room);
      return event ? this.emit(event) : this.nextEvent(room);
    }
    let personChars: number | undefined;
    const personFits = () => (personChars ??= this.person.nextChars()) <= room;
    // The person's next event when it comes first, or when little room is left and it fits (before any reply): the page's event then comes after it.
    if (personAtMs <= this.pageAtMs || (room < SMALL_ROOM_CHARS && personAtMs <= (reaction?.atMs ?? Infinity) && personAtMs < Infinity && personFits())) {
      if (personAtMs > this.pageAtMs) this.pageAtMs = Infinity;
      // Near the batch's size a person's event may not fit: a live text changes then instead.
      return this.emit(personFits() ? this.person.take() : this.scripts.quiet(personAtMs, room));
    }
    const atMs = this.pageAtMs;
    this.pageAtMs = Infinity;
    // Of the page's events that fit, one by their shares.
    const fits = PAGE_EVENTS[this.site.kind].filter((kind) => kind.minChars <= room);
    if (fits.length === 0) return this.emit(this.scripts.quiet(atMs, room));
    const kind = pickWeighted(this.rng, fits, (candidate) => candidate.share);
    return this.emit(kind.make(this, atMs, room));
  }

  /** A large event for a batch that has all the events it may have but not its size: a navigation of about `room` characters, or a re-render. */
  largeEvent(room: number): RecordedEvent {
    const atMs = Math.max(this.pageAtMs === Infinity ? this.clock!.next() : this.pageAtMs, this.lastMs);
    this.pageAtMs = Infinity;
    return this.emit(this.navigation(atMs, room) ?? this.scripts.render(atMs, room));
  }

  private emit(event: RecordedEvent): RecordedEvent {
    this.lastMs = Math.max(this.lastMs, event.timestamp);
    return event;
  }

  /** The page's reply to a click: a link of the site followed (a navigation, the document back at its top, a page view), or a state changing. */
  private react(target: Target, atMs: number): void {
    const { rng } = this;
    const at = atMs + between(rng, 40, 400);
    if (!target.navigates) {
      this.reactions.push({ atMs: at, make: (room) => fitting(mutation(at, { attributes: [{ id: target.id, attributes: { 'aria-expanded': String(unit(rng) < 0.5) } }] }), room) });
      return;
    }
    // The new route renders once the pointer's last positions are flushed, so the position after it is rrweb's next.
    const navigateAt = Math.max(at, this.person.hand.lastFlushMs + MOUSEMOVE_FLUSH_MS);
    this.reactions.push({ atMs: navigateAt, make: (room) => this.navigation(navigateAt, room) });
  }

  /**
   * A single-page-app navigation at `at` in about `room` characters, and
   * what comes right after it: the pointer over the new content, the
   * document back at its top, a page view.
   */
  private navigation(at: number, room: number): RecordedEvent | undefined {
    const event = this.scripts.navigate(at, room - REHIT_CHARS);
    if (!event) return undefined;
    const top = (fits: number) => {
      const scroll = fitting(incremental(at + 1, { source: IncrementalSource.Scroll, id: 1, x: 0, y: 0 }), fits);
      if (scroll) this.person.scrollY = 0;
      return scroll;
    };
    this.reactions.unshift(
      { atMs: at, make: (fits: number) => this.person.rehit(at, fits) },
      ...(this.person.scrollY > 0 ? [{ atMs: at + 1, make: top }] : []),
      { atMs: at + 2, make: (fits: number) => fitting({ type: EventType.Custom, data: { tag: '$pageview', payload: { href: this.href } }, timestamp: at + 2 }, fits) },
    );
    return event;
  }
}

// ===========================================================================
// 4. Compression: gzip members (RFC 1952) assembled from deflate pieces
// (RFC 1951) joined at flush points: fresh text compressed as it comes,
// with the previous 32 KiB as its dictionary, so the pieces read as one
// stream; a site's stylesheets compressed once and spliced into every page
// that links them; the last piece finished by the trial that sized it, and
// then a page load's closing events, compressed once on their own. Legacy's
// UTF-16 is compressed as its ASCII and the stream rewritten (widenDeflate).
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
 * zlib level 6, fflate's default, which posthog-js uses: members made here,
 * in pieces, come out 0.3-1.0% heavier than posthog-js's fflate 0.4 makes
 * of the same text (three seeds of `--format snapshot-items --count 12`; at
 * level 5, 2.0-2.6%). Legacy members, compressed as ASCII and rewritten as
 * UTF-16 (widenDeflate), come out 4.2% heavier than the legacy capture's
 * Python gzip (zlib level 9) of the same text (`--payload rrweb --count
 * 30`; 3.4% when zlib compressed the UTF-16 itself).
 */
const COMPRESSION = { level: 6 };

/**
 * The work compression has done in this process, for the bench: bytes of
 * text the finished members carry, of which `reused` were spliced in
 * compressed before from the `stylesheets` bytes compressed once each;
 * bytes fed to deflate (trials and reuse make it differ) and bytes of
 * dictionaries deflate was primed with.
 *
 * @example
 * const { text, reused, stylesheets, input } = compressionWork;
 * input / (text - reused + stylesheets); // 1.0 when each byte is compressed once
 */
export const compressionWork = { text: 0, reused: 0, stylesheets: 0, input: 0, dictionary: 0 };

/** deflateRawSync, counted in compressionWork in bytes of the text compressed (`textBytesPerByte` of them a byte given). */
function deflate(bytes: Uint8Array, options: ZlibOptions, textBytesPerByte = 1): Buffer {
  compressionWork.input += textBytesPerByte * bytes.length;
  compressionWork.dictionary += textBytesPerByte * ((options.dictionary as Uint8Array | undefined)?.length ?? 0);
  return deflateRawSync(bytes, options);
}

/**
 * Fresh text is compressed in pieces of at most this many bytes, each
 * continuing the stream before it, ending at a flush point. A flush point
 * costs little between pieces of a few kB or more: a batch of events cut
 * in 2-4 pieces measured 0-17 bytes a cut larger (the block header it adds
 * is offset by codes fitted to each part).
 */
const PIECE_BYTES = 256 * 1024;
/** Deflate reaches back 32 KiB: the dictionary a piece needs to continue the stream. */
const WINDOW_BYTES = 32 * 1024;
/**
 * A trial commits open text of this many bytes first: it stays compressed,
 * so a byte is compressed again only while the open text is smaller. Text
 * committed at every trial came out 1.1% larger in batches under 20 kB, a
 * few characters as a block of its own (0.7 bytes a character of UTF-16 in
 * one such round, where the open text recompressed whole takes 0.3); at
 * 8 KiB the size is as at 32 KiB, and the input deflate is fed 15% smaller.
 */
const TRIAL_PIECE_BYTES = 8 * 1024;
/**
 * A trial's dictionary: priming 32 KiB took more time than compressing the
 * few kB a trial holds. Measured on legacy pieces, 8 KiB makes the last
 * piece about 1% larger than 32 KiB does.
 */
const TRIAL_DICTIONARY_BYTES = 8 * 1024;

/** How many characters a byte takes once its latin1 character is escaped in a JSON string: `"` `\` and controls grow. */
const ESCAPED_CHARS = Uint8Array.from({ length: 256 }, (_, byte) => JSON.stringify(String.fromCharCode(byte)).length - 2);
/** Characters of a latin1 string of `bytes` once escaped in JSON. */
function escapedLength(bytes: Uint8Array): number {
  let length = 0;
  for (let at = 0; at < bytes.length; at++) length += ESCAPED_CHARS[bytes[at]!]!;
  return length;
}

/**
 * How text becomes bytes before compression: legacy payloads are UTF-16LE
 * (held as their ASCII until compressed, see widenDeflate); posthog-js's
 * compressed fields UTF-8.
 */
type TextEncoding = 'utf16le' | 'utf8';
/** Bytes of a member's text that a byte a writer holds stands for: legacy's ASCII, 2 of UTF-16. */
const TEXT_BYTES_PER_BYTE: Record<TextEncoding, number> = { utf16le: 2, utf8: 1 };

/** CRC-32's polynomial, reflected, as zlib and gzip use it. */
const CRC32_POLYNOMIAL = 0xedb88320;

/** a(x) b(x) modulo CRC-32's polynomial, in its reflected form (zlib's multmodp). */
function multiplyModPolynomial(a: number, b: number): number {
  let product = 0;
  for (let bit = 0x80000000; bit !== 0; bit >>>= 1) {
    if (a & bit) product ^= b;
    b = b & 1 ? (b >>> 1) ^ CRC32_POLYNOMIAL : b >>> 1;
  }
  return product >>> 0;
}

/** x^(2^k) modulo the polynomial, k = 0..31: x^(8n) for any n is a product of these. */
const X_POWERS = Array.from({ length: 32 }, () => 0);
X_POWERS[0] = 1 << 30; // x^1, reflected
for (let k = 1; k < 32; k++) X_POWERS[k] = multiplyModPolynomial(X_POWERS[k - 1]!, X_POWERS[k - 1]!);

/**
 * The CRC-32 of two texts one after the other, from each one's CRC and the
 * second one's length (zlib's crc32_combine): a text spliced in compressed
 * need not keep its bytes to be checked.
 *
 * @example
 * crc32Combine(crc32(a), crc32(b), b.length) === crc32(Buffer.concat([a, b])); // true
 */
export function crc32Combine(first: number, second: number, secondLength: number): number {
  let power = 0x80000000; // x^0
  // x^(8 secondLength), by the bits of the length: k starts at 3 as a byte is 2^3 bits.
  for (let k = 3, n = secondLength; n > 0; k++, n = Math.floor(n / 2)) {
    if (n % 2) power = multiplyModPolynomial(X_POWERS[k % 32]!, power);
  }
  return (multiplyModPolynomial(power, first) ^ second) >>> 0;
}

/**
 * Legacy text is ASCII in UTF-16LE: every second byte a zero. zlib takes
 * twice as long over those bytes as over the ASCII (1,230 ms against 570
 * for the 58 MB of ASCII a legacy `--count 12` carries), so the ASCII is
 * compressed and its deflate stream rewritten as the UTF-16 one: a literal
 * becomes the literal and a zero, a match of L characters D back one of 2L
 * bytes 2D back. zlib writes the ASCII's stream with fixed codes, quick to
 * read; each of its blocks is written again with codes fitted to it (or
 * fixed ones, when smaller), as zlib would. In a legacy `--count 50`
 * profile, zlib's time fell from 5.0 s to 2.2 s and rewriting takes 1.4 s;
 * the members come out 0.8% larger than zlib makes of the UTF-16.
 */
export const ASCII_FOR_UTF16: ZlibOptions = { level: COMPRESSION.level, windowBits: 14, strategy: zlibConstants.Z_FIXED };
/** The 16 KiB window (windowBits 14) keeps every match's distance, doubled, within deflate's 32 KiB. */
const ASCII_WINDOW_BYTES = 16 * 1024;

/** Deflate's length codes (257-285) and distance codes: the least value each stands for, and its extra bits. */
const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DISTANCE_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DISTANCE_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const END_OF_BLOCK = 256;
const MAX_MATCH = 258;
/** The order a dynamic block lists its code-length code's lengths in. */
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
/** The length code (0-28) of each match length, and the distance code of each distance up to 32 KiB. */
const LENGTH_CODE = new Uint8Array(MAX_MATCH + 1);
for (let code = 0; code < LENGTH_BASE.length; code++) LENGTH_CODE.fill(code, LENGTH_BASE[code]!, Math.min(MAX_MATCH, LENGTH_BASE[code]! + (1 << LENGTH_EXTRA[code]!)));
LENGTH_CODE[MAX_MATCH] = LENGTH_BASE.length - 1;
const DISTANCE_CODE = new Uint8Array(32_769);
for (let code = 0; code < DISTANCE_BASE.length; code++) DISTANCE_CODE.fill(code, DISTANCE_BASE[code]!, DISTANCE_BASE[code]! + (1 << DISTANCE_EXTRA[code]!));

/** Huffman codes as deflate writes them: canonical for `lengths`, bits reversed as the stream is read from the low bit. */
function canonicalCodes(lengths: Uint8Array): Uint16Array {
  const perLength = new Uint16Array(16);
  for (const length of lengths) perLength[length]!++;
  perLength[0] = 0;
  const next = new Uint16Array(16);
  for (let bits = 1, code = 0; bits < 16; bits++) next[bits] = code = (code + perLength[bits - 1]!) << 1;
  const codes = new Uint16Array(lengths.length);
  for (let symbol = 0; symbol < lengths.length; symbol++) {
    const length = lengths[symbol]!;
    if (length === 0) continue;
    let code = next[length]!++;
    let reversed = 0;
    for (let bit = 0; bit < length; bit++, code >>= 1) reversed = (reversed << 1) | (code & 1);
    codes[symbol] = reversed;
  }
  return codes;
}

/** The fixed codes' lengths: literals 0-143 8 bits, 144-255 9, 256-279 7, 280-287 8; distances 5. */
const FIXED_LENGTHS = Uint8Array.from({ length: 288 }, (_, symbol) => (symbol < 144 ? 8 : symbol < 256 ? 9 : symbol < 280 ? 7 : 8));
const FIXED_DISTANCE_LENGTHS = new Uint8Array(30).fill(5);
const FIXED_CODES = canonicalCodes(FIXED_LENGTHS);
const FIXED_DISTANCE_CODES = canonicalCodes(FIXED_DISTANCE_LENGTHS);
/** The fixed literal/length code read from the next 9 bits: the symbol, and its length times 65536. */
const FIXED_DECODE = new Uint32Array(512);
for (let symbol = 0; symbol < 288; symbol++) {
  const length = FIXED_LENGTHS[symbol]!;
  for (let high = 0; high < 1 << (9 - length); high++) FIXED_DECODE[FIXED_CODES[symbol]! | (high << length)] = symbol | (length << 16);
}
const FIXED_DISTANCE_DECODE = new Uint8Array(32);
for (let symbol = 0; symbol < 30; symbol++) FIXED_DISTANCE_DECODE[FIXED_DISTANCE_CODES[symbol]!] = symbol;

/**
 * Huffman code lengths of at most `limit` bits for symbols of `counts`
 * (none for those never used; at least two used, as inflate needs). Over
 * the limit, counts are halved until it fits: rare, and close to optimal.
 */
function codeLengths(counts: Uint32Array, limit: number): Uint8Array {
  const { weights, weight, symbols, parent, depth } = huffmanScratch;
  let used = 0;
  for (let symbol = 0; symbol < counts.length; symbol++) {
    weights[symbol] = counts[symbol]!;
    if (counts[symbol]! > 0) used++;
  }
  for (let symbol = 0; used < 2; symbol++) {
    if (weights[symbol] === 0) {
      weights[symbol] = 1;
      used++;
    }
  }
  const lengths = new Uint8Array(counts.length);
  for (;;) {
    // The leaves in order of weight (then symbol), as one number each so that the typed array sorts them natively.
    let leaves = 0;
    for (let symbol = 0; symbol < counts.length; symbol++) if (weights[symbol]! > 0) weight[leaves++] = weights[symbol]! * 512 + symbol;
    weight.subarray(0, leaves).sort();
    for (let at = 0; at < leaves; at++) {
      symbols[at] = weight[at]! % 512;
      weight[at] = (weight[at]! - symbols[at]!) / 512;
    }
    // Huffman's tree by two queues: the leaves, then the nodes as they are made, already in order of weight.
    let leaf = 0;
    let node = leaves;
    let made = leaves;
    const lightest = () => (leaf < leaves && (node >= made || weight[leaf]! <= weight[node]!) ? leaf++ : node++);
    for (; made < 2 * leaves - 1; made++) {
      const a = lightest();
      const b = lightest();
      weight[made] = weight[a]! + weight[b]!;
      parent[a] = parent[b] = made;
    }
    let longest = 0;
    depth[2 * leaves - 2] = 0;
    for (let at = 2 * leaves - 3; at >= 0; at--) depth[at] = depth[parent[at]!]! + 1;
    for (let at = 0; at < leaves; at++) {
      lengths[symbols[at]!] = depth[at]!;
      longest = Math.max(longest, depth[at]!);
    }
    if (longest <= limit) return lengths;
    for (let symbol = 0; symbol < counts.length; symbol++) if (weights[symbol]! > 0) weights[symbol] = Math.floor(weights[symbol]! / 2) || 1;
  }
}
/** codeLengths' working room: a tree over at most 286 symbols. */
const huffmanScratch = {
  weights: new Float64Array(286), weight: new Float64Array(2 * 286), symbols: new Uint16Array(286), parent: new Int32Array(2 * 286), depth: new Uint8Array(2 * 286),
};

/**
 * A UTF-16 token: a literal and the zero after it (0-255), a literal alone
 * (256 + it), or a match: MATCH_TOKEN | length code << 24 | length extra
 * bits << 19 | distance code << 14 | distance extra bits.
 */
const MATCH_TOKEN = 0x4000_0000;

/** Bits written from the low bit up, as deflate packs them. */
class BitWriter {
  bytes: Uint8Array;
  at = 0;
  bits = 0;
  count = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
  }

  /** Writes the low `count` bits of `value` (at most 24). */
  put(value: number, count: number): void {
    this.bits |= value << this.count;
    this.count += count;
    while (this.count >= 8) {
      this.bytes[this.at++] = this.bits;
      this.bits >>>= 8;
      this.count -= 8;
    }
  }

  /** Pads to a whole byte. */
  align(): void {
    if (this.count > 0) this.put(0, 8 - this.count);
  }

  /** Room for `bytes` more, grown if need be. */
  reserve(bytes: number): void {
    if (this.at + bytes <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(2 * this.bytes.length, this.at + bytes));
    grown.set(this.bytes.subarray(0, this.at));
    this.bytes = grown;
  }
}

/** A block's code lengths as a dynamic block's header sends them: run-length coded (16 repeats, 17 and 18 zeros), as symbol and extra-bits value pairs. */
function runLengthCoded(lengths: Uint8Array): number[] {
  const coded: number[] = [];
  for (let at = 0; at < lengths.length;) {
    const length = lengths[at]!;
    let run = 1;
    while (at + run < lengths.length && lengths[at + run] === length) run++;
    at += run;
    if (length === 0) {
      for (; run >= 11; run -= Math.min(138, run)) coded.push(18, Math.min(138, run) - 11);
      if (run >= 3) coded.push(17, run - 3), (run = 0);
    } else {
      coded.push(length, 0);
      for (run--; run >= 3; run -= Math.min(6, run)) coded.push(16, Math.min(6, run) - 3);
    }
    for (; run > 0; run--) coded.push(length, 0);
  }
  return coded;
}
const RUN_EXTRA_BITS: Record<number, number> = { 16: 2, 17: 3, 18: 7 };

/** Counts of each literal/length and distance symbol in a block being rewritten. */
const blockCounts = { literals: new Uint32Array(286), distances: new Uint32Array(30) };
/** A literal and the zero after it as one code, where the two fit in 24 bits: `pairCodes[c]`, `pairLengths[c]`. */
const pairCodes = new Uint32Array(256);
const pairLengths = new Uint8Array(256);

/** Writes a block of UTF-16 tokens with codes fitted to it, or with the fixed codes where that is smaller. */
function writeTokens(out: BitWriter, tokens: Uint32Array, tokenCount: number, final: boolean): void {
  const { literals, distances } = blockCounts;
  literals[END_OF_BLOCK] = 1;
  const literalLengths = codeLengths(literals, 15);
  const distanceLengths = codeLengths(distances, 15);
  let literalCount = 286;
  while (literalLengths[literalCount - 1] === 0) literalCount--;
  let distanceCount = 30;
  while (distanceCount > 1 && distanceLengths[distanceCount - 1] === 0) distanceCount--;
  const lengths = new Uint8Array(literalCount + distanceCount);
  lengths.set(literalLengths.subarray(0, literalCount));
  lengths.set(distanceLengths.subarray(0, distanceCount), literalCount);
  const runs = runLengthCoded(lengths);
  const runCounts = new Uint32Array(19);
  for (let at = 0; at < runs.length; at += 2) runCounts[runs[at]!]!++;
  const runLengths = codeLengths(runCounts, 7);
  let runLengthCount = 19;
  while (runLengths[CODE_LENGTH_ORDER[runLengthCount - 1]!] === 0) runLengthCount--;
  // Bits of each choice, but the extra bits, which both send alike.
  let fitted = 14 + 3 * runLengthCount;
  for (let at = 0; at < runs.length; at += 2) fitted += runLengths[runs[at]!]! + (RUN_EXTRA_BITS[runs[at]!] ?? 0);
  let fixed = 0;
  for (let symbol = 0; symbol < 286; symbol++) {
    fitted += literals[symbol]! * literalLengths[symbol]!;
    fixed += literals[symbol]! * FIXED_LENGTHS[symbol]!;
  }
  for (let symbol = 0; symbol < 30; symbol++) {
    fitted += distances[symbol]! * distanceLengths[symbol]!;
    fixed += distances[symbol]! * 5;
  }
  out.reserve(Math.ceil((Math.min(fitted, fixed) + 3 + 18 * tokenCount) / 8) + 8); // extra bits: 18 a token at most
  out.put(final ? 1 : 0, 1);
  let literalCodes = FIXED_CODES;
  let distanceCodes = FIXED_DISTANCE_CODES;
  let literalBits: Uint8Array = FIXED_LENGTHS;
  let distanceBits: Uint8Array = FIXED_DISTANCE_LENGTHS;
  if (fitted < fixed) {
    out.put(2, 2);
    out.put(literalCount - 257, 5);
    out.put(distanceCount - 1, 5);
    out.put(runLengthCount - 4, 4);
    for (let at = 0; at < runLengthCount; at++) out.put(runLengths[CODE_LENGTH_ORDER[at]!]!, 3);
    const runCodes = canonicalCodes(runLengths);
    for (let at = 0; at < runs.length; at += 2) {
      const symbol = runs[at]!;
      out.put(runCodes[symbol]!, runLengths[symbol]!);
      if (symbol >= 16) out.put(runs[at + 1]!, RUN_EXTRA_BITS[symbol]!);
    }
    literalCodes = canonicalCodes(literalLengths);
    distanceCodes = canonicalCodes(distanceLengths);
    literalBits = literalLengths;
    distanceBits = distanceLengths;
  } else {
    out.put(1, 2);
  }
  for (let literal = 0; literal < 256; literal++) {
    pairLengths[literal] = literalBits[literal]! + literalBits[0]!;
    pairCodes[literal] = literalCodes[literal]! | (literalCodes[0]! << literalBits[literal]!);
  }
  // The writer's state in locals: this loop writes every token of the stream.
  const bytes = out.bytes;
  let { at, bits, count: pending } = out;
  for (let next = 0; next < tokenCount; next++) {
    const token = tokens[next]!;
    if (token < 256 && pairLengths[token]! <= 24) {
      bits |= pairCodes[token]! << pending;
      pending += pairLengths[token]!;
    } else if (token < 512) {
      const literal = token & 0xff;
      bits |= literalCodes[literal]! << pending;
      pending += literalBits[literal]!;
      if (token < 256) {
        for (; pending >= 8; pending -= 8, bits >>>= 8) bytes[at++] = bits;
        bits |= literalCodes[0]! << pending;
        pending += literalBits[0]!;
      }
    } else {
      const lengthCode = (token >>> 24) & 31;
      const distanceCode = (token >>> 14) & 31;
      const symbol = 257 + lengthCode;
      bits |= (literalCodes[symbol]! | (((token >>> 19) & 31) << literalBits[symbol]!)) << pending;
      pending += literalBits[symbol]! + LENGTH_EXTRA[lengthCode]!;
      for (; pending >= 8; pending -= 8, bits >>>= 8) bytes[at++] = bits;
      bits |= distanceCodes[distanceCode]! << pending;
      pending += distanceBits[distanceCode]!;
      for (; pending >= 8; pending -= 8, bits >>>= 8) bytes[at++] = bits;
      bits |= (token & 0x3fff) << pending;
      pending += DISTANCE_EXTRA[distanceCode]!;
    }
    for (; pending >= 8; pending -= 8, bits >>>= 8) bytes[at++] = bits;
  }
  out.at = at;
  out.bits = bits;
  out.count = pending;
  out.put(literalCodes[END_OF_BLOCK]!, literalBits[END_OF_BLOCK]!);
}

/** The tokens of the block being rewritten, and the stream being written: grown as streams need, reused. */
let utf16Tokens: Uint32Array = new Uint32Array(1 << 16);
const widened = new BitWriter(1 << 16);
let widenInput = new Uint8Array(1 << 16);

/** `tokens` with room for `needed`: the same array if it has it, else a larger copy, kept as utf16Tokens for the streams after. */
function withRoom(tokens: Uint32Array, needed: number): Uint32Array {
  if (needed <= tokens.length) return tokens;
  const grown = new Uint32Array(Math.max(needed, 2 * tokens.length));
  grown.set(tokens);
  return (utf16Tokens = grown);
}

/**
 * Raw deflate of ASCII text, as zlib writes it with ASCII_FOR_UTF16 (to a
 * flush point or the end), rewritten as raw deflate of the same text in
 * UTF-16LE; `lead` (the byte-order mark) goes before the text.
 *
 * @example
 * const ascii = Buffer.from('[{"type": 4}, {"type": 4}]');
 * inflateRawSync(widenDeflate(deflateRawSync(ascii, ASCII_FOR_UTF16))).equals(Buffer.from(ascii.toString(), 'utf16le')); // true
 */
export function widenDeflate(stream: Uint8Array, lead?: Uint8Array): Buffer {
  // Read from a copy with zeros after it: the reads ahead of the last codes stay in bounds, which keeps them fast.
  if (widenInput.length < stream.length + 8) widenInput = new Uint8Array(2 * stream.length + 8);
  const deflated = widenInput;
  deflated.set(stream);
  deflated.fill(0, stream.length, stream.length + 8);
  const out = widened;
  out.at = out.bits = out.count = 0;
  const { literals, distances } = blockCounts;
  // The tokens in a local: the loop below writes each of them.
  let tokenBuffer = utf16Tokens;
  let at = 0;
  let bits = 0;
  let count = 0;
  for (let first = true; ; first = false) {
    for (; count < 3; count += 8) bits |= deflated[at++]! << count;
    const final = (bits & 1) === 1;
    const type = (bits >>> 1) & 3;
    bits >>>= 3;
    count -= 3;
    literals.fill(0);
    distances.fill(0);
    let tokens = 0;
    if (first && lead) {
      tokenBuffer = withRoom(tokenBuffer, lead.length);
      for (const byte of lead) {
        tokenBuffer[tokens++] = 256 + byte;
        literals[byte]!++;
      }
    }
    if (type === 0) {
      // A stored block starts at a byte: whole bytes read ahead go back.
      at -= count >> 3;
      bits = count = 0;
      const length = deflated[at]! | (deflated[at + 1]! << 8);
      at += 4;
      if (length === 0) {
        // A flush point (an empty stored block), kept as it is, after the lead if it comes first.
        if (tokens > 0) writeTokens(out, tokenBuffer, tokens, false);
        out.reserve(8);
        out.put(final ? 1 : 0, 3);
        out.align();
        out.bytes.set([0, 0, 0xff, 0xff], out.at);
        out.at += 4;
        if (final || at >= stream.length) break;
        continue;
      }
      tokenBuffer = withRoom(tokenBuffer, tokens + length);
      for (const byte of deflated.subarray(at, at + length)) {
        tokenBuffer[tokens++] = byte;
        literals[byte]!++;
      }
      literals[0]! += length;
      at += length;
    } else if (type === 1) {
      let zeros = 0;
      for (;;) {
        // A match takes at most three tokens.
        if (tokens + 3 > tokenBuffer.length) tokenBuffer = withRoom(tokenBuffer, tokens + 3);
        for (; count < 16; count += 8) bits |= deflated[at++]! << count;
        const entry = FIXED_DECODE[bits & 511]!;
        const symbol = entry & 0xffff;
        bits >>>= entry >>> 16;
        count -= entry >>> 16;
        if (symbol < 256) {
          tokenBuffer[tokens++] = symbol;
          literals[symbol]!++;
          zeros++;
          continue;
        }
        if (symbol === END_OF_BLOCK) break;
        const lengthExtra = LENGTH_EXTRA[symbol - 257]!;
        const length = LENGTH_BASE[symbol - 257]! + (bits & ((1 << lengthExtra) - 1));
        bits >>>= lengthExtra;
        count -= lengthExtra;
        for (; count < 24; count += 8) bits |= deflated[at++]! << count;
        const distanceSymbol = FIXED_DISTANCE_DECODE[bits & 31]!;
        const distanceExtra = DISTANCE_EXTRA[distanceSymbol]!;
        const distance = 2 * (DISTANCE_BASE[distanceSymbol]! + ((bits >>> 5) & ((1 << distanceExtra) - 1)));
        bits >>>= 5 + distanceExtra;
        count -= 5 + distanceExtra;
        let bytes = 2 * length;
        // The zero after a literal can start the match: the byte `distance` before it is a zero too. It saves that zero's code.
        if (tokens > 0 && tokenBuffer[tokens - 1]! < 256) {
          tokenBuffer[tokens - 1]! += 256;
          zeros--;
          bytes++;
        }
        const distanceCode = DISTANCE_CODE[distance]!;
        const match = MATCH_TOKEN | (distanceCode << 14) | (distance - DISTANCE_BASE[distanceCode]!);
        // Over 258 bytes, the match goes on as another from the same distance; none shorter than 3.
        for (; bytes > 0; ) {
          const part = bytes <= MAX_MATCH ? bytes : bytes - MAX_MATCH < 3 ? bytes - 3 : MAX_MATCH;
          const lengthCode = LENGTH_CODE[part]!;
          tokenBuffer[tokens++] = match | (lengthCode << 24) | ((part - LENGTH_BASE[lengthCode]!) << 19);
          literals[257 + lengthCode]!++;
          distances[distanceCode]!++;
          bytes -= part;
        }
      }
      literals[0]! += zeros;
    } else {
      throw new Error('internal error: ASCII deflate with other than fixed codes');
    }
    writeTokens(out, tokenBuffer, tokens, final);
    if (final) break;
  }
  out.align();
  return Buffer.from(out.bytes.subarray(0, out.at));
}

/** Typed arrays are little-endian on every platform node runs on: a byte stored as a unit is that byte and a zero. */
const UTF16_SCRATCH = new Uint16Array(32 * 1024);
/** The CRC-32 of ASCII text's UTF-16LE bytes, continuing `crc`: each byte and a zero, through a scratch buffer for zlib's crc32. */
function crc32Utf16(ascii: Uint8Array, crc = 0): number {
  for (let from = 0; from < ascii.length; from += UTF16_SCRATCH.length) {
    const part = ascii.subarray(from, from + UTF16_SCRATCH.length);
    UTF16_SCRATCH.set(part);
    crc = crc32(new Uint8Array(UTF16_SCRATCH.buffer, 0, 2 * part.length), crc);
  }
  return crc;
}

/** Raw deflate of the text a writer holds as `encoding` says: UTF-8 as it is, legacy's ASCII as its UTF-16 with `lead` before it. */
function deflateText(bytes: Uint8Array, encoding: TextEncoding, options: ZlibOptions = {}, lead?: Uint8Array): Buffer {
  if (encoding === 'utf8') return deflate(bytes, { ...COMPRESSION, ...options });
  // zlib primes its 16 KiB window with the dictionary's last 16 KiB only: the rest is not passed, so not counted.
  const dictionary = (options.dictionary as Uint8Array | undefined)?.subarray(-ASCII_WINDOW_BYTES);
  return widenDeflate(deflate(bytes, { ...ASCII_FOR_UTF16, ...options, ...(dictionary && { dictionary }) }, TEXT_BYTES_PER_BYTE.utf16le), lead);
}

/** The CRC-32 of the text a writer holds, continuing `crc`, as the member carries it. */
const textCrc = (bytes: Uint8Array, encoding: TextEncoding, crc = 0): number => (encoding === 'utf8' ? crc32(bytes, crc) : crc32Utf16(bytes, crc));

/** Text compressed to deflate blocks ending at a flush point, with what a member's trailer needs of it: CRC-32 and length. */
interface CompressedPiece {
  deflated: Buffer;
  /** The CRC-32 and length of the text as the member carries it (UTF-16 for legacy). */
  crc: number;
  length: number;
}

/** Text compressed once, kept for splicing (a CompressedPiece), with its last bytes, the dictionary of what follows it. */
interface DeflatedText extends CompressedPiece {
  /** Characters of `deflated` as a latin1 string escaped in JSON (escapedLength), counted once. */
  escaped: number;
  /** The text's last WINDOW_BYTES bytes as the writer holds it (all of a shorter one). */
  end: Buffer;
}

/** `bytes` of text held as `encoding` says, compressed to `deflated`, kept for splicing with `end` (see DeflatedText). */
function deflatedText(bytes: Uint8Array, encoding: TextEncoding, deflated: Buffer, end: Buffer): DeflatedText {
  return { deflated, escaped: escapedLength(deflated), crc: textCrc(bytes, encoding), length: TEXT_BYTES_PER_BYTE[encoding] * bytes.length, end };
}

/** A stylesheet's block spliced into a member: `at`, the byte of the finished member its deflate blocks start at. */
interface Splice {
  at: number;
  block: DeflatedText;
}

/** Each stylesheet's deflate blocks, by the encoding they were made for: kept as long as its site. */
const deflatedStylesheets = new WeakMap<Stylesheet, Partial<Record<TextEncoding, DeflatedText>>>();

/** A stylesheet's deflate blocks for `encoding`, made on first use. */
function deflatedStylesheet(sheet: Stylesheet, encoding: TextEncoding): DeflatedText {
  let blocks = deflatedStylesheets.get(sheet);
  if (!blocks) deflatedStylesheets.set(sheet, (blocks = {}));
  let block = blocks[encoding];
  if (!block) {
    const text = sheet.made();
    const bytes = Buffer.from(encoding === 'utf16le' ? pythonAscii(text) : text, 'latin1');
    // A copy of the end, so the whole text is not kept for as long as the site.
    const end = Buffer.from(bytes.subarray(-WINDOW_BYTES));
    block = blocks[encoding] = deflatedText(bytes, encoding, deflateText(bytes, encoding, { finishFlush: zlibConstants.Z_SYNC_FLUSH }), end);
    compressionWork.stylesheets += block.length;
  }
  return block;
}

/** A candidate last piece: the open text and a tail, compressed to the end of the stream. */
interface DeflateTrial {
  /** The open text and the tail, in the writer's open buffer: valid while the writer's text is as it was (`edits`). */
  bytes: Buffer;
  edits: number;
  deflated: Buffer;
}

/** A stylesheet mark as it reads in JSON text: its control character escaped. */
const ESCAPED_MARK = escapeInData(STYLESHEET_MARK);
const STYLESHEET_MARK_PATTERN = /\\u0007(\d+)\\u0007/g;

/**
 * JSON text as Python's json.dumps writes the same value, as ASCII bytes
 * (widenDeflate makes them UTF-16LE), written into `target` at byte `at`,
 * which has room for three bytes a character (separators at most double
 * the text); returns the bytes written. `", "` and `": "` between items,
 * and every character outside printable ASCII escaped (pythonAscii, done
 * before). JSON.stringify already escapes quotes, backslashes and controls,
 * so only separators outside strings change. `state` carries whether the
 * text starts inside a string.
 *
 * The text is read as bytes, not with charCodeAt: in two workers under
 * tsx, a charCodeAt loop ran at 14 ns a character against 5 (the same code
 * under node's own type stripping); read from bytes, 4 in both.
 */
function pythonJsonInto(ascii: string, state: { inString: boolean }, target: Buffer, at: number): number {
  // The text's bytes go in the last third of the room: the bytes written before byte i take at most 2i, so they stop short of it.
  const sourceAt = at + 2 * ascii.length;
  const chars = target.write(ascii, sourceAt, 'latin1');
  let length = at;
  let inString = state.inString;
  for (let from = sourceAt; from < sourceAt + chars; from++) {
    const code = target[from]!;
    target[length++] = code;
    if (inString) {
      if (code === 0x5c) target[length++] = target[++from]!; // an escape: its next character is part of it
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) {
      inString = true;
    } else if (code === 0x2c || code === 0x3a) {
      target[length++] = 0x20;
    }
  }
  state.inString = inString;
  return length - at;
}

/** What Python's "utf-16" codec writes first: the byte-order mark, little-endian. */
const UTF16_BYTE_ORDER_MARK = Uint8Array.of(0xff, 0xfe);

/** Text with every character outside printable ASCII as a `\uXXXX` escape, as Python's json.dumps writes it. */
function pythonAscii(text: string): string {
  return /[^\x00-\x7e]/.test(text) ? text.replace(/[^\x00-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`) : text;
}

/**
 * The buffer DeflateWriters convert their open text into, and the writer
 * using it: one at a time. It grows with the largest text met, and a writer
 * starting on one grown past `keptBytes` lets it go. Its dictionaries are
 * copied into `windows`.
 */
const OpenText: { buffer: Buffer; writer: object | undefined; readonly keptBytes: number; readonly windows: readonly [Buffer, Buffer] } = {
  buffer: Buffer.alloc(0),
  writer: undefined,
  keptBytes: 2 * PIECE_BYTES,
  /** Two dictionaries' room, the one in use and the next. */
  windows: [Buffer.allocUnsafeSlow(WINDOW_BYTES), Buffer.allocUnsafeSlow(WINDOW_BYTES)],
};

/**
 * A gzip member written piece by piece: JSON text (converted to Python's
 * ASCII form for UTF-16, or UTF-8) compressed as it comes in pieces of
 * PIECE_BYTES, stylesheet marks replaced by the site's compressed
 * stylesheets, and trials of the text still open with a tail.
 */
class DeflateWriter {
  /** The member's text: UTF-16 for legacy, written in Python's form (ASCII, which widenDeflate needs), or UTF-8. */
  readonly encoding: TextEncoding;
  private readonly header: Buffer;
  private readonly pieces: Buffer[] = [];
  private committedBytes = 0;
  private committedEscaped = 0;
  private crc = 0;
  private size = 0;
  private dictionary: Buffer | undefined;
  /**
   * The open text's bytes, in a buffer reused from piece to piece and from
   * writer to writer (a trial's tail goes after them): text is converted
   * into it, not into a buffer of its own, and a piece is compressed from
   * it, not from a concatenation of them. A writer makes its member before
   * the next writer starts (an unfinished one is dropped), so one buffer
   * serves them all; OpenText.writer says whose text it holds.
   */
  private open: Buffer;
  private openBytes = 0;
  /** Counts changes to the open text, so that only the latest trial finishes the member. */
  private edits = 0;
  /** The text that closes the member, compressed once on its own (see endWith). */
  private ending: DeflatedText | undefined;
  /** Where Python's converter is: inside a JSON string or not. */
  private readonly state = { inString: false };
  /** Bytes the member's text starts with that the first piece compresses before its own (the byte-order mark). */
  private lead: Uint8Array | undefined;
  /** The stylesheets spliced in, in order: a vegeta body splices their bytes compressed once too (see BodyWriter). */
  readonly splices: Splice[] = [];

  constructor(encoding: TextEncoding, header: Buffer) {
    this.encoding = encoding;
    this.header = header;
    this.committedEscaped = escapedLength(header);
    if (OpenText.buffer.length > OpenText.keptBytes) OpenText.buffer = Buffer.allocUnsafe(OpenText.keptBytes);
    OpenText.writer = this;
    this.open = OpenText.buffer;
    // Python's "utf-16" codec starts with a byte-order mark: counted now, compressed with the first piece.
    if (encoding === 'utf16le') {
      this.lead = UTF16_BYTE_ORDER_MARK;
      this.crc = crc32(UTF16_BYTE_ORDER_MARK);
      this.size = UTF16_BYTE_ORDER_MARK.length;
    }
  }

  /** Appends JSON text; a stylesheet mark (`\u0007<index>\u0007`, escaped) splices `stylesheets[index]`'s compressed bytes. */
  write(text: string, stylesheets: readonly Stylesheet[] = []): void {
    this.own();
    let from = 0;
    for (let at = text.indexOf(ESCAPED_MARK); at !== -1; at = text.indexOf(ESCAPED_MARK, from)) {
      const end = text.indexOf(ESCAPED_MARK, at + ESCAPED_MARK.length);
      this.append(text.slice(from, at));
      this.splice(deflatedStylesheet(stylesheets[Number(text.slice(at + ESCAPED_MARK.length, end))]!, this.encoding));
      from = end + ESCAPED_MARK.length;
    }
    this.append(text.slice(from));
  }

  /**
   * Fixes the text that will close the member, after every trial's tail,
   * and compresses it once, on its own: a page load's events after its
   * FullSnapshot (a fifth of the batch) are then not compressed again by
   * every trial. It starts a block with no dictionary, which deflate
   * allows anywhere: about 1% larger than compressed with what precedes it.
   */
  endWith(text: string): void {
    const bytes = this.converted(text, { inString: false });
    this.ending = deflatedText(bytes, this.encoding, deflateText(bytes, this.encoding), Buffer.alloc(0));
  }

  /**
   * The open text and `tail` compressed to the end of the stream (to the
   * ending, if one is fixed): what finishing now would write. Open text of
   * TRIAL_PIECE_BYTES or more is committed first, so that repeated trials
   * compress each byte about once; a trial's dictionary is the last
   * TRIAL_DICTIONARY_BYTES of what precedes it. The trial holds the open
   * text until the writer changes it: only the latest trial finishes.
   */
  trial(tail: string): DeflateTrial {
    this.own();
    if (this.openBytes >= TRIAL_PIECE_BYTES) this.commit();
    const bytes = this.converted(tail, { ...this.state }, true);
    const dictionary = this.dictionary?.subarray(-TRIAL_DICTIONARY_BYTES);
    const options = { ...(this.ending && { finishFlush: zlibConstants.Z_SYNC_FLUSH }), ...(dictionary && { dictionary }) };
    return { bytes, edits: this.edits, deflated: deflateText(bytes, this.encoding, options, this.lead) };
  }

  /** Bytes of the member a trial would finish. */
  memberBytes(trial: DeflateTrial): number {
    return gzip.frameBytes + this.committedBytes + trial.deflated.length + (this.ending?.deflated.length ?? 0);
  }

  /** Characters of the member a trial would finish, as a latin1 string escaped in JSON. */
  escapedLength(trial: DeflateTrial): number {
    // The trailer's 8 bytes escape to about 16.
    return this.committedEscaped + escapedLength(trial.deflated) + (this.ending?.escaped ?? 0) + 16;
  }

  /** The member, finished by `trial`, the latest. */
  finish(trial: DeflateTrial): Buffer {
    this.own();
    if (trial.edits !== this.edits) throw new Error('internal error: a member is finished by a trial older than its text');
    let crc = textCrc(trial.bytes, this.encoding, this.crc);
    let size = this.size + TEXT_BYTES_PER_BYTE[this.encoding] * trial.bytes.length;
    if (this.ending) {
      crc = crc32Combine(crc, this.ending.crc, this.ending.length);
      size += this.ending.length;
    }
    compressionWork.text += size;
    return Buffer.concat([this.header, ...this.pieces, trial.deflated, ...(this.ending ? [this.ending.deflated] : []), gzip.trailer(crc, size)]);
  }

  /** The open buffer with room for `bytes` more after the open text, grown (doubled at least) if need be. */
  private room(bytes: number): Buffer {
    this.own();
    if (this.openBytes + bytes > this.open.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.openBytes + bytes, 2 * this.open.length, 64 * 1024));
      this.open.copy(grown, 0, 0, this.openBytes);
      this.open = OpenText.buffer = grown;
    }
    return this.open;
  }

  /** Refuses to go on with a writer whose open buffer the next one took. */
  private own(): void {
    if (OpenText.writer !== this) throw new Error('internal error: a member is written after the next one started');
  }

  /** Converts `text` into the open buffer after the open text, without adding it: the open text and it, or it alone. */
  private converted(text: string, state: { inString: boolean }, withOpen = false): Buffer {
    let bytes: number;
    if (this.encoding === 'utf16le') {
      const ascii = pythonAscii(text);
      bytes = pythonJsonInto(ascii, state, this.room(3 * ascii.length), this.openBytes);
    } else {
      bytes = this.room(Buffer.byteLength(text)).write(text, this.openBytes);
    }
    return this.open.subarray(withOpen ? 0 : this.openBytes, this.openBytes + bytes);
  }

  private advance(bytes: number): void {
    this.openBytes += bytes;
    this.edits++;
  }

  private append(text: string): void {
    if (text.length === 0) return;
    this.advance(this.converted(text, this.state).length);
    if (this.openBytes >= PIECE_BYTES) this.commit();
  }

  /** Compresses the open text to a flush point, continuing the stream. */
  private commit(): void {
    if (this.openBytes === 0 && !this.lead) return;
    const bytes = this.open.subarray(0, this.openBytes);
    const deflated = deflateText(bytes, this.encoding, { finishFlush: zlibConstants.Z_SYNC_FLUSH, ...(this.dictionary && { dictionary: this.dictionary }) }, this.lead);
    this.lead = undefined;
    this.take(deflatedText(bytes, this.encoding, deflated, bytes));
    this.openBytes = 0;
    this.edits++;
  }

  private splice(block: DeflatedText): void {
    this.commit();
    compressionWork.reused += block.length;
    this.splices.push({ at: this.header.length + this.committedBytes, block });
    this.take(block);
  }

  private take({ deflated, escaped, crc, length, end }: DeflatedText): void {
    this.pieces.push(deflated);
    this.committedBytes += deflated.length;
    this.committedEscaped += escaped;
    this.crc = crc32Combine(this.crc, crc, length);
    this.size += length;
    this.dictionary = end.buffer !== this.open.buffer && end.length >= WINDOW_BYTES ? end.subarray(end.length - WINDOW_BYTES) : this.windowAfter(end);
  }

  /**
   * The last WINDOW_BYTES of the text so far, `end` being its last bytes,
   * copied into whichever of OpenText's two windows the dictionary is not:
   * the open buffer `end` may be in is reused.
   */
  private windowAfter(end: Buffer): Buffer {
    const [first, second] = OpenText.windows;
    const window = this.dictionary?.buffer === first.buffer ? second : first;
    const kept = Math.min(WINDOW_BYTES - Math.min(end.length, WINDOW_BYTES), this.dictionary?.length ?? 0);
    if (kept > 0) this.dictionary!.copy(window, 0, this.dictionary!.length - kept);
    const copied = end.copy(window, kept, Math.max(0, end.length - WINDOW_BYTES));
    return window.subarray(0, kept + copied);
  }
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
 * time from xoshiro128** (Blackman and Vigna), sixteen from three 32-bit
 * words (four from the low 24 bits of each, four from their top bytes),
 * written into an aligned scratch block four at a time and copied out. Any
 * text of whole base64 quanta is valid base64 of random bytes, so this is
 * random data in gzip-base64's alphabet with its entropy: the same bytes on
 * every runtime (of a little-endian machine), at about 2.7 GB/s under node
 * and 2.5 under Deno and Bun (four letters a word, leaving 8 bits unused,
 * made 2.2 under node, 1.8 under Bun). An AES keystream ran at 2 GB/s under
 * node but a fifth of that under Deno; a letter at a time, 0.5 GB/s.
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
      // Sixteen letters (four scratch words) from each three draws.
      const filledWords = Math.min(scratch.length, 4 * ((count - written + 15) >>> 4));
      for (let index = 0; index < filledWords; index += 4) {
        // The three draws written out: as a loop of three, or a function stepping a state array, node ran this 30-45% slower.
        let scrambled = Math.imul(s1, 5);
        const first = Math.imul((scrambled << 7) | (scrambled >>> 25), 9);
        let shifted = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= shifted;
        s3 = (s3 << 11) | (s3 >>> 21);
        scrambled = Math.imul(s1, 5);
        const second = Math.imul((scrambled << 7) | (scrambled >>> 25), 9);
        shifted = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= shifted;
        s3 = (s3 << 11) | (s3 >>> 21);
        scrambled = Math.imul(s1, 5);
        const third = Math.imul((scrambled << 7) | (scrambled >>> 25), 9);
        shifted = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= shifted;
        s3 = (s3 << 11) | (s3 >>> 21);
        const tops = (first >>> 24) | ((second >>> 24) << 8) | ((third >>> 24) << 16);
        scratch[index] = LETTER_PAIRS[first & 4095]! | (LETTER_PAIRS[(first >>> 12) & 4095]! << 16);
        scratch[index + 1] = LETTER_PAIRS[second & 4095]! | (LETTER_PAIRS[(second >>> 12) & 4095]! << 16);
        scratch[index + 2] = LETTER_PAIRS[third & 4095]! | (LETTER_PAIRS[(third >>> 12) & 4095]! << 16);
        scratch[index + 3] = LETTER_PAIRS[tops & 4095]! | (LETTER_PAIRS[(tops >>> 12) & 4095]! << 16);
      }
      const letters = Math.min(count - written, 4 * filledWords);
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

/** fflate 0.4's gzip of `[]`: a stored block, 25 bytes. */
const EMPTY_LIST_MEMBER = (atMs: number) => Buffer.concat([gzip.header(atMs, FFLATE_GZIP), Buffer.from([0x01, 0x02, 0x00, 0xfd, 0xff, 0x5b, 0x5d]), gzip.trailer(crc32(Buffer.from('[]')), 2)]);

/**
 * posthog-js's `gzipToString`: fflate's gzip of the JSON, as a latin1
 * string, its header time the event's (as fflate's mtime from Date.now()).
 * fflate writes the empty list as a stored block; zlib (level 6, fflate's
 * default) does the rest, which differ from fflate's bytes only in detail.
 */
function gzipToString(json: string, atMs: number): string {
  if (json === '[]') return EMPTY_LIST_MEMBER(atMs).toString('latin1');
  const bytes = Buffer.from(json);
  compressionWork.text += bytes.length;
  const member = Buffer.concat([gzip.header(atMs, FFLATE_GZIP), deflate(bytes, COMPRESSION), gzip.trailer(crc32(bytes), bytes.length)]);
  return member.toString('latin1');
}

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

/** Legacy payloads: the events' JSON as Python wrote it, in UTF-16 with its byte-order mark, gzip within 5% of Python's level 9 (COMPRESSION). */
const LEGACY_TEXT: TextEncoding = 'utf16le';
/** posthog-js's compressed events: UTF-8 JSON. */
const SENT_TEXT: TextEncoding = 'utf8';

/**
 * What a JSON character takes once compressed, in the measure a writer is
 * sized by, as a first guess before any trial: bytes of Python's UTF-16
 * (legacy), escaped characters of posthog-js's latin1 strings (UTF-8).
 */
const FIRST_GUESS_PER_CHAR: Record<TextEncoding, number> = { utf16le: 0.2, utf8: 0.22 };
/**
 * What a character of a legacy page's frame takes compressed, at least: its
 * JSON besides stylesheets 0.204-0.256 bytes, the events after its
 * FullSnapshot 0.145-0.180 (5th to 95th percentile, measured).
 */
const LEAST_PER_CHAR = { frame: 0.19, ending: 0.14 };
/** What a character of the densest events (network timings, stack traces) takes compressed in a legacy batch, at most (0.4-0.5 measured; more in batches under a few kB, as for the first guess). */
const WORST_PER_CHAR = 0.5;
/** The same in escaped characters of posthog-js's latin1 strings (a byte takes 1.3 characters on average). */
const WORST_ESCAPED_PER_CHAR = 0.65;
/**
 * A dense event that fills the last small room of a batch compresses this
 * much worse than the densest large ones: network timings in 2 kB pieces
 * took up to 0.6 bytes a character (0.555 seen in one 1,200-character event).
 */
const SMALL_DENSE_FACTOR = 1.2;
/** Small texts compress less: the first guess grows by a factor of 1 + SMALL_TEXT_BYTES / target (a 2 kB page compresses 2-3x worse than a large one). */
const SMALL_TEXT_BYTES = 1500;
/** A batch's events are at most this large, unless it has reached MAX_BATCH_EVENTS and must grow by larger ones. */
const MAX_EVENT_CHARS = 60_000;
/** JSON characters a legacy batch holds per compressed byte (3.4-3.8 per base64 character, measured): for spacing its events in time. */
const JSON_CHARS_PER_BYTE = 4.8;
/** A batch holds at most this many events, so chunk 0's events_summary stays small; past it, events are made large. */
const MAX_BATCH_EVENTS = 600;
/** Batches of events (not page loads) are sized to this accuracy. */
const SIZE_TOLERANCE = 0.03;
/** Mixed content may end this much past or short of the target at worst: within the 5% a plan allows, so the last events need not be tiny. */
const SIZE_SLACK = 0.045;

/** Pages with less compressed room than this are bare: no frame, few classes, as small real pages; the design system inlined if it fits. */
const FURNISHED_PAGE_BYTES = 16_000;
/** The same room in other measures: characters of escaped compressed data, and of plain JSON. */
const FURNISHED_PAGE_ESCAPED_CHARS = 1.4 * FURNISHED_PAGE_BYTES;
const FURNISHED_PAGE_JSON_CHARS = 6 * FURNISHED_PAGE_BYTES;

/**
 * How many of the site's stylesheets a page of `target` links: the design
 * system always, then files while they take no more than `share` of the
 * target (`size` measures a file as the target does).
 */
function stylesheetsFor(site: Site, target: number, share: number, size: (sheet: Stylesheet) => number): number {
  let count = 1;
  for (let spent = size(site.stylesheets[0]!); count < site.stylesheets.length; count++) {
    spent += size(site.stylesheets[count]!);
    if (spent > share * target) break;
  }
  return count;
}

/**
 * How to furnish a page, richest first, until one fits: its frame and the
 * first `linked` of the site's stylesheets, then halves of them down to the
 * design system's file, then the frame with only the design system's rules
 * (critical CSS, no font); then no frame (`bare`) and those rules, as small
 * pages inline them; then nothing. Pages of fewer than `least` bytes start
 * at the bare ones.
 */
function furnishings(site: Site, linked: number, target: number, least: number): { stylesheets: Stylesheet[]; bare: boolean }[] {
  const counts = target < least ? [] : [linked];
  while (counts.length > 0 && counts.at(-1)! > 1) counts.push(Math.floor(counts.at(-1)! / 2));
  const framed = counts.map((count) => site.stylesheets.slice(0, count)).concat(counts.length > 0 ? [[site.critical]] : []);
  return [...framed.map((stylesheets) => ({ stylesheets, bare: false })), { stylesheets: [site.critical], bare: true }, { stylesheets: [], bare: true }];
}

/**
 * Adds content to `writer` (`next`, given about how many characters are
 * still missing) until a trial of the whole, with `tail`, measures at least
 * `target` less the tolerance; returns that trial. Estimates between trials
 * use the bytes per character the last trial showed; mixed content (a
 * batch's events) adds no more between trials than would reach the target
 * if it compressed as badly as `worstPerChar` says its densest kind does.
 */
function fillToSize(writer: DeflateWriter, target: number, tail: () => string, measure: (writer: DeflateWriter, trial: DeflateTrial) => number,
  next: (missingChars: number, first: boolean) => string, worstPerChar = 0, firstTrial = writer.trial(tail())): DeflateTrial {
  // Small batches compress less: a higher first guess for them, so their first events are not too large.
  let perChar = FIRST_GUESS_PER_CHAR[writer.encoding] * (1 + SMALL_TEXT_BYTES / Math.max(1, target));
  let trial = firstTrial;
  let measured = measure(writer, trial);
  let first = true;
  let content = { chars: 0, bytes: 0 };
  // Events and blocks compress unevenly: fill part of what the estimate says is missing (two thirds while far off, half when
  // close), measure, and again, taking the larger of the last and the average bytes per character.
  while (measured < target * (1 - SIZE_TOLERANCE)) {
    const share = first || measured >= 0.5 * target ? 0.5 : 0.65;
    // Safe: what could be added if it all compressed at the worst rate, overshooting by the tolerance at most; each piece of mixed content may take all of it.
    // Small texts compress worse: by the small-text factor while room is large; with little room left, by SMALL_DENSE_FACTOR,
    // as the person's small events go first then but one dense event (console traces, network timings) may still take it all.
    const safe = (worst: number) => (worstPerChar ? (target * (1 + SIZE_SLACK) - measured) / worst : Infinity);
    const safeForSmallTexts = safe(worstPerChar * (1 + SMALL_TEXT_BYTES / (4 * target)));
    const safeChars = safeForSmallTexts < SMALL_ROOM_CHARS ? Math.min(SMALL_ROOM_CHARS, safe(worstPerChar * SMALL_DENSE_FACTOR)) : safeForSmallTexts;
    // With room for the smallest events only, mixed content close enough to the target ends there, rather than with a run of them.
    if (safeChars < QUIET_CHARS.base + QUIET_CHARS.change && measured >= target * (1 - SIZE_SLACK)) break;
    const budget = Math.min(((target - measured) / perChar) * share, safeChars);
    let added = 0;
    // A round of mixed content ends when what is left would only fit the smallest events: a trial may show there is more room.
    while (added < budget && (added === 0 || !worstPerChar || safeChars - added >= QUIET_CHARS.base + QUIET_CHARS.change)) {
      const text = next((worstPerChar ? safeChars : budget) - added, first);
      first = false;
      writer.write(text);
      added += text.length;
    }
    const before = measured;
    trial = writer.trial(tail());
    measured = measure(writer, trial);
    content = { chars: content.chars + added, bytes: content.bytes + measured - before };
    perChar = Math.max(0.01, (measured - before) / added, content.bytes / content.chars);
  }
  return trial;
}

/** A number in [0, 1) from a time, for choices that need no stream of their own. */
const unitFrom = (ms: number) => mix32(ms | 0) / 2 ** 32 + 0.5;

/** How a page load's FullSnapshot data travels in a compressed member: the text before the page's content, and what closes it. */
interface PageFrame {
  /** The text before the content, with the page's stylesheet marks. */
  head: string;
  tail: () => string;
  /** Text after the tail that does not change as content is added: the events after the FullSnapshot, in the member. */
  ending?: string;
  /** What the batch takes outside the member, in the measure's units. */
  others: number;
}

/**
 * A page load compressed into a writer from `newWriter`, its content added
 * block by block until a trial says the batch reaches `target` (in
 * `measure`'s units): a furnished page, with fewer stylesheets if its frame
 * does not fit, or a bare one if the batch is small or the frame never fits.
 * `frame` says how the page's data travels; `requestChars` what an initial
 * network request takes, `worstPerChar` how badly a bare page's blocks may
 * compress. A frame surely too large is passed over before anything of it
 * is compressed: its stylesheets (`sheetSize`, compressed already) and, for
 * each character of the rest, the least its kind takes (`leastPerChar`).
 */
function compressPageLoad(window: BrowserWindow, snapshot: PlannedSnapshot, target: number, sizing: {
  linked: number;
  leastFurnished: number;
  requestChars: number;
  worstPerChar: number;
  sheetSize: (sheet: Stylesheet) => number;
  leastPerChar: { frame: number; ending: number };
  newWriter: () => DeflateWriter;
  measure: (writer: DeflateWriter, trial: DeflateTrial) => number;
  frame: (page: PageLoad) => PageFrame;
}): { page: PageLoad; writer: DeflateWriter; trial: DeflateTrial } {
  const { linked, leastFurnished, requestChars, worstPerChar, sheetSize, leastPerChar, newWriter, measure, frame } = sizing;
  for (const { stylesheets, bare } of furnishings(window.site, linked, target, leastFurnished)) {
    // The initial network batch takes about a fifth of the batch, as in production page loads (66-79 kB of 0.9-2 MB).
    const page = window.load(snapshot.firstEventMs, stylesheets, bare, bare ? 0 : Math.min(114, Math.floor((0.2 * target) / requestChars)));
    const { head, tail, ending, others } = frame(page);
    const least = others + stylesheets.reduce((sum, sheet) => sum + sheetSize(sheet), 0) + leastPerChar.frame * head.length + leastPerChar.ending * (ending?.length ?? 0);
    if (stylesheets.length > 0 && least > target) continue;
    const writer = newWriter();
    if (ending !== undefined) writer.endWith(ending);
    writer.write(head, page.stylesheets);
    const first = writer.trial(tail());
    if (stylesheets.length > 0 && others + measure(writer, first) > target) continue;
    // Large pages are markup, compressing evenly; a small one's few blocks vary more, sized as mixed content is.
    const trial = fillToSize(writer, Math.max(0, target - others), tail, measure, (missing) => window.addContent(missing), bare ? worstPerChar : 0, first);
    return { page, writer, trial };
  }
  throw new Error('internal error: a page with nothing furnished always fits');
}

/**
 * Activity events between the batch's first and last moments, until a trial
 * of the encoded batch measures `target`: the window's events in time order,
 * more and larger ones of the page's own when the batch must be large.
 */
function encodeActivity(window: BrowserWindow, snapshot: PlannedSnapshot, writer: DeflateWriter, target: number,
  measure: (writer: DeflateWriter, trial: DeflateTrial) => number): { member: Buffer; events: RecordedEvent[] } {
  const events: RecordedEvent[] = [];
  window.startBatch(snapshot.firstEventMs, snapshot.sentAtMs, target * JSON_CHARS_PER_BYTE);
  writer.write('[');
  const trial = fillToSize(writer, target, () => ']', measure, (missing, first) => {
    const event = events.length >= MAX_BATCH_EVENTS ? window.largeEvent(missing) : window.nextEvent(Math.min(missing, MAX_EVENT_CHARS));
    events.push(event);
    return (first ? '' : ',') + JSON.stringify(event);
  }, WORST_PER_CHAR);
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
  if (snapshot.kind !== 'full') return encodeActivity(window, snapshot, newWriter(), targetBytes, memberBytes);
  // Stylesheets take most of a page's bytes, as in production pages (48-73% of their JSON).
  const share = 0.7 + 0.2 * unitFrom(snapshot.firstEventMs);
  const sheetSize = (sheet: Stylesheet) => deflatedStylesheet(sheet, LEGACY_TEXT).deflated.length;
  const { page, writer, trial } = compressPageLoad(window, snapshot, targetBytes, {
    linked: stylesheetsFor(window.site, targetBytes, share, sheetSize), sheetSize, leastPerChar: LEAST_PER_CHAR,
    leastFurnished: FURNISHED_PAGE_BYTES, requestChars: 120, worstPerChar: WORST_PER_CHAR, newWriter, measure: memberBytes,
    frame: (page) => {
      const after = page.after.map((event) => `,${JSON.stringify(event)}`).join('');
      return { head: `[${JSON.stringify(page.meta)},{"type":2,"data":${page.head}`, tail: () => `${window.contentTail()},"timestamp":${page.timestamp}}`, ending: `${after}]`, others: 0 };
    },
  });
  const full: RecordedEvent = { type: EventType.FullSnapshot, data: {}, timestamp: page.timestamp };
  return { member: writer.finish(trial), events: [page.meta, full, ...page.after] };
}

/** A compressed FullSnapshot event's JSON besides its data, as posthog-js sends it (a 13-digit timestamp). */
const SENT_FULL_SNAPSHOT_FRAME_CHARS = JSON.stringify({ type: EventType.FullSnapshot, data: '', timestamp: 0, cv: COMPRESSED_EVENT_VERSION }).length + 12;

/**
 * A page load's events as posthog-js sends them: Meta, the FullSnapshot
 * (its data compressed, `cv`, sized by trial so the events come to about
 * `target` characters), and what follows it. A compressed FullSnapshot's
 * data is MEMBER_MARK, its gzip member `member`, with the stylesheets
 * spliced into it.
 */
function encodeSentPageLoad(window: BrowserWindow, snapshot: PlannedSnapshot, compress: boolean, target: number):
  { events: object[]; member?: Buffer; splices?: readonly Splice[] } {
  if (!compress) {
    const initialRequests = (bare: boolean) => (bare ? 0 : Math.min(114, Math.floor((0.2 * target) / REQUEST_CHARS)));
    for (const { stylesheets, bare } of furnishings(window.site, stylesheetsFor(window.site, target, 0.6, (sheet) => sheet.chars), target, FURNISHED_PAGE_JSON_CHARS)) {
      const page = window.load(snapshot.firstEventMs, stylesheets, bare, initialRequests(bare));
      const head = page.head.replace(STYLESHEET_MARK_PATTERN, (_, index: string) => page.stylesheets[Number(index)]!.json);
      const others = JSON.stringify([page.meta, ...page.after]).length;
      if (stylesheets.length > 0 && head.length + window.contentTail().length + others > target) continue;
      let content = '';
      while (head.length + content.length + window.contentTail().length + others < target * (1 - SIZE_TOLERANCE)) {
        content += window.addContent(target - head.length - content.length - window.contentTail().length - others);
      }
      const data = JSON.parse(`${head}${content}${window.contentTail()}`);
      return { events: [page.meta, { type: EventType.FullSnapshot, data, timestamp: page.timestamp }, ...page.after] };
    }
  }
  // The compressed data travels as an escaped latin1 string: size it by its escaped length.
  const sheetSize = (sheet: Stylesheet) => deflatedStylesheet(sheet, SENT_TEXT).escaped;
  // No least for the rest: its characters, escaped, vary too widely per character of JSON to bound usefully.
  const { page, writer, trial } = compressPageLoad(window, snapshot, target, {
    linked: stylesheetsFor(window.site, target, 0.6, sheetSize), sheetSize, leastPerChar: { frame: 0, ending: 0 },
    leastFurnished: FURNISHED_PAGE_ESCAPED_CHARS, requestChars: REQUEST_CHARS, worstPerChar: WORST_ESCAPED_PER_CHAR,
    newWriter: () => new DeflateWriter(SENT_TEXT, gzip.header(snapshot.firstEventMs, FFLATE_GZIP)),
    measure: (writer, trial) => writer.escapedLength(trial),
    frame: (page) => ({ head: page.head, tail: () => window.contentTail(), others: JSON.stringify([page.meta, ...page.after]).length + SENT_FULL_SNAPSHOT_FRAME_CHARS }),
  });
  const full = { type: EventType.FullSnapshot, data: MEMBER_MARK, timestamp: page.timestamp, cv: COMPRESSED_EVENT_VERSION };
  return { events: [page.meta, full, ...page.after], member: writer.finish(trial), splices: writer.splices };
}

/** A compressed FullSnapshot's data while its event is serialized: a string no event holds, replaced by the member's bytes as they are written. */
const MEMBER_MARK = '\u0007member\u0007';
const MEMBER_MARK_JSON = JSON.stringify(MEMBER_MARK);

/**
 * An event's JSON around a gzip member kept as bytes: `before`, the member
 * as posthog-js's latin1 string escaped in JSON, `after`. A page load's
 * member is most of its batch: written from its bytes
 * (Utf8Scratch.writeMember), it is not made into a string, escaped, and for
 * items escaped again, each a copy of a few hundred kB for the collector.
 */
interface MemberText {
  before: string;
  member: Buffer;
  /** The stylesheets spliced into the member. */
  splices: readonly Splice[];
  after: string;
}

/** An event's JSON: a text, or a text around a member's bytes. */
type EventText = string | MemberText;

/** The JSON of an event serialized with MEMBER_MARK for its data, around `member`. */
function aroundMember(json: string, member: Buffer, splices: readonly Splice[]): MemberText {
  const at = json.indexOf(MEMBER_MARK_JSON);
  // The mark's quotes stay in the text: they are the member string's.
  return { before: json.slice(0, at + 1), member, splices, after: json.slice(at + MEMBER_MARK_JSON.length - 1) };
}

/** A batch's events as JSON texts, one each, and the characters of the list they make. */
interface SentEvents {
  texts: EventText[];
  /** Characters of the texts as one JSON list, brackets and commas included: posthog-js's `$snapshot_bytes`. */
  chars: number;
}

/**
 * A snapshot's events as posthog-js sends them, JSON of about `snapshot.size`
 * characters in all: a page load's FullSnapshot data compressed (`cv`) and
 * sized by trial, or activity events until the size is reached; events too
 * large for one message (`maxEventChars`) are not made, their content goes
 * into the events after.
 */
function sentEvents(window: BrowserWindow, snapshot: PlannedSnapshot, compress: boolean, maxEventChars: number, serialize: (event: object) => string): SentEvents {
  const texts: EventText[] = [];
  let chars = 1; // the list's brackets, less the first comma
  const add = (event: object, member?: Buffer, splices: readonly Splice[] = []) => {
    const json = serialize(event);
    if (member) {
      const text = aroundMember(json, member, splices);
      chars += text.before.length + escapedLength(member) + text.after.length + 1;
      texts.push(text);
    } else {
      chars += json.length + 1;
      texts.push(json);
    }
  };
  let fromMs = snapshot.firstEventMs;
  if (snapshot.kind === 'full') {
    const { events: page, member, splices } = encodeSentPageLoad(window, snapshot, compress, Math.min(snapshot.size, maxEventChars));
    for (const event of page) add(event, (event as { data: unknown }).data === MEMBER_MARK ? member : undefined, splices);
    fromMs = (page.at(-1) as RecordedEvent).timestamp;
  }
  window.startBatch(fromMs, snapshot.sentAtMs, snapshot.size);
  while (chars < snapshot.size * (1 - SIZE_TOLERANCE) || texts.length === 0) {
    const room = Math.min(maxEventChars / 2, snapshot.size - chars);
    add(sentEvent(texts.length >= MAX_BATCH_EVENTS ? window.largeEvent(room) : window.nextEvent(room), compress));
  }
  return { texts, chars };
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
const pythonOrNull = (value: string | undefined): string => (value === undefined ? 'null' : pythonString(value));
const jsonOrNull = (value: string | number | undefined): string => (value === undefined ? 'null' : JSON.stringify(value));

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
/** A v2 record batch's own header, which a broker counts with the records in it against its max.message.bytes. */
const RECORD_BATCH_HEADER_BYTES = 61;
/** kcat reads lines 1 KiB at a time into a buffer of message.max.bytes: a line this much shorter always fits. */
const KCAT_READ_BYTES = 1024;
/** Session ids are UUIDs: the key's length. */
const KEY_BYTES = 36;

/**
 * The most bytes a message's value may take: kcat must take its line (key,
 * tab and value) whatever its place in the input, and librdkafka and a
 * broker its record (value, key, headers and overhead) in a batch of its
 * own. Both are counted as if --key and every header were on, so --key,
 * --headers and --kafka never change a value.
 */
function maxValueBytes(config: Settings, headers: readonly Header[]): number {
  const headerBytes = headers.reduce((sum, header) => sum + headerWireBytes(header), 0);
  const byKcat = config.maxMessageBytes - KCAT_READ_BYTES - (KEY_BYTES + 1);
  const byBroker = config.maxMessageBytes - RECORD_BATCH_HEADER_BYTES - RDKAFKA_RECORD_OVERHEAD - KEY_BYTES - headerBytes;
  return Math.min(byKcat, byBroker);
}

/** Shapes as wide as any the run makes, for the widest envelope. */
const UUID_SHAPE = '00000000-0000-7000-8000-000000000000';
const WIDEST_MS = Date.UTC(2254, 11, 31, 23, 59, 59, 999);
const WIDEST_US = WIDEST_MS * 1000 + 999;
/** Longer than any site the identity draws; a longer one would only shrink chunks, never break the limit. */
const MAX_SITE_URL_LENGTH = 100;
/** An items message must hold the smallest page and any single activity event. */
const MIN_EVENT_ROOM_BYTES = 8192;

/** The fields of one message besides its data: ids, numbers and times, none needing JSON escaping. */
interface ChunkFields {
  uuid: string;
  windowId: string;
  chunkId: string;
  chunkIndex: number;
  chunkCount: number;
  hasFullSnapshot: boolean;
  /** The legacy chunk 0's summary of every event, as Python's json.dumps wrote it, escaped for the data string; or null. */
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
    return inData`", "compression": "gzip-base64", "has_full_snapshot": ${chunk.hasFullSnapshot}, "events_summary": ${chunk.eventsSummary ?? 'null'}}}}` +
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

  /** The headers PostHog's Python capture set on the legacy topic: token and distinct_id. No token, no token header. */
  pythonHeaders(): Header[] {
    const { token } = this.config;
    return [...(token === undefined ? [] : [['token', token] as const]), ['distinct_id', this.identity.distinctId]];
  }

  /** capture-rs's CapturedEventHeaders, its two null-valued ones left out. */
  captureRsHeaders(fields: Pick<ChunkFields, 'uuid' | 'receivedAtUs'>): Header[] {
    return [
      ...this.pythonHeaders(),
      ['session_id', this.identity.sessionId],
      ['timestamp', String(Math.floor(fields.receivedAtUs / 1000))],
      ['event', '$snapshot_items'],
      ['uuid', fields.uuid],
      ['now', chronoIsoTime(fields.receivedAtUs)],
    ];
  }
}

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

/** An object's keys in sorted order, each with its `"key":` text, for the keys in the order the object has them. */
interface KeyOrder {
  keys: readonly string[];
  sorted: [key: string, prefix: string][];
}

/**
 * Key orders met, by an object's first key: events come in a few shapes,
 * sorted once each. Looked up by first key and matched key by key, as
 * joining the keys into one lookup string had cost more than the sort saved.
 */
const sortedKeyOrders = new Map<string, KeyOrder[]>();
/** Shapes kept at most: API bodies have keys of random words, which would make the map grow without end. */
const MAX_KEY_ORDERS = 10_000;
let keyOrderCount = 0;

function sortedKeys(keys: string[]): KeyOrder['sorted'] {
  const first = keys[0];
  if (first === undefined) return [];
  let orders = sortedKeyOrders.get(first);
  if (orders) {
    search: for (const order of orders) {
      if (order.keys.length !== keys.length) continue;
      for (let at = 1; at < keys.length; at++) if (order.keys[at] !== keys[at]) continue search;
      return order.sorted;
    }
  }
  if (keyOrderCount >= MAX_KEY_ORDERS) {
    sortedKeyOrders.clear();
    keyOrderCount = 0;
    orders = undefined;
  }
  if (!orders) sortedKeyOrders.set(first, (orders = []));
  // Array.prototype.sort's default order is by UTF-16 code units, as serde_json's by bytes for these ASCII keys.
  const sorted = [...keys].sort().map((key): [string, string] => [key, `${JSON.stringify(key)}:`]);
  orders.push({ keys, sorted });
  keyOrderCount++;
  return sorted;
}

/**
 * JSON with every object's keys sorted, as capture-rs re-serializes rrweb
 * events (serde_json without preserve_order).
 *
 * @example
 * sortedJson({ type: 3, data: { y: 1, x: 2 } }); // '{"data":{"x":2,"y":1},"type":3}'
 */
export function sortedJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  let text: string;
  if (Array.isArray(value)) {
    text = '[';
    for (let at = 0; at < value.length; at++) text += (at === 0 ? '' : ',') + sortedJson(value[at]);
    return `${text}]`;
  }
  text = '{';
  let separator = '';
  for (const [key, prefix] of sortedKeys(Object.keys(value))) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) continue;
    text += separator + prefix + sortedJson(item);
    separator = ',';
  }
  return `${text}}`;
}

/** gzip level for vegeta bodies' fresh text: level 1 keeps the generator ahead; the server reads any level alike. Stylesheets, compressed once, take COMPRESSION's (see BodyWriter). */
const BODY_GZIP = { level: 1 };
/** The header zlib's gzip writes at BODY_GZIP's level: no time, extra flags 4 (fastest), OS 3 (Unix). */
const BODY_GZIP_HEADER = gzip.header(0, { extraFlags: 4, os: 3 });
/** posthog-js's request queue sends every 3 s; each event in a request carries its age as `offset`. */
const MAX_SEND_OFFSET_MS = 3000;

/** What a format's messages are made from: the session's frame, ids, streams and windows, and the run's settings. */
interface SessionState {
  readonly config: Config;
  readonly identity: Identity;
  readonly frame: MessageFrame;
  /** posthog-js's ids: session, windows and events, one UUIDv7 clock. */
  readonly clientIds: UuidV7;
  /** capture's ids. */
  readonly captureRng: RandomGenerator;
  /** The stochastic rounding of random payload sizes, and vegeta's send offsets. */
  readonly payloadRng: RandomGenerator;
  /** `--payload random`'s letters: one stream a session, each snapshot its next stretch; undefined for rrweb events. */
  readonly payloadLetters: RandomLetters | undefined;
  /** The session's windows, by the plan's window numbers; none for random payloads. */
  readonly windows: readonly BrowserWindow[];
  /** What a message leaves its data once its envelope, key and headers are counted (section 6's fitMessageLimit). */
  readonly messageRoom: number;
}

/** A format's messages: how they are made, and for a Kafka format their envelope and the least room their data needs. */
interface FormatMessages {
  make(session: SessionState, snapshot: PlannedSnapshot, windowId: string): SnapshotMessages;
  envelope?(frame: MessageFrame, fields: ChunkFields): { text: string; headers: Header[] };
  leastRoom?(config: Settings): number;
}

/** The smallest chunk worth a message: smaller ones would only multiply messages. */
const MIN_CHUNK_CHARS = 1024;
/** Chunk 0 of rrweb data also carries events_summary, tens of characters an event: room for a batch's worth. */
const MIN_RRWEB_CHUNK_CHARS = 65_536;

/** `--format snapshot`: the snapshot's data (random, or rrweb gzip-base64) in chunks of one chunk_id, UUIDTs as capture made them. */
function snapshotChunks(session: SessionState, snapshot: PlannedSnapshot, windowId: string): SnapshotMessages {
  const { config, frame, captureRng } = session;
  let data: { text: PayloadText; length: number };
  let eventsSummaryText: string | null = null;
  if (session.payloadLetters) {
    data = randomSnapshotData(session.payloadLetters, session.payloadRng, snapshot.size);
  } else {
    const { member, events } = legacyRrwebData(session.windows[snapshot.window]!, snapshot);
    data = base64Of(member);
    eventsSummaryText = escapeInData(eventsSummary(events));
  }
  // Chunk 0 carries the summary in place of the 'null' the others carry.
  const capacity = config.chunkSize;
  const firstCapacity = capacity - (eventsSummaryText === null ? 0 : eventsSummaryText.length - 'null'.length);
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
    messages.push({ headers: () => frame.pythonHeaders(), head: frame.snapshotHead(chunk), data: data.text, dataLength, tail: frame.snapshotTail(chunk) });
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
function itemsBatches(session: SessionState, snapshot: PlannedSnapshot, windowId: string): SnapshotMessages {
  const { frame } = session;
  const room = session.messageRoom - 2; // 2: the list's brackets
  // An event is escaped once more in `data`, which can make its text up to about twice as long.
  const events = sentEvents(session.windows[snapshot.window]!, snapshot, !session.config.noCompressEvents, room / 2, sortedJson);
  // Each event is escaped and written as UTF-8 once: the bytes written decide the batches, and are their data.
  Utf8Scratch.start();
  const batchEnds: number[] = [];
  let written = 0;
  let batchStart = 0;
  for (const text of events.texts) {
    const at = written === batchStart ? written : written + 1; // after a comma, but for a batch's first event
    const bytes = Utf8Scratch.writeEventInData(text, at);
    if (written > batchStart && at + bytes - batchStart > room) {
      // The batch is full: the event starts the next one, where its comma was to go.
      Utf8Scratch.buffer.copyWithin(written, at, at + bytes);
      batchEnds.push(written);
      batchStart = written;
      written += bytes;
    } else {
      if (at > written) Utf8Scratch.buffer[written] = 0x2c; // ,
      written = at + bytes;
    }
  }
  batchEnds.push(written);
  const data = Utf8Scratch.buffer;
  const messages = batchEnds.map((end, at): Message => {
    const start = at === 0 ? 0 : batchEnds[at - 1]!;
    const fields = { uuid: session.clientIds.at(snapshot.sentAtMs), windowId, receivedAtUs: snapshot.receivedAtUs, sentAtMs: snapshot.sentAtMs };
    return {
      headers: () => frame.captureRsHeaders(fields), head: `${frame.itemsHead(fields)}[`,
      data: new Utf8Text(data, start, end), dataLength: end - start, tail: `]${frame.itemsTail(fields)}`,
    };
  });
  return { kind: snapshot.kind, size: events.chars, receivedAtUs: snapshot.receivedAtUs, messages };
}

/**
 * A scratch buffer that a snapshot's text is converted into as UTF-8, once,
 * reused from snapshot to snapshot: snapshot-items counts an event's bytes
 * as it writes them, and its messages' data are views of it; vegeta gzips
 * its body from it. Converting each event to count its bytes, then its
 * message again to write it, had taken a tenth of a snapshot-items run.
 * Every output writes or copies a snapshot's lines before the next snapshot
 * is made (a worker into its batch, main into its block or a Kafka record),
 * so the next snapshot may write over them: `snapshot` counts snapshots, and
 * a view of an older one is refused. The scratch keeps the size of the
 * largest snapshot met up to keptBytes (a few MiB in most runs), and lets go
 * of a larger one: kept to 1 MiB, it was grown again for every large page
 * load, and the buffers let go waited for the collector, which at 1,000
 * sessions in flight on two workers raised peak RSS from 328-332 MiB to
 * 371-372 (two runs each); kept to 16 MiB, 329-356 against 359-369.
 */
const Utf8Scratch = {
  buffer: Buffer.alloc(0),
  keptBytes: 16 * 1024 * 1024,
  snapshot: 0,

  start(): void {
    this.snapshot++;
    if (this.buffer.length > this.keptBytes) this.buffer = Buffer.alloc(0);
  },

  /** Writes `text` at `offset`, growing the buffer (what it holds kept) if need be; returns the bytes written. */
  write(text: string, offset: number): number {
    for (;;) {
      const room = this.buffer.length - offset;
      const bytes = room > 0 ? this.buffer.write(text, offset) : 0;
      // A write stops before a character that does not fit, and a character takes at most 4 bytes: with
      // room for 4 more left, all of it fit. (Room for 3 bytes a character made the buffer 3 times the text.)
      if (room - bytes >= 4) return bytes;
      this.grow(offset, offset + text.length + 4);
    }
  },

  /** Writes an event's JSON at `offset` as items' `data` carries it, escaped once more; returns the bytes written. (Vegeta's body writes its events through BodyWriter.) */
  writeEventInData(text: EventText, offset: number): number {
    if (typeof text === 'string') return this.write(escapeInData(text), offset);
    let at = offset + this.write(escapeInData(text.before), offset);
    at += this.writeMember(text.member, at, MEMBER_BYTES_IN_DATA);
    return at - offset + this.write(escapeInData(text.after), at);
  },

  /** Writes a member's bytes at `offset` as a latin1 string's characters are written in JSON (`tables`); returns the bytes written. */
  writeMember(member: Uint8Array, offset: number, { shortLengths, shortBytes, longLengths, longBytes }: MemberByteTables): number {
    let at = offset;
    // A stretch at a time, with room for its worst case (7 bytes a byte): room for the whole member's worst case would grow the buffer to 3 times what it needs.
    for (let start = 0; start < member.length; start += MEMBER_STRETCH_BYTES) {
      const end = Math.min(member.length, start + MEMBER_STRETCH_BYTES);
      const worstEnd = at + 7 * (end - start);
      if (this.buffer.length < worstEnd) this.grow(at, worstEnd);
      const { buffer } = this;
      for (let index = start; index < end; index++) {
        const byte = member[index]!;
        const length = shortLengths[byte]!;
        if (length !== 0) {
          // Both bytes stored whatever the length: a second one not wanted is written over next (half the time of branching on it).
          const bytes = shortBytes[byte]!;
          buffer[at] = bytes;
          buffer[at + 1] = bytes >> 8;
          at += length;
        } else {
          for (let from = byte * 8, to = from + longLengths[byte]!; from < to; from++) buffer[at++] = longBytes[from]!;
        }
      }
    }
    return at - offset;
  },

  /** A larger buffer, at least `least` bytes, holding what the first `kept` bytes held. */
  grow(kept: number, least: number): void {
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, least, 64 * 1024));
    this.buffer.copy(grown, 0, 0, kept);
    this.buffer = grown;
  },
};

/** Bytes of a member written between checks for room. */
const MEMBER_STRETCH_BYTES = 16 * 1024;

/** How each byte of a member is written (see MEMBER_BYTES_IN_JSON). */
interface MemberByteTables {
  shortLengths: Uint8Array;
  shortBytes: Uint16Array;
  longLengths: Uint8Array;
  longBytes: Uint8Array;
}

/**
 * Each byte of a member, read as a latin1 character, as it is written in a
 * JSON string (MEMBER_BYTES_IN_JSON) or escaped once more inside another
 * (MEMBER_BYTES_IN_DATA), in UTF-8. Most take one or two bytes (`short`:
 * their count, and the bytes in one unit, first byte low); the rest are
 * escapes of up to 7 (`\\u0001`), `long`, at 8 bytes a character.
 */
const [MEMBER_BYTES_IN_JSON, MEMBER_BYTES_IN_DATA] = [1, 2].map((escapes): MemberByteTables => {
  const tables = { shortLengths: new Uint8Array(256), shortBytes: new Uint16Array(256), longLengths: new Uint8Array(256), longBytes: new Uint8Array(256 * 8) };
  for (let byte = 0; byte < 256; byte++) {
    let text = String.fromCharCode(byte);
    for (let time = 0; time < escapes; time++) text = escapeInData(text);
    const bytes = Buffer.from(text);
    if (bytes.length <= 2) {
      tables.shortLengths[byte] = bytes.length;
      tables.shortBytes[byte] = bytes[0]! | ((bytes[1] ?? 0) << 8);
    } else {
      tables.longLengths[byte] = bytes.copy(tables.longBytes, byte * 8);
    }
  }
  return tables;
}) as [MemberByteTables, MemberByteTables];

/** Bytes `start` to `end` of the scratch as a message's data, read front to back while their snapshot is the latest. */
class Utf8Text implements PayloadText {
  private readonly bytes: Buffer;
  private readonly snapshot = Utf8Scratch.snapshot;
  private at: number;
  private readonly end: number;

  constructor(bytes: Buffer, start: number, end: number) {
    this.bytes = bytes;
    this.at = start;
    this.end = end;
  }

  writeNext(target: Buffer, offset: number, count: number): void {
    if (this.snapshot !== Utf8Scratch.snapshot) throw new Error('internal error: a line is written after the next snapshot was made');
    this.bytes.copy(target, offset, this.at, (this.at = Math.min(this.end, this.at + count)));
  }
}

/**
 * A vegeta body as a gzip member, written in pieces. Fresh text goes into
 * the scratch as UTF-8 and is compressed at BODY_GZIP's level, up to a
 * flush point wherever a page load's member holds a stylesheet. That
 * stylesheet's bytes, escaped as the body carries them, are compressed
 * once for the run (at COMPRESSION's level, as it happens once) and
 * spliced in, CRC-32s combined. They are compressed data, on which deflate
 * works hard for little: about a fifth of a body's text, which had been
 * compressed again for every page load linking them. One body at a time,
 * as the scratch holds one snapshot's text.
 *
 * @example
 * const writer = new BodyWriter();
 * writer.write('[');
 * writer.writeEvent({ before: '{"data":"', member, splices, after: '"}' }); // a page load's member and the stylesheets spliced into it
 * writer.write(']');
 * gunzipSync(writer.finish()); // the JSON text, the member as a latin1 string
 */
export class BodyWriter {
  private readonly pieces: Buffer[] = [BODY_GZIP_HEADER];
  private crc = 0;
  private size = 0;
  /** Bytes of fresh text in the scratch, not yet compressed. */
  private bytes = 0;

  constructor() {
    Utf8Scratch.start();
  }

  write(text: string): void {
    this.bytes += Utf8Scratch.write(text, this.bytes);
  }

  /** Writes an event's JSON, the stylesheets in its member, if any, spliced in compressed. */
  writeEvent(text: EventText): void {
    if (typeof text === 'string') return this.write(text);
    this.write(text.before);
    let from = 0;
    for (const { at, block } of text.splices) {
      this.bytes += Utf8Scratch.writeMember(text.member.subarray(from, at), this.bytes, MEMBER_BYTES_IN_JSON);
      this.compress(zlibConstants.Z_SYNC_FLUSH);
      this.take(this.stylesheet(block));
      from = at + block.deflated.length;
    }
    this.bytes += Utf8Scratch.writeMember(text.member.subarray(from), this.bytes, MEMBER_BYTES_IN_JSON);
    this.write(text.after);
  }

  /** The gzip member: the rest of the fresh text compressed to the end of the stream. */
  finish(): Buffer {
    this.compress(zlibConstants.Z_FINISH);
    compressionWork.text += this.size;
    return Buffer.concat([...this.pieces, gzip.trailer(this.crc, this.size)]);
  }

  /** Compresses the fresh text to a flush point (or the end), and starts the scratch over. */
  private compress(finishFlush: number): void {
    if (this.bytes === 0 && finishFlush !== zlibConstants.Z_FINISH) return;
    const text = Utf8Scratch.buffer.subarray(0, this.bytes);
    this.take({ deflated: deflate(text, { ...BODY_GZIP, finishFlush }), crc: crc32(text), length: text.length });
    this.bytes = 0;
  }

  private take({ deflated, crc, length }: CompressedPiece): void {
    this.pieces.push(deflated);
    this.crc = crc32Combine(this.crc, crc, length);
    this.size += length;
  }

  /** A stylesheet's member bytes as the body's compressed text, made on first use (in the scratch, which compress left empty). */
  private stylesheet(block: DeflatedText): CompressedPiece {
    let piece = bodyStylesheets.get(block);
    if (!piece) {
      const length = Utf8Scratch.writeMember(block.deflated, 0, MEMBER_BYTES_IN_JSON);
      const text = Utf8Scratch.buffer.subarray(0, length);
      piece = { deflated: deflate(text, { ...COMPRESSION, finishFlush: zlibConstants.Z_SYNC_FLUSH }), crc: crc32(text), length };
      bodyStylesheets.set(block, piece);
      compressionWork.stylesheets += length;
    }
    compressionWork.reused += piece.length;
    return piece;
  }
}

/** Each stylesheet's member bytes as vegeta bodies carry them, compressed: kept as long as its site. */
const bodyStylesheets = new WeakMap<DeflatedText, CompressedPiece>();

/**
 * `--format vegeta`: one target per snapshot (`vegeta attack -lazy
 * -format=json`), posting to --capture-url what posthog-js sends: a gzipped
 * JSON list holding one `$snapshot` event with the batch's rrweb events, the
 * URL carrying posthog-js's send time and version as it does. Targets have
 * exactly vegeta's keys; the body is base64, as vegeta requires.
 */
function vegetaTarget(session: SessionState, snapshot: PlannedSnapshot, windowId: string): SnapshotMessages {
  const { config, identity } = session;
  const events = sentEvents(session.windows[snapshot.window]!, snapshot, !config.noCompressEvents, Infinity, JSON.stringify);
  const uuid = session.clientIds.at(snapshot.sentAtMs);
  const offset = Math.floor(uniform(session.payloadRng) * MAX_SEND_OFFSET_MS);
  // The body, written piece by piece: its events are not joined into one text first.
  const writer = new BodyWriter();
  writer.write(`[{"uuid":"${uuid}","event":"$snapshot","properties":{"$snapshot_bytes":${events.chars},"$snapshot_data":[`);
  events.texts.forEach((text, at) => {
    if (at > 0) writer.write(',');
    writer.writeEvent(text);
  });
  writer.write(
    `],"$session_id":${JSON.stringify(identity.sessionId)},"$window_id":${JSON.stringify(windowId)},"$lib":"web",` +
    `"$lib_version":"${POSTHOG_JS_VERSION}","token":${jsonOrNull(config.token)},"distinct_id":${JSON.stringify(identity.distinctId)}},` +
    `"offset":${offset}}]`);
  const body = base64Of(writer.finish());
  const url = `${config.captureUrl}${config.captureUrl.includes('?') ? '&' : '?'}_=${snapshot.sentAtMs}&ver=${POSTHOG_JS_VERSION}`;
  const message: Message = {
    headers: () => [], head: `{"method":"POST","url":${JSON.stringify(url)},"body":"`, data: body.text, dataLength: body.length,
    tail: '","header":{"Content-Type":["application/json"]}}',
  };
  return { kind: snapshot.kind, size: events.chars, receivedAtUs: snapshot.receivedAtUs, messages: [message] };
}

/**
 * The other half of each OUTPUT_FORMATS entry: how a snapshot becomes the
 * format's messages, and for a Kafka format what bounds them, the text
 * around a message's data with its headers (the envelope, at its widest)
 * and the least room its data needs.
 */
const FORMAT_MESSAGES: Record<Format, FormatMessages> = {
  snapshot: {
    make: snapshotChunks,
    envelope: (frame, fields) => ({ text: frame.snapshotHead(fields) + frame.snapshotTail(fields), headers: frame.pythonHeaders() }),
    leastRoom: (config) => (config.payload === 'rrweb' ? MIN_RRWEB_CHUNK_CHARS : MIN_CHUNK_CHARS),
  },
  'snapshot-items': {
    make: itemsBatches,
    envelope: (frame, fields) => ({ text: frame.itemsHead(fields) + frame.itemsTail(fields), headers: frame.captureRsHeaders(fields) }),
    leastRoom: () => MIN_EVENT_ROOM_BYTES,
  },
  vegeta: { make: vegetaTarget },
};

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
  const { text, headers } = FORMAT_MESSAGES[config.format].envelope?.(frame, fields) ?? { text: '', headers: [] };
  return Buffer.byteLength(text) + config.maxMessageBytes - maxValueBytes(config, headers);
}

/** The original script's chunk size. */
const DEFAULT_CHUNK_CHARS = 900_000;


/**
 * Fits the chunk size (and so every message) to --max-message-bytes, naming
 * the flag at fault when they cannot fit: --chunk-size if it was given, the
 * token if it is what takes the room, else --max-message-bytes itself.
 */
function fitMessageLimit(config: Settings, chunkSize: number | undefined): number {
  const overhead = maxEnvelopeBytes(config);
  // A snapshot message needs room for a chunk of data; an items message for an rrweb event of the smallest size.
  const least = overhead + (FORMAT_MESSAGES[config.format].leastRoom?.(config) ?? 0);
  if (config.maxMessageBytes < least) {
    const withoutToken = maxEnvelopeBytes({ ...config, token: undefined }) + least - overhead;
    if (config.token !== undefined && config.maxMessageBytes >= withoutToken) {
      const tokenRoom = config.token.length - (least - config.maxMessageBytes);
      throw new UsageError(`--token accepts at most about ${tokenRoom} characters with --max-message-bytes ${config.maxMessageBytes} ` +
        `(it travels in the value and a header of every message), got ${config.token.length}`);
    }
    throw new UsageError(
      `--max-message-bytes accepts at least ${least} for --format ${config.format} (each message spends up to ${overhead} ` +
        `bytes on its envelope, key, headers and librdkafka's overhead), got ${config.maxMessageBytes}`,
    );
  }
  if (!takesFlag(config.format, 'chunk-size')) return 0;
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

/**
 * One session as it runs: its plan, identity and payload state. `next()`
 * makes the next snapshot's messages; they must be written in order, since
 * each continues the session's page and payload streams.
 *
 * @example
 * const session = new SessionMessages(config, 0, config.startMs);
 * for (let snapshot = session.next(); snapshot; snapshot = session.next()) write(snapshot.messages);
 */
export class SessionMessages implements SessionState {
  readonly index: number;
  readonly identity: Identity;
  readonly plan: SessionPlan;
  readonly config: Config;
  readonly frame: MessageFrame;
  readonly clientIds: UuidV7;
  readonly captureRng: RandomGenerator;
  readonly payloadRng: RandomGenerator;
  readonly payloadLetters: RandomLetters | undefined;
  readonly windows: BrowserWindow[] = [];
  readonly messageRoom: number;
  private readonly site: Site | undefined;
  private readonly contentRng: RandomGenerator;
  private readonly windowIds: string[] = [];
  private upcoming: PlannedSnapshot | undefined;
  /** Snapshots so far. */
  snapshots = 0;

  constructor(config: Config, index: number, arrivalMs: number) {
    this.config = config;
    this.index = index;
    const random = new SessionRandom(config.seedValue, index);
    this.plan = new SessionPlan(config, random, arrivalMs);
    this.clientIds = new UuidV7(random.stream('ids'));
    this.identity = sampleIdentity(random, arrivalMs, this.clientIds);
    this.captureRng = random.stream('capture');
    this.payloadRng = random.stream('payload');
    this.contentRng = random.stream('content');
    const opaque = config.payload === 'random';
    this.payloadLetters = opaque ? new RandomLetters(random.state('payload')) : undefined;
    this.site = opaque ? undefined : siteOf(config.seedValue, this.identity.site);
    // Random payloads need no site; the legacy envelope still names one, the same for the same index.
    this.frame = new MessageFrame(config, this.identity, this.site?.origin ?? `https://site-${this.identity.site}.example.com`);
    this.messageRoom = OUTPUT_FORMATS[config.format].topic === null ? Infinity : config.maxMessageBytes - maxEnvelopeBytes(config);
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
    return FORMAT_MESSAGES[this.config.format].make(this, snapshot, this.windowIds[snapshot.window]!);
  }
}

// ===========================================================================
// 7. Output: sessions interleaved in time as capture writes them (made
// inline, or on --jobs worker threads and merged back in the same order),
// lines laid out in large blocks and written to stdout (never a partial line)
// or produced to Kafka (every message acknowledged), pacing for --rate and
// --realtime, signals, and what was delivered for --progress and --stats.
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
  /** Sessions that have arrived so far. */
  arrivals = 0;
  private area = 0;
  private firstUs: number | undefined;
  private lastUs = 0;
  /** The area and time span up to the latest arrival: the mean leaves out the drain after it. */
  private toLatestArrival = { area: 0, spanUs: 0 };

  arrive(atUs: number): void {
    this.advance(atUs);
    this.toLatestArrival = { area: this.area, spanUs: atUs - this.firstUs! };
    this.arrivals++;
    this.max = Math.max(this.max, ++this.now);
  }

  leave(atUs: number): void {
    this.advance(atUs);
    this.now--;
  }

  get mean(): number {
    return this.toLatestArrival.spanUs === 0 ? this.now : this.toLatestArrival.area / this.toLatestArrival.spanUs;
  }

  private advance(atUs: number): void {
    this.firstUs ??= atUs;
    this.area += this.now * (atUs - this.lastUs);
    this.lastUs = atUs;
  }
}

/** What scheduleSnapshots tells as sessions arrive: a worker passes arrivals on; they end with their `last` snapshot. */
export interface SessionTimeline {
  arrive(atUs: number, index: number): void;
}

/** A snapshot to write, the session it belongs to, and whether it is that session's last. */
export interface ScheduledSnapshot {
  session: SessionMessages;
  snapshot: SnapshotMessages;
  last: boolean;
}

/** One job (a worker thread, or the main thread beside them) of a run's `count`, by its `index`. */
export interface Job {
  index: number;
  count: number;
}

/**
 * Which of a run's jobs makes each session: the one whose sessions in
 * flight plan the fewest characters a second of simulated time when it
 * arrives (ties dealt round, as sessions that do not overlap are), so that
 * the jobs keep pace with one another in the merged stream, whose order
 * makes the run wait for its slowest job. Dealt round by index, the two jobs
 * of a legacy `--count 50` run took 10-12 and 4.6-5.9 CPU-s; so balanced,
 * 8.5-9.2 and 6.5-7.6 (its session 0 alone takes 4.5). Every job walks
 * every arrival and plans it, and so decides alike; what a session writes
 * does not depend on which job makes it.
 *
 * @example
 * const balance = new JobBalance(config, 2);
 * balance.owner(0, config.startMs); // 0: the first session goes to the first job
 */
export class JobBalance {
  private readonly config: Config;
  /** Each job's sessions in flight: when each ends, and its planned characters per ms. */
  private readonly inFlight: { endMs: number; charsPerMs: number }[][];
  private lastOwner = -1;

  constructor(config: Config, jobs: number) {
    this.config = config;
    this.inFlight = Array.from({ length: jobs }, () => []);
  }

  /** The job that makes session `index`, arriving at `arrivalMs`. */
  owner(index: number, arrivalMs: number): number {
    if (this.inFlight.length === 1) return 0;
    const plan = new SessionPlan(this.config, new SessionRandom(this.config.seedValue, index), arrivalMs);
    let chars = 0;
    let endMs = arrivalMs;
    for (let snapshot = plan.next(); snapshot; snapshot = plan.next()) [chars, endMs] = [chars + snapshot.size, snapshot.sentAtMs];
    const jobs = this.inFlight.length;
    let owner = 0;
    let least = Infinity;
    for (let turn = 1; turn <= jobs; turn++) {
      const job = (this.lastOwner + turn) % jobs;
      const going = this.inFlight[job]!.filter((session) => session.endMs > arrivalMs);
      this.inFlight[job] = going;
      const load = going.reduce((sum, session) => sum + session.charsPerMs, 0);
      if (load < least) [owner, least] = [job, load];
    }
    this.inFlight[owner]!.push({ endMs, charsPerMs: chars / (endMs - arrivalMs) });
    this.lastOwner = owner;
    return owner;
  }
}

/**
 * Every snapshot of the run in the order capture writes them: sessions
 * arrive (Arrivals), and of all in flight, the snapshot received first goes
 * next. With --order session, one whole session after another instead.
 * Only this shard's sessions are made, and of them the ones JobBalance gives
 * `job`; the arrivals of all are walked, so a shard's snapshots are exactly
 * the unsharded run's, in the same order.
 *
 * @example
 * for (const { snapshot } of scheduleSnapshots(config, { arrive: () => {} })) console.log(snapshot.receivedAtUs);
 */
export function* scheduleSnapshots(config: Config, timeline: SessionTimeline, job: Job = { index: 0, count: 1 }): Generator<ScheduledSnapshot> {
  const arrivals = new Arrivals(config);
  const queue = new SessionQueue();
  const balance = new JobBalance(config, job.count);
  const ours = (index: number, atMs: number) => index % config.shard.count === config.shard.index && balance.owner(index, atMs) === job.index;
  let arrival = arrivals.next();
  for (;;) {
    // A run without --count ends its arrivals at LAST_START_MS, as --start does.
    while (arrival.index < config.count && arrival.atMs < LAST_START_MS && (queue.size === 0 || (config.order === 'time' && arrival.atMs * 1000 <= queue.nextAtUs))) {
      if (ours(arrival.index, arrival.atMs)) {
        queue.push(new SessionMessages(config, arrival.index, arrival.atMs));
        timeline.arrive(arrival.atMs * 1000, arrival.index);
      }
      arrival = arrivals.next();
    }
    const session = queue.pop();
    if (!session) return;
    const snapshot = session.next()!;
    const last = session.nextAtUs === undefined;
    if (!last) queue.push(session);
    yield { session, snapshot, last };
  }
}

/** Whether stderr still takes text: it is commentary, so a closed or full stderr never stops a run or changes its status. */
let stderrWorks = true;

/** Writes to stderr, and stops trying after it fails once (a reader gone, a disk full). */
function writeStderr(text: string): void {
  if (!stderrWorks) return;
  try {
    writeSync(2, text);
  } catch {
    stderrWorks = false;
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

/** The signals that stop a run, and the status it then ends with: 128 and the signal's number. */
const SIGNAL_STATUS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
type StopSignalName = keyof typeof SIGNAL_STATUS;
/**
 * After a signal, a write that has waited this long, and STALL_PACE times as
 * long as writes have lately taken, means the reader has stalled: the signal
 * then ends the process. The pace keeps a slow reader (one a busy machine
 * starves, or one that pauses 50 ms a read: 0.8 s a 1 MiB write) from
 * counting as stalled, and cutting the line being written.
 */
const STALLED_WRITE_MS = 400;
const STALL_PACE = 10;
/** How often a stopping run looks for a stalled write. */
const STALL_CHECK_MS = 100;
/**
 * A signal this long after the first is a second one, which ends the run at
 * once; sooner, it is a copy: GNU timeout signals the command and then its
 * process group, and tsx passes its signals on to its child. A person's
 * second Ctrl-C comes later.
 */
const REPEATED_SIGNAL_MS = 250;
/** Timers are kept short of their 2^31 ms ceiling. */
const MAX_TIMER_MS = 2 ** 30;

/** What StopSignal watches of the sink: since when the write under way has waited, if one is, and how long writes have lately taken. */
type Writing = Pick<Sink, 'writingSinceMs' | 'recentWriteMs'>;

/**
 * SIGINT, SIGTERM and SIGHUP, caught: the run stops after the line being
 * written (waits for --rate or --realtime end at once), and ends with 130,
 * 143 or 129. When the reader has stalled, so that the line cannot be
 * written, or a second signal comes (not a copy of the first, see
 * REPEATED_SIGNAL_MS), the signal ends the process itself
 * (after `lastWords`), so a stop never waits on a reader.
 */
class StopSignal {
  /** 130, 143 or 129 once a signal came. */
  status: number | undefined;
  signal: StopSignalName | undefined;
  private signalledAtMs = 0;
  private wake: (() => void) | undefined;

  /** The writer whose stalls a stopping run watches for, once there is one. */
  writer: Writing | undefined;

  /** Starts catching signals; `lastWords` speaks before a signal ends the process itself. */
  listen(lastWords: () => void): void {
    for (const signal of Object.keys(SIGNAL_STATUS) as StopSignalName[]) {
      process.on(signal, () => {
        if (this.signal) {
          if (performance.now() - this.signalledAtMs >= REPEATED_SIGNAL_MS) this.end(lastWords);
          return;
        }
        this.signal = signal;
        this.signalledAtMs = performance.now();
        this.status = SIGNAL_STATUS[signal];
        this.wake?.();
        this.watchForStall(lastWords);
      });
    }
  }

  /** Sleeps until `untilMs` on performance.now()'s clock, or until a stop. */
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

  private watchForStall(lastWords: () => void): void {
    const since = this.writer?.writingSinceMs;
    const stalledMs = Math.max(STALLED_WRITE_MS, STALL_PACE * (this.writer?.recentWriteMs ?? 0));
    if (since !== undefined && performance.now() - since >= stalledMs) return this.end(lastWords);
    setTimeout(() => this.watchForStall(lastWords), STALL_CHECK_MS).unref();
  }

  /** Ends the process by its own signal: process.exit would wait for the write stuck in node's thread pool. */
  private end(lastWords: () => void): void {
    lastWords();
    const signal = this.signal!;
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
}

/** A generator that falls behind --rate catches up by at most this much, so a producer sees an even stream. */
const MAX_CATCH_UP_MS = 100; // --help says 0.1 s

/**
 * When lines may be written: --realtime holds each snapshot until its `now`
 * comes (counted from the run's start, sped up by --speed), --rate spaces
 * messages k/rate seconds apart; with both, a message waits for the later.
 * No wait lasts past the run's end (--duration).
 */
class Pacer {
  private readonly config: Config;
  private readonly stop: StopSignal;
  private readonly endMs: number;
  private readonly originMs = performance.now();
  /** When the first message went out: --rate counts from it, not from the start-up before it. */
  private rateOriginMs: number | undefined;
  private sent = 0;

  constructor(config: Config, stop: StopSignal, endMs: number) {
    this.config = config;
    this.stop = stop;
    this.endMs = endMs;
  }

  /**
   * A wait until the snapshot's time comes, first handing what is written so
   * far (`flush`) to the reader; undefined when it is due already, so the hot
   * path does not await.
   */
  snapshotDue(receivedAtUs: number, flush: () => Promise<void>): Promise<void> | undefined {
    const speed = realtimeSpeed(this.config);
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
    const untilMs = Math.min(dueMs, this.endMs);
    if (untilMs <= performance.now()) return undefined;
    return flush().then(() => this.stop.sleepUntil(untilMs));
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

/** A line as LineWriter takes it: its bytes, written into a block or, when longer than one, in pieces. */
interface OutputLine {
  readonly bytes: number;
  /** For --stats: NOTE bits, and the size of the snapshot the line starts. */
  readonly note: number;
  readonly snapshotSize: number;
  /** Writes the line at `offset`, returning the offset after it. */
  writeTo(target: Buffer, offset: number): number;
  /** The line in pieces, through `scratch` where it can. */
  pieces(scratch: Buffer): Iterable<Uint8Array>;
}

/** A line of a run, which --kafka produces with its key and headers beside it. */
interface RunLine extends OutputLine {
  /** The Kafka key, $session_id: --kafka sends it beside the line, --key in it. */
  readonly key: string;
  /** The Kafka headers capture sets: --kafka sends them beside the line, --headers in it. */
  headers(): readonly Header[];
}

/** What a line tells --stats once delivered: its bytes, NOTE bits, the size of the snapshot it starts, and for --kafka how long it took. */
type Delivered = (bytes: number, note: number, snapshotSize: number, latencyUs?: number) => void;

/** Where a run puts its lines: stdout or --output (LineWriter), or a Kafka topic (KafkaSink). */
interface Sink {
  /** Adds a line if it can without waiting, and says whether it did; if not, the caller awaits addAfterFlush. */
  add(line: RunLine): boolean;
  addAfterFlush(line: RunLine): Promise<void>;
  /** Hands on what was added so far, before the run waits for --rate or --realtime. */
  flush(): Promise<void>;
  /** Delivers what was added, unless delivery has failed, and waits until it is done. */
  close(): Promise<void>;
  /** Set once nothing more can be delivered: the reader went away, or delivery failed. */
  readonly closed: boolean;
  /** One line on what failed, for stderr, if anything did. */
  readonly failureLine: string | undefined;
  /** Since when the write under way has waited, if one is: a stall a signal need not wait out. */
  readonly writingSinceMs: number | undefined;
  /** How long writes have lately taken (a moving average, 0 before the first): the reader's pace. */
  readonly recentWriteMs: number;
}

/**
 * Collects lines into blocks and writes each block to a file descriptor from
 * node's thread pool while the next one fills: generation and the write
 * system call overlap, about twice as fast as process.stdout.write here.
 * Lines count as delivered once the reader has taken all their bytes. A line
 * longer than a block is written in pieces after the block before it.
 */
class LineWriter implements Sink {
  private readonly fd: number;
  private readonly where: string;
  private readonly onDelivered: Delivered;
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
  /** When the write under way began, if one is: a write that waits long means the reader has stalled. */
  writingSinceMs: number | undefined;
  recentWriteMs = 0;

  constructor({ fd, where }: { fd: number; where: string }, onDelivered: Delivered) {
    this.fd = fd;
    this.where = where;
    this.onDelivered = onDelivered;
    const block = (): Block => ({ buffer: Buffer.allocUnsafe(BLOCK_BYTES), filled: 0, ends: [], bytes: [], notes: [], sizes: [] });
    this.blocks = [block(), block()];
  }

  /**
   * Adds a line of `bytes` bytes if it fits in the block being filled, and
   * says whether it did; if not, the caller awaits `addAfterFlush`. (Most
   * lines fit: awaiting each would cost a tenth of the run.)
   */
  add(line: OutputLine): boolean {
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
  async addAfterFlush(line: OutputLine): Promise<void> {
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

  get failureLine(): string | undefined {
    return this.failure && `cannot write ${this.where}: ${this.failure.message}`;
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
  private async writeAll(bytes: Uint8Array): Promise<number> {
    let written = 0;
    while (written < bytes.length && !this.closed && !this.useStream) {
      this.writingSinceMs = performance.now();
      try {
        written += await new Promise<number>((resolve, reject) =>
          writeToFd(this.fd, bytes, written, bytes.length - written, null, (error, count) => (error ? reject(error) : resolve(count))),
        );
        // A moving average over about the last four writes: a reader's pace changes slowly.
        this.recentWriteMs += (performance.now() - this.writingSinceMs - this.recentWriteMs) / 4;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') this.switchToStream();
        else this.stop(error as NodeJS.ErrnoException);
      }
      this.writingSinceMs = undefined;
    }
    if (this.useStream && !this.closed && written < bytes.length) {
      const rest = bytes.subarray(written);
      this.writingSinceMs = performance.now();
      const ok = await new Promise<boolean>((resolve) => process.stdout.write(rest, (error) => resolve(!error)));
      this.writingSinceMs = undefined;
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
export class Line implements RunLine {
  private readonly prefix: string;
  private readonly message: Message;
  /** The Kafka key, $session_id: --kafka sends it beside the line, --key in it. */
  readonly key: string;
  readonly bytes: number;
  /** For --stats: NOTE bits, and the size of the snapshot the line starts. */
  readonly note: number;
  readonly snapshotSize: number;

  constructor(config: Pick<Config, 'key' | 'headers'>, key: string, message: Message, note = 0, snapshotSize = 0) {
    this.note = note;
    this.snapshotSize = snapshotSize;
    const headers = config.headers ? `${message.headers().map(([name, value]) => `${name}:${value}`).join(',')}\t` : '';
    this.prefix = headers + (config.key ? `${key}\t` : '');
    this.key = key;
    this.message = message;
    this.bytes = Buffer.byteLength(this.prefix) + Buffer.byteLength(message.head) + message.dataLength + Buffer.byteLength(message.tail) + 1;
  }

  /** The Kafka headers capture sets: --kafka sends them beside the line, --headers in it. */
  headers(): readonly Header[] {
    return this.message.headers();
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
 * Kafka's murmur2 hash, as the Java client, librdkafka's murmur2_random
 * partitioner and capture-rs use it to pick a key's partition.
 *
 * @example
 * murmur2(Buffer.from('21')); // -973932308
 */
function murmur2(bytes: Buffer): number {
  const mix = 0x5bd1e995;
  let hash = 0x9747b28c ^ bytes.length;
  const whole = bytes.length - (bytes.length % 4);
  for (let at = 0; at < whole; at += 4) {
    let word = Math.imul(bytes.readInt32LE(at), mix);
    word = Math.imul(word ^ (word >>> 24), mix);
    hash = Math.imul(hash, mix) ^ word;
  }
  const rest = bytes.length % 4;
  if (rest > 0) {
    if (rest === 3) hash ^= bytes[whole + 2]! << 16;
    if (rest >= 2) hash ^= bytes[whole + 1]! << 8;
    hash = Math.imul(hash ^ bytes[whole]!, mix);
  }
  hash = Math.imul(hash ^ (hash >>> 13), mix);
  return hash ^ (hash >>> 15);
}

/** The partition capture-rs's murmur2_random partitioner gives a key: the hash made positive, modulo the partitions. */
function partitionOf(key: Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/** A failure can carry one reason per broker and retry: the first few say it. */
const MAX_REASONS = 3;

/** Where the error came from, in the broker's or the network's words: MESSAGE_TOO_LARGE, connect ECONNREFUSED, ... */
function kafkaReason(error: unknown): string {
  const reasons = new Set<string>();
  const visit = (item: unknown): void => {
    if (!(item instanceof Error)) return void reasons.add(String(item));
    const { errors, cause, apiId } = item as Error & { errors?: unknown[]; cause?: unknown; apiId?: string };
    const inner = [...(errors ?? []), ...(cause === undefined ? [] : [cause])];
    if (inner.length > 0) inner.forEach(visit);
    else reasons.add(apiId ? `${apiId} (${item.message.replace(/\.$/, '')})` : item.message.replace(/\.$/, ''));
  };
  visit(error);
  const named = [...reasons].map((reason) => reason.replace(/\s+/g, ' '));
  return named.slice(0, MAX_REASONS).join('; ') + (named.length > MAX_REASONS ? `; and ${named.length - MAX_REASONS} more` : '');
}
/** The Kafka client --kafka loads, only then: the file runs without it otherwise. */
const KAFKA_CLIENT = '@platformatic/kafka';
/** The oldest node the client runs on (it calls node 22's Promise.withResolvers). */
const KAFKA_CLIENT_NODE = 22;
type KafkaClient = typeof import('@platformatic/kafka');
type KafkaProducer = InstanceType<KafkaClient['Producer']>;

/** Why --kafka cannot start: the status to exit with and one line saying why. */
interface Refusal {
  status: 1 | 2;
  line: string;
}

/** The client's options for the settings --kafka-option gave; TLS files are read here, a bad one refused as a UsageError. */
function producerOptions(kafka: KafkaConfig): ConstructorParameters<KafkaClient['Producer']>[0] {
  const settings = kafka.producer;
  const read = (file: string | undefined, option: string) => {
    try {
      return file === undefined ? undefined : readFileSync(file);
    } catch (error) {
      throw new UsageError(`--kafka-option ${option} cannot read ${file}: ${(error as Error).message}`);
    }
  };
  const tls = settings.securityProtocol.endsWith('ssl')
    ? { ca: read(settings.caFile, 'ssl.ca.location'), cert: read(settings.certificateFile, 'ssl.certificate.location'),
        key: read(settings.keyFile, 'ssl.key.location'), rejectUnauthorized: settings.verifyCertificates }
    : undefined;
  const sasl = settings.securityProtocol.startsWith('sasl')
    ? { mechanism: settings.saslMechanism, username: settings.saslUsername, password: settings.saslPassword }
    : undefined;
  return {
    clientId: settings.clientId, bootstrapBrokers: kafka.brokers, acks: settings.acks, compression: settings.compression,
    autocreateTopics: settings.autoCreateTopics, retries: settings.retries, retryDelay: settings.retryBackoffMs,
    timeout: settings.requestTimeoutMs, requestTimeout: settings.requestTimeoutMs, ...(tls && { tls }), ...(sasl && { sasl }),
  };
}

/** A message on its way to Kafka: its record, the bytes the broker counts for it, and what --stats learns once it is acknowledged. */
interface Outgoing {
  record: { topic: string; partition: number; key: Buffer; value: Buffer; headers: Map<Buffer, Buffer> };
  bytes: number;
  lineBytes: number;
  note: number;
  snapshotSize: number;
  sinceMs: number;
}

/** The line as a Kafka message: its value the line less its newline, keyed by $session_id, with capture's headers. */
function outgoingOf(line: RunLine, topic: string, partitions: number): Outgoing {
  const buffer = Buffer.allocUnsafe(line.bytes);
  line.writeTo(buffer, 0);
  const key = Buffer.from(line.key);
  const value = buffer.subarray(0, line.bytes - 1);
  const headers = line.headers();
  const record = { topic, partition: partitionOf(key, partitions), key, value, headers: new Map(headers.map(([name, text]) => [Buffer.from(name), Buffer.from(text)])) };
  const bytes = RDKAFKA_RECORD_OVERHEAD + key.length + value.length + headers.reduce((sum, header) => sum + headerWireBytes(header), 0);
  return { record, bytes, lineBytes: line.bytes, note: line.note, snapshotSize: line.snapshotSize, sinceMs: performance.now() };
}

/** One partition's messages not yet acknowledged: the batch on its way, if any, and those waiting behind it, the last still filling. */
interface PartitionQueue {
  inFlight: Outgoing[] | undefined;
  waiting: Outgoing[][];
  lastBatchBytes: number;
}

/**
 * Produces each line, without its newline, as a Kafka message keyed by its
 * $session_id with the headers capture sets, to the partition capture-rs
 * would pick. A partition has one batch on its way at a time, so a
 * session's messages arrive in order even when a batch is retried; batches
 * stay within what the broker takes. Memory is bounded by
 * buffer.memory: past it, add() waits for acknowledgements.
 */
class KafkaSink implements Sink {
  closed = false;
  /** Acknowledgements time out by themselves (request.timeout.ms): a stop waits for them. */
  readonly writingSinceMs = undefined;
  readonly recentWriteMs = 0;
  private readonly producer: KafkaProducer;
  private readonly kafka: KafkaConfig;
  private readonly partitions: number;
  private readonly batchBytes: number;
  private readonly onAcknowledged: Delivered;
  private readonly queues: PartitionQueue[];
  private readonly sends = new Set<Promise<void>>();
  /** Line bytes made and not yet acknowledged or lost. */
  private buffered = 0;
  private made = 0;
  private acknowledged = 0;
  /** When the oldest message not yet sent was made, for linger.ms. */
  private waitingSinceMs: number | undefined;
  private reason: string | undefined;

  private constructor(producer: KafkaProducer, kafka: KafkaConfig, partitions: number, maxMessageBytes: number, onAcknowledged: Delivered) {
    this.producer = producer;
    this.kafka = kafka;
    this.partitions = partitions;
    this.batchBytes = kafka.producer.batchBytes ?? maxMessageBytes;
    this.onAcknowledged = onAcknowledged;
    this.queues = Array.from({ length: partitions }, () => ({ inFlight: undefined, waiting: [], lastBatchBytes: 0 }));
  }

  /** Loads the client and asks the cluster for the topic's partitions: a sink, or why there can be none. */
  static async open(kafka: KafkaConfig, maxMessageBytes: number, onAcknowledged: Delivered): Promise<KafkaSink | Refusal> {
    if (!(Number(process.versions.node.split('.')[0]) >= KAFKA_CLIENT_NODE)) {
      return { status: 2, line: `--kafka needs node ${KAFKA_CLIENT_NODE} or later, as ${KAFKA_CLIENT} does; this is node ${process.version}` };
    }
    let producer: KafkaProducer;
    try {
      const client = (await import(KAFKA_CLIENT)) as KafkaClient;
      producer = new client.Producer(producerOptions(kafka));
    } catch (error) {
      if (error instanceof UsageError) return { status: 2, line: error.message };
      return { status: 2, line: `--kafka needs the package ${KAFKA_CLIENT} (npm i ${KAFKA_CLIENT}): ${(error as Error).message.split('\n')[0]}` };
    }
    const where = `Kafka topic ${kafka.topic} at ${kafka.brokers.join(',')}`;
    try {
      const metadata = await producer.metadata({ topics: [kafka.topic] });
      const partitions = metadata.topics.get(kafka.topic)?.partitionsCount ?? 0;
      if (partitions > 0) return new KafkaSink(producer, kafka, partitions, maxMessageBytes, onAcknowledged);
      throw new Error(`Unknown topic ${kafka.topic}`);
    } catch (error) {
      await producer.close().catch(() => undefined);
      const reason = kafkaReason(error);
      const hint = /unknown topic/i.test(String(error)) || reason.includes('UNKNOWN_TOPIC')
        ? ' (create it, or let the broker create it: --kafka-option allow.auto.create.topics=true)' : '';
      return { status: 1, line: `cannot produce to ${where}: ${reason}${hint}; nothing was sent` };
    }
  }

  add(line: RunLine): boolean {
    const full = this.buffered > 0 && this.buffered + line.bytes > this.kafka.producer.bufferBytes;
    const lingered = this.waitingSinceMs !== undefined && performance.now() - this.waitingSinceMs >= this.kafka.producer.lingerMs;
    if (full || lingered) return false;
    this.enqueue(line);
    return true;
  }

  /** Sends what waits, lets acknowledgements in, and waits for room under buffer.memory before adding the line. */
  async addAfterFlush(line: RunLine): Promise<void> {
    this.dispatch(true);
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (!this.closed && this.buffered > 0 && this.buffered + line.bytes > this.kafka.producer.bufferBytes && this.sends.size > 0) {
      await Promise.race(this.sends);
    }
    if (!this.closed) this.enqueue(line);
  }

  async flush(): Promise<void> {
    this.dispatch(true);
  }

  async close(): Promise<void> {
    while (!this.closed && this.queues.some((queue) => queue.inFlight || queue.waiting.length > 0)) {
      this.dispatch(true);
      await Promise.race(this.sends);
    }
    await Promise.all(this.sends);
    await this.producer.close().catch(() => undefined);
  }

  get failureLine(): string | undefined {
    if (this.reason === undefined) return undefined;
    return `${this.made - this.acknowledged} of ${this.made} messages not delivered to Kafka topic ${this.kafka.topic}: ${this.reason}`;
  }

  /** Queues the line's message in its partition's last batch, or a new one when it would not fit. */
  private enqueue(line: RunLine): void {
    const outgoing = outgoingOf(line, this.kafka.topic, this.partitions);
    const queue = this.queues[outgoing.record.partition]!;
    const last = queue.waiting.at(-1);
    if (last && queue.lastBatchBytes + outgoing.bytes <= this.batchBytes) {
      last.push(outgoing);
      queue.lastBatchBytes += outgoing.bytes;
    } else {
      queue.waiting.push([outgoing]);
      queue.lastBatchBytes = RECORD_BATCH_HEADER_BYTES + outgoing.bytes;
      if (last && !queue.inFlight) this.dispatch(false);
    }
    this.buffered += line.bytes;
    this.made++;
    this.waitingSinceMs ??= outgoing.sinceMs;
  }

  /** Sends the first waiting batch of every partition with none on its way: full ones only, or with `all` those still filling too. */
  private dispatch(all: boolean): void {
    if (this.closed) return;
    const batches: Outgoing[][] = [];
    for (const queue of this.queues) {
      if (queue.inFlight || queue.waiting.length === 0 || (!all && queue.waiting.length === 1)) continue;
      queue.inFlight = queue.waiting.shift()!;
      batches.push(queue.inFlight);
    }
    if (all) this.waitingSinceMs = this.queues.some((queue) => queue.waiting.length > 0) ? performance.now() : undefined;
    if (batches.length === 0) return;
    const send: Promise<void> = this.send(batches).finally(() => this.sends.delete(send));
    this.sends.add(send);
  }

  /** Sends batches in one request per broker; counts what the broker acknowledged, and on failure stops the run with its reason. */
  private async send(batches: Outgoing[][]): Promise<void> {
    let written = (_partition: number) => true;
    try {
      await this.producer.send({ messages: batches.flatMap((batch) => batch.map((outgoing) => outgoing.record)) });
    } catch (error) {
      // Partitions the broker took before the failure are acknowledged all the same.
      const offsets: { partition: number }[] = (error as { produced?: { offsets?: { partition: number }[] } }).produced?.offsets ?? [];
      const taken = new Set(offsets.map(({ partition }) => partition));
      written = (partition) => taken.has(partition);
      this.reason ??= kafkaReason(error);
      this.closed = true;
    }
    const nowMs = performance.now();
    for (const batch of batches) {
      const { partition } = batch[0]!.record;
      this.queues[partition]!.inFlight = undefined;
      for (const outgoing of batch) {
        this.buffered -= outgoing.lineBytes;
        if (!written(partition)) continue;
        this.acknowledged++;
        this.onAcknowledged(outgoing.lineBytes - 1, outgoing.note, outgoing.snapshotSize, (nowMs - outgoing.sinceMs) * 1000);
      }
    }
    this.dispatch(false);
  }
}

/** The --output file, and when it is written atomically, the temporary file and the file it replaces once the run is whole. */
interface OutputFile {
  path: string;
  atomic?: { temporary: string; replaced: string };
}

/**
 * Where a run's lines go: stdout, or with --output a temporary file beside
 * the named one, renamed to it when the run is whole and removed when not,
 * so the named file is complete or untouched. A symbolic link to a regular
 * file keeps its link: the file it leads to is replaced. What is not a
 * regular file (a device such as /dev/null, a named pipe a reader waits on)
 * and a name of a descriptor (/dev/stdout, whatever it leads to) are
 * written in place: a file renamed over them would replace them, which as
 * root replaced /dev/null itself.
 */
class Destination {
  readonly fd: number;
  /** What a failed write names: `to stdout`, or the --output file. */
  readonly where: string;
  private readonly file: OutputFile | undefined;
  private closed = false;

  private constructor(fd: number, file?: OutputFile) {
    this.fd = fd;
    this.where = file?.path ?? 'to stdout';
    this.file = file;
  }

  /** Stdout, a fresh temporary file for `path`, or `path` itself when it is not a regular file; refused (UsageError) when it cannot be opened. */
  static open(path: string | undefined): Destination {
    if (path === undefined) return new Destination(1);
    try {
      const plan = Destination.plan(path);
      if ('inPlace' in plan) return new Destination(openSync(path, plan.inPlace), { path });
      const temporary = join(dirname(plan.replaced), `.${basename(plan.replaced)}.${process.pid}.tmp`);
      return new Destination(openSync(temporary, 'wx'), { path, atomic: { temporary, replaced: plan.replaced } });
    } catch (error) {
      // Name the file asked for, not the temporary one beside it.
      throw new UsageError(`--output cannot write ${path}: ${(error as Error).message.replace(/, (open|l?stat|realpath|readlink) .*$/, '')}`);
    }
  }

  /** How `path` is written: in place, opened with these flags, or through a temporary file renamed over the regular file it names. */
  private static plan(path: string): { inPlace: 'a' | 'w' } | { replaced: string } {
    const directory = realpathSync(dirname(path));
    const entry = lstatSync(path, { throwIfNoEntry: false });
    if (!entry) return { replaced: path };
    const link = entry.isSymbolicLink() ? resolvePath(directory, readlinkSync(path)) : '';
    // A descriptor's name (/dev/stdout, /dev/fd/N, /proc/self/fd/N) is appended to: the caller opened it, perhaps with >>, and 'w' would empty the file.
    if (directory.startsWith('/proc/') || link.startsWith('/proc/')) return { inPlace: 'a' };
    if (statSync(path, { throwIfNoEntry: false })?.isFile()) return { replaced: realpathSync(path) };
    return { inPlace: 'w' }; // a device, a named pipe, a directory (refused by open), or a dangling link, which opening makes
  }

  /** Puts the file in place after a whole run, or removes it, saying so; false when it could not be put in place. Once. */
  close(whole: boolean): boolean {
    if (!this.file || this.closed) return true;
    this.closed = true;
    const { path, atomic } = this.file;
    try {
      closeSync(this.fd);
      if (whole) {
        if (atomic) renameSync(atomic.temporary, atomic.replaced);
        return true;
      }
    } catch (error) {
      writeStderr(`generate.ts: cannot write ${path}: ${(error as Error).message}\n`);
    }
    if (!atomic) {
      writeStderr(`generate.ts: ${path} has part of the run: it did not end whole\n`);
      return false;
    }
    rmSync(atomic.temporary, { force: true });
    writeStderr(`generate.ts: ${path} was not written: the run did not end whole\n`);
    return false;
  }
}

// --- Jobs: sessions made on worker threads, merged back into the run's order --------

/** A snapshot in a worker's stream: its place in the run, what --stats and --verbose say of it, and how many lines follow. */
interface SnapshotEntry {
  arrival: false;
  atUs: number;
  index: number;
  sessionId: string;
  kind: SnapshotKind;
  size: number;
  lines: number;
  last: boolean;
  verbose: string | undefined;
}

/**
 * A line's worth of a run as a worker sends it, in the run's order within
 * its own sessions: a session arriving, or a snapshot whose `lines` lines
 * follow in the worker's line stream.
 */
type JobEntry = { arrival: true; atUs: number; index: number } | SnapshotEntry;

/** Lines rendered into one transferable buffer, with the entries they belong to. */
interface JobBatch {
  buffer: ArrayBuffer;
  /** Where each line ends in the buffer. */
  lineEnds: number[];
  /** With --kafka, each line's headers, which it produces beside the line. */
  lineHeaders: (readonly Header[])[];
  entries: JobEntry[];
  done: boolean;
  /** Whether the batch was sent on a credit of the run's shared pool, to which main returns it, rather than on the worker's own. */
  pooled: boolean;
}

/** A worker's batches are about this large; a longer line gets a batch of its own. */
const BATCH_BYTES = 1 << 20;
/**
 * Batches a worker may have sent and main not yet written, on average: what
 * bounds a worker's lead, and the memory the run holds (BATCH_CREDITS
 * batches a worker). Each worker has one credit of its own, so that main,
 * which writes in time order, never waits on a worker that cannot send; the
 * rest are a pool any worker draws on. The worker main waits on is behind
 * in time and holds few batches, so the one ahead may hold most of the
 * pool. Main and a worker take turns at being behind, as each meets a large
 * page load: with 4 credits, the worker of a snapshot-items `--count 50
 * --jobs 2` run waited 0.39 s of its 2.5 for credits while main waited 0.36
 * s for its batches. 16 credits (main's own job leading by as much, see
 * LOCAL_LEAD_BYTES) took 2-8% off the time of snapshot-items and legacy
 * rrweb under tsx at `--count 50` (four alternated pairs each), for 10-30
 * MiB more at peak with snapshot-items and none with legacy.
 */
const BATCH_CREDITS = 16;
/** Of BATCH_CREDITS, the credits each worker keeps for itself (see there). */
const OWN_CREDITS = 1;
/** Lines longer than this are made on the main thread, which writes them in pieces: a worker renders a line whole. */
const MAX_JOB_LINE_BYTES = 64 * 1024 * 1024;
/** The longest vegeta target: the base64 of a body of at most capture's 25 MB, with its URL and keys. */
const MAX_VEGETA_LINE_BYTES = Math.ceil((MAX_RRWEB_SNAPSHOT_CHARS * 1.01 * 4) / 3) + 10_000;
/** The workerData key that marks a generator worker. */
const JOB_DATA = 'generate.ts job';
/** The slots of the Int32Array main and a worker share: the batches the worker may still send on its own credit, and main asking it to stop. */
const CONTROL = { credits: 0, stop: 1 } as const;
/** The slots of the Int32Array main and every worker share: the pool's credits, and a count main bumps whenever it returns a credit or asks a worker to stop, which waiting workers wait on. */
const POOL = { credits: 0, wakes: 1 } as const;
/** How long main waits for a worker asked to stop to finish the snapshot it is making, before terminating it. */
const STOP_WAIT_MS = 2000;

/** What a worker makes: its job's sessions of the run, and what it shares with main (CONTROL) and with main and the other workers (POOL). */
interface JobSpec {
  config: Config;
  job: Job;
  control: Int32Array;
  pool: Int32Array;
}

/** Thrown in a worker that main asked to stop while it waited to send. */
class JobStopped extends Error {}

/**
 * The worker's side: makes its job's snapshots in schedule order and
 * renders their lines into batches, sent as they fill, each on a credit of
 * its own or of the run's pool (BATCH_CREDITS), which main returns once it
 * has written the batch.
 */
class BatchSender {
  private readonly control: Int32Array;
  private readonly pool: Int32Array;
  private readonly withHeaders: boolean;
  private batch: JobBatch = BatchSender.fresh(BATCH_BYTES);
  private target = Buffer.from(this.batch.buffer);
  private filled = 0;

  constructor(control: Int32Array, pool: Int32Array, withHeaders: boolean) {
    this.control = control;
    this.pool = pool;
    this.withHeaders = withHeaders;
  }

  private static fresh(bytes: number): JobBatch {
    return { buffer: new ArrayBuffer(bytes), lineEnds: [], lineHeaders: [], entries: [], done: false, pooled: false };
  }

  add(entry: JobEntry, lines: readonly Line[] = []): void {
    this.batch.entries.push(entry);
    for (const line of lines) {
      if (line.bytes > this.target.length - this.filled) this.send(Math.max(BATCH_BYTES, line.bytes));
      this.filled = line.writeTo(this.target, this.filled);
      this.batch.lineEnds.push(this.filled);
      if (this.withHeaders) this.batch.lineHeaders.push(line.headers());
    }
    if (this.filled >= BATCH_BYTES / 2 || this.batch.entries.length >= 4096) this.send(BATCH_BYTES);
  }

  /** Sends what is left, marked as the last batch. */
  finish(): void {
    this.batch.done = true;
    this.send(0);
  }

  private send(nextBytes: number): void {
    for (;;) {
      if (Atomics.load(this.control, CONTROL.stop)) throw new JobStopped();
      // Read before trying, so that a credit returned after the tries ends the wait.
      const wakes = Atomics.load(this.pool, POOL.wakes);
      if (takeCredit(this.control, CONTROL.credits)) break;
      if (takeCredit(this.pool, POOL.credits)) {
        this.batch.pooled = true;
        break;
      }
      Atomics.wait(this.pool, POOL.wakes, wakes, 100);
    }
    parentPort!.postMessage(this.batch, [this.batch.buffer]);
    this.batch = BatchSender.fresh(nextBytes);
    this.target = Buffer.from(this.batch.buffer);
    this.filled = 0;
  }
}

/** Takes one of the credits in `slot` of `credits` if there is one, as other threads may at the same time. */
function takeCredit(credits: Int32Array, slot: number): boolean {
  for (let left = Atomics.load(credits, slot); left > 0; left = Atomics.load(credits, slot)) {
    if (Atomics.compareExchange(credits, slot, left, left - 1) === left) return true;
  }
  return false;
}

/** The NOTE bits of line `at` of a snapshot's `count`: the first starts it, the last of a session's last snapshot ends the session. */
function lineNote(kind: SnapshotKind, last: boolean, at: number, count: number): number {
  return (at === 0 ? (kind === 'full' ? NOTE.startsFull : NOTE.startsIncremental) : 0) | (last && at === count - 1 ? NOTE.endsSession : 0);
}

/** Turns scheduled snapshots into entries and their lines, keeping each session's count of lines for --verbose. */
class SnapshotEntries {
  private readonly config: Config;
  private readonly made = new Map<number, { lines: number; bytes: number }>();

  constructor(config: Config) {
    this.config = config;
  }

  of({ session, snapshot, last }: ScheduledSnapshot): { entry: SnapshotEntry; lines: Line[] } {
    const { identity, index, plan } = session;
    const { kind, size, messages } = snapshot;
    const lines = messages.map((message, at) => new Line(this.config, identity.sessionId, message, lineNote(kind, last, at, messages.length), size));
    let verbose: string | undefined;
    if (this.config.verbose) {
      const counts = this.made.get(index) ?? { lines: 0, bytes: 0 };
      const made = { lines: counts.lines + lines.length, bytes: lines.reduce((sum, line) => sum + line.bytes, counts.bytes) };
      if (!last) this.made.set(index, made);
      else {
        this.made.delete(index);
        verbose = `session ${index} ${identity.sessionId}: ${plan.fullSnapshots} full and ${plan.incrementalSnapshots} incremental ` +
          `snapshots in ${plan.windows} window(s), ${made.lines} messages, ${(made.bytes / MB).toFixed(2)} MB\n`;
      }
    }
    const entry: SnapshotEntry = { arrival: false, atUs: snapshot.receivedAtUs, index, sessionId: identity.sessionId, kind, size, lines: lines.length, last, verbose };
    return { entry, lines };
  }
}

/** A worker's whole job: its sessions of the run, as batches of entries and lines, until done or main asks it to stop. */
function runJob({ config, job, control, pool }: JobSpec): void {
  const sender = new BatchSender(control, pool, config.kafka !== null);
  const entries = new SnapshotEntries(config);
  const timeline = { arrive: (atUs: number, index: number) => sender.add({ arrival: true, atUs, index }) };
  try {
    for (const scheduled of scheduleSnapshots(config, timeline, job)) {
      if (Atomics.load(control, CONTROL.stop)) return;
      const { entry, lines } = entries.of(scheduled);
      sender.add(entry, lines);
    }
    sender.finish();
  } catch (error) {
    if (!(error instanceof JobStopped)) throw error;
  }
}

/** A line a worker rendered, written as it is, of the snapshot `entry`; --kafka produces it with its headers. */
class RenderedLine implements RunLine {
  readonly bytes: number;
  readonly note: number;
  readonly snapshotSize: number;
  readonly key: string;
  private readonly text: Uint8Array;
  private readonly kafkaHeaders: readonly Header[];

  constructor(text: Uint8Array, entry: SnapshotEntry, at: number, headers: readonly Header[] = []) {
    this.text = text;
    this.bytes = text.length;
    this.note = lineNote(entry.kind, entry.last, at, entry.lines);
    this.snapshotSize = entry.size;
    this.key = entry.sessionId;
    this.kafkaHeaders = headers;
  }

  headers(): readonly Header[] {
    return this.kafkaHeaders;
  }

  writeTo(target: Buffer, offset: number): number {
    target.set(this.text, offset);
    return offset + this.bytes;
  }

  *pieces(): Generator<Uint8Array> {
    yield this.text;
  }
}

/**
 * A worker's young generation: 16 MiB rather than V8's default 48, which a
 * worker fills with garbage before collecting it. Measured at --count 50 of
 * legacy rrweb: peak RSS 12-15% lower, speed unchanged within noise.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 16 };

/**
 * How far V8 lets a heap grow past what its last full collection kept: 100%
 * (twice), where V8 lets a process that allocates as fast as this one grow
 * to four times, holding garbage. Measured with 1,000 sessions in flight on
 * two workers, 40 s each, alternated: snapshot-items peaked at 303-306 MiB
 * against 365-398 (three pairs), at the same speed (34.1-39.6 MB/s against
 * 28.8-42.1), legacy rrweb at 291 against 330. At --count 50 of
 * snapshot-items the CPU time was the same (median of six pairs, 4.67 s
 * against 4.66). Set when the run starts, it holds for the main thread and
 * for every worker started after; Deno and Bun accept it and change nothing.
 * A V8 without the flag would print an error on every run, which the tests'
 * runs without a warning (node 20 and 22, Deno, Bun) would show.
 */
const HEAP_GROWING_PERCENT = 100;

/** Caps V8's heap growth (HEAP_GROWING_PERCENT) for this process: only when run as the program, not when imported. */
function limitHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/**
 * A worker thread running this file's job. Where node runs the file
 * through tsx without stripping types itself (node 20), the worker
 * registers tsx first: a worker does not inherit `node --import tsx`.
 */
function startWorker(job: JobSpec): Worker {
  const workerData = { [JOB_DATA]: job };
  const viaLoader = import.meta.url.endsWith('.ts') && !('Deno' in globalThis) && !('Bun' in globalThis) &&
    !(process.features as { typescript?: string }).typescript && typeof import.meta.resolve === 'function';
  if (viaLoader) {
    const register = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then(({ register }) => (register(), import(${JSON.stringify(import.meta.url)})))`;
    return new Worker(register, { eval: true, workerData, resourceLimits: WORKER_LIMITS });
  }
  return new Worker(new URL(import.meta.url), { workerData, resourceLimits: WORKER_LIMITS });
}

/** One worker's stream as main reads it: its entries in order, and the lines each snapshot entry owns. */
class JobStream {
  private readonly worker: Worker;
  private readonly control = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  private readonly pool: Int32Array;
  private readonly exited: Promise<void>;
  private readonly batches: JobBatch[] = [];
  private entryAt = 0;
  private lineAt = 0;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  /**
   * Whether a batch's memory is let go as soon as it is read: the writer has
   * copied or written every line by then, while Kafka's producer keeps lines
   * until they are acknowledged. Left to the garbage collector, read batches
   * piled up on the main thread, which allocates little: 31 MiB at the peak
   * of a legacy `--count 50 --jobs 2` run, 7 MiB when let go.
   */
  private readonly freeRead: boolean;

  /** Work main does while it waits on this worker's next batch (its own job's next snapshot): whether it did any. */
  private readonly whileWaiting: () => boolean;

  constructor(config: Config, job: Job, pool: Int32Array, whileWaiting: () => boolean = () => false) {
    this.freeRead = config.kafka === null;
    this.whileWaiting = whileWaiting;
    this.pool = pool;
    Atomics.store(this.control, CONTROL.credits, OWN_CREDITS);
    this.worker = startWorker({ config, job, control: this.control, pool });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (batch: JobBatch) => {
      this.batches.push(batch);
      this.wake?.();
    });
    this.worker.on('error', (error) => {
      this.failure = error;
      this.wake?.();
    });
    this.worker.on('exit', () => {
      this.failure ??= new Error('a generator worker stopped before its job was done');
      this.wake?.();
    });
  }

  /** The next entry, or undefined at the end of the stream. */
  async nextEntry(): Promise<JobEntry | undefined> {
    for (;;) {
      const batch = await this.current();
      if (this.entryAt < batch.entries.length) return batch.entries[this.entryAt++];
      if (batch.done) return undefined;
      // Every entry of the batch is read, and so are the lines of each (they are read before the next entry).
      this.release();
    }
  }

  /** Line `at` of the snapshot entry read last. */
  async nextLine(entry: SnapshotEntry, at: number): Promise<RunLine> {
    for (;;) {
      const batch = await this.current();
      const line = this.lineAt;
      if (line < batch.lineEnds.length) {
        const start = line === 0 ? 0 : batch.lineEnds[line - 1]!;
        this.lineAt++;
        return new RenderedLine(new Uint8Array(batch.buffer, start, batch.lineEnds[line]! - start), entry, at, batch.lineHeaders[line]);
      }
      // The snapshot began in this batch, and its lines go on in the next.
      this.release();
    }
  }

  /**
   * Asks the worker to stop after the snapshot it is making, and waits for it
   * to end (STOP_WAIT_MS at most, then terminates it): a worker terminated
   * inside zlib can crash node (an assertion, as the half-made zlib stream is
   * closed before its init), which a SIGTERM during a --kafka run once did.
   */
  async stop(): Promise<void> {
    Atomics.store(this.control, CONTROL.stop, 1);
    this.wakeWorkers();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_WAIT_MS)));
    const ended = await Promise.race([this.exited.then(() => true), waited]);
    clearTimeout(timer);
    if (!ended) await this.worker.terminate();
  }

  private async current(): Promise<JobBatch> {
    while (this.batches.length === 0) {
      if (this.failure) throw this.failure;
      // After each piece of work, a turn of the event loop, in which the worker's batch may arrive.
      if (this.whileWaiting()) await new Promise((resolve) => setImmediate(resolve));
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return this.batches[0]!;
  }

  /** Drops the first batch, all of it read, and lets the worker send another. */
  private release(): void {
    const { buffer, pooled } = this.batches.shift()!;
    // Transferring to a buffer of no bytes frees the old one's memory now (ES2024; node 20 has no transfer, and waits for the collector).
    if (this.freeRead) (buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer }).transfer?.(0);
    this.entryAt = 0;
    this.lineAt = 0;
    if (pooled) Atomics.add(this.pool, POOL.credits, 1);
    else Atomics.add(this.control, CONTROL.credits, 1);
    this.wakeWorkers();
  }

  /** Wakes every waiting worker: a credit of the pool may go to any. */
  private wakeWorkers(): void {
    Atomics.add(this.pool, POOL.wakes, 1);
    Atomics.notify(this.pool, POOL.wakes);
  }
}

/** How far main's own job may make lines ahead of the merged stream: as far as a worker's batch credits let it lead (at 1 MiB, runs took 3-10% more time). */
const LOCAL_LEAD_BYTES = BATCH_CREDITS * BATCH_BYTES;

/**
 * Sessions made on the main thread, as a stream like a worker's: the whole
 * run for `--jobs 0` and for lines too long for a worker to render whole
 * (which main writes in pieces), or the last `job` beside the workers.
 */
class LocalJob {
  /** Entries made and not yet read, in order: arrivals, and snapshots with their lines. */
  private readonly ahead: { entry: JobEntry; lines: RunLine[]; bytes: number }[] = [];
  private aheadBytes = 0;
  /** The lines of the snapshot entry read last. */
  private lines: RunLine[] = [];
  private readonly schedule: Generator<ScheduledSnapshot>;
  private readonly entries: SnapshotEntries;
  /**
   * Whether lines are rendered as their snapshot is made, as a worker
   * renders them: beside workers, main makes snapshots ahead, and a line
   * left to render when written would find the next snapshot in the
   * buffers it shares with it (Utf8Scratch). Alone, main writes each
   * snapshot before it makes the next, and saves the copy.
   */
  private readonly rendered: boolean;

  constructor(config: Config, job?: Job) {
    this.rendered = job !== undefined;
    this.entries = new SnapshotEntries(config);
    this.schedule = scheduleSnapshots(config, { arrive: (atUs, index) => this.ahead.push({ entry: { arrival: true, atUs, index }, lines: [], bytes: 0 }) }, job);
  }

  async nextEntry(): Promise<JobEntry | undefined> {
    if (this.ahead.length === 0) this.make();
    const next = this.ahead.shift();
    if (!next) return undefined;
    this.aheadBytes -= next.bytes;
    this.lines = next.lines;
    return next.entry;
  }

  async nextLine(_entry: SnapshotEntry, at: number): Promise<RunLine> {
    return this.lines[at]!;
  }

  /**
   * Makes the next snapshot before it is asked for, while main waits on a
   * worker, unless LOCAL_LEAD_BYTES of lines wait unread already; says
   * whether it made one.
   */
  makeAhead(): boolean {
    return this.aheadBytes < LOCAL_LEAD_BYTES && this.make();
  }

  async stop(): Promise<void> {}

  /** Makes the next snapshot and the arrivals before it; false once the job is done. */
  private make(): boolean {
    const scheduled = this.schedule.next();
    if (scheduled.done) return false;
    const { entry, lines: made } = this.entries.of(scheduled.value);
    const lines = this.rendered ? made.map((line, at) => {
      const text = Buffer.allocUnsafe(line.bytes);
      line.writeTo(text, 0);
      return new RenderedLine(text, entry, at, line.headers());
    }) : made;
    const bytes = lines.reduce((sum, line) => sum + line.bytes, 0);
    this.ahead.push({ entry, lines, bytes });
    this.aheadBytes += bytes;
    return true;
  }
}

/** Where a run's entries and lines come from: workers' streams, or the main thread's own. */
type EntrySource = Pick<JobStream, 'nextEntry' | 'nextLine' | 'stop'>;

/** Whether entry `a` comes before `b` in the run: by now, arrivals first, then session id; or by session with --order session. */
function entryBefore(a: JobEntry, b: JobEntry, order: Config['order']): boolean {
  const [keyA, keyB] = order === 'time' ? [a.atUs, b.atUs] : [a.index, b.index];
  if (keyA !== keyB) return keyA < keyB;
  if (a.arrival !== b.arrival) return a.arrival;
  return !a.arrival && !b.arrival && order === 'time' && a.sessionId < b.sessionId;
}

/**
 * Every source's entries in the run's order, as --merge merges shards:
 * each source's are in order already. The caller reads a snapshot entry's
 * lines from its source before asking for the next entry.
 */
async function* mergedEntries(sources: readonly EntrySource[], order: Config['order']): AsyncGenerator<{ entry: JobEntry; source: EntrySource }> {
  const heads = await Promise.all(sources.map((source) => source.nextEntry()));
  for (;;) {
    let first = -1;
    heads.forEach((head, at) => {
      if (head && (first === -1 || entryBefore(head, heads[first]!, order))) first = at;
    });
    if (first === -1) return;
    yield { entry: heads[first]!, source: sources[first]! };
    heads[first] = await sources[first]!.nextEntry();
  }
}

/**
 * How many threads make a run's sessions (see entrySources): --jobs; else
 * the main thread alone for random payloads, which cost less to make than
 * to pass between threads, and for the rrweb formats one per core (up to
 * MAX_JOBS), or one worker for a terminal or --realtime, so that main is
 * free to write on time. Lines too long for a worker to render whole are
 * made on the main thread alone.
 */
function jobsFor(config: Config, interactive: boolean): number {
  const longestLine = OUTPUT_FORMATS[config.format].topic === null ? MAX_VEGETA_LINE_BYTES : config.maxMessageBytes;
  if (longestLine > MAX_JOB_LINE_BYTES) return 0;
  if (config.jobs !== undefined) return config.jobs;
  if (config.payload === 'random') return 0;
  return interactive || config.realtime ? 1 : Math.min(availableParallelism(), MAX_JOBS);
}

/**
 * The sources of a run's entries, each making the sessions JobBalance gives
 * its job: the main thread alone for 0 jobs, one worker for 1, and for N of
 * 2 or more, N - 1 workers and the main thread, which makes its job's
 * snapshots when the merged stream needs them and, while it waits on a
 * worker, ahead (LOCAL_LEAD_BYTES). Main as a job rather than a worker is
 * an isolate less: at `--count 50 --jobs 2` under tsx, four alternated
 * pairs a format, peak RSS 202-209 MiB against 208-223 for legacy rrweb,
 * 198-215 against 212-218 for vegeta, 196-208 against 210-229 for
 * snapshot-items, 1-3% less CPU (medians) and the same time (0.97-1.06).
 * Without making ahead, vegeta took 8-9% more time.
 */
function entrySources(config: Config, jobs: number): EntrySource[] {
  if (jobs === 0) return [new LocalJob(config)];
  const workers = jobs === 1 ? 1 : jobs - 1;
  const pool = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  Atomics.store(pool, POOL.credits, workers * (BATCH_CREDITS - OWN_CREDITS));
  if (jobs === 1) return [new JobStream(config, { index: 0, count: 1 }, pool)];
  const local = new LocalJob(config, { index: jobs - 1, count: jobs });
  const streams = Array.from({ length: workers }, (_, index) => new JobStream(config, { index, count: jobs }, pool, () => local.makeAhead()));
  return [...streams, local];
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

/** How a run ended: as asked (its sessions done, or --duration reached), or cut short, and by what. */
type Ending = 'complete' | 'duration' | 'reader' | 'failure' | StopSignalName;

/** What cut a run short, as the summary says it. */
const CUT_SHORT_BY: Record<Exclude<Ending, 'complete' | 'duration'>, string> = {
  reader: 'the reader stopped reading', failure: 'a failed write or delivery', SIGINT: 'SIGINT (Ctrl-C)', SIGTERM: 'SIGTERM', SIGHUP: 'SIGHUP',
};

/** Seconds as 0:07, 12:34 or 1:02:03. */
function clock(seconds: number): string {
  const whole = Math.round(seconds);
  const [hours, minutes] = [Math.floor(whole / 3600), Math.floor(whole / 60) % 60];
  const mmss = `${hours > 0 ? twoDigits(minutes) : minutes}:${twoDigits(whole % 60)}`;
  return hours > 0 ? `${hours}:${mmss}` : mmss;
}

/** What the reader has taken (or Kafka acknowledged), for --progress and --stats; sessions in flight as made. */
class RunStats {
  /** Sessions whose last line the reader has taken. */
  sessions = 0;
  messages = 0;
  bytes = 0;
  snapshots = 0;
  readonly sizes = { full: new SizeHistogram(), incremental: new SizeHistogram() };
  /** With --kafka, microseconds from a message's making to its acknowledgement. */
  readonly latencyUs = new SizeHistogram();
  readonly inFlight = new InFlight();
  private readonly config: Config;
  private readonly startMs = performance.now();
  /** This shard's sessions, and their snapshots on average: what the ETA measures progress against. */
  private readonly expected: { sessions: number; snapshots: number };

  constructor(config: Config) {
    this.config = config;
    const sessions = Math.ceil((config.count - config.shard.index) / config.shard.count);
    this.expected = { sessions, snapshots: sessions * meanSnapshots(config) };
  }

  /** Counts a line the reader has taken, or a message Kafka acknowledged after `latencyUs`. */
  deliver(bytes: number, note: number, snapshotSize: number, latencyUs?: number): void {
    if (latencyUs !== undefined) this.latencyUs.add(Math.max(1, Math.round(latencyUs)));
    this.messages++;
    this.bytes += bytes;
    if (note & NOTE.startsFull) this.sizes.full.add(snapshotSize);
    if (note & NOTE.startsIncremental) this.sizes.incremental.add(snapshotSize);
    if (note & (NOTE.startsFull | NOTE.startsIncremental)) this.snapshots++;
    if (note & NOTE.endsSession) this.sessions++;
  }

  get seconds(): number {
    return (performance.now() - this.startMs) / 1000;
  }

  /** With --kafka, what acknowledgement took: p50 and p99. */
  private latencyText(): string {
    const ms = (q: number) => (this.latencyUs.quantile(q) / 1000).toFixed(1);
    return `produce latency p50 ${ms(0.5)} ms, p99 ${ms(0.99)} ms`;
  }

  /** One live line: sessions done and in flight, messages, MB, MB/s, time elapsed and to go, and with --kafka the produce latency. */
  progressLine(): string {
    const total = Number.isFinite(this.expected.sessions) ? `/${this.expected.sessions}` : '';
    const eta = this.etaSeconds();
    return `sessions ${this.sessions}${total} done, ${this.inFlightText()}, messages ${this.messages}, ` +
      `${(this.bytes / MB).toFixed(1)} MB at ${(this.bytes / MB / this.seconds).toFixed(1)} MB/s, ` +
      `${clock(this.seconds)} elapsed${eta === undefined ? '' : `, ETA ${clock(eta)}`}${this.config.kafka === null ? '' : `, ${this.latencyText()}`}`;
  }

  /**
   * The --stats summary: totals, speed, how the run ended, sessions in
   * flight, per kind the count and size percentiles, and a histogram in 80
   * columns.
   */
  summary(ending: Ending): string {
    const seconds = this.seconds;
    const lines = [
      `sessions ${this.sessions} done, messages ${this.messages}, bytes ${this.bytes} (${(this.bytes / MB).toFixed(1)} MB) in ${seconds.toFixed(2)} s`,
      `${(this.bytes / MB / seconds).toFixed(1)} MB/s, ${(this.messages / seconds).toFixed(0)} messages/s`,
      ...(this.config.kafka === null ? [] : [`acknowledged by Kafka topic ${this.config.kafka.topic} (bytes of values): ${this.latencyText()}`]),
      ...[this.endingLine(ending)].filter((line) => line !== undefined),
      this.config.order === 'time'
        ? `sessions in flight: mean ${this.inFlight.mean.toFixed(1)}, max ${this.inFlight.max} (--concurrency ${this.config.concurrency})`
        : 'sessions in flight: one at a time (--order session)',
      ...this.sizeTable(),
    ];
    return lines.join('\n') + '\n';
  }

  /** The line saying that sessions were left unfinished, and why; undefined when every session was done. */
  endingLine(ending: Ending): string | undefined {
    const started = this.inFlight.arrivals;
    const notStarted = Number.isFinite(this.expected.sessions) ? this.expected.sessions - started : 0;
    const unfinished = started - this.sessions;
    if (ending === 'complete' || unfinished + notStarted === 0) return undefined;
    const why = ending === 'duration' ? `--duration reached after ${clock(this.seconds)}` : `cut short by ${CUT_SHORT_BY[ending]} after ${clock(this.seconds)}`;
    return `${why}: ${unfinished} sessions unfinished` + (notStarted > 0 ? `, ${notStarted} not started` : '');
  }

  private inFlightText(): string {
    const { now, mean, max } = this.inFlight;
    return this.config.order === 'time' ? `in flight ${now} (mean ${mean.toFixed(1)}, max ${max})` : 'one at a time';
  }

  /** Seconds left: by the snapshots still to come with --count, by the time left with --duration; the sooner. */
  private etaSeconds(): number | undefined {
    const { seconds } = this;
    const bySnapshots = this.snapshots > 0 && Number.isFinite(this.expected.snapshots)
      ? Math.max(0, seconds * (this.expected.snapshots / this.snapshots - 1)) : Infinity;
    const byDuration = Math.max(0, (this.config.duration ?? Infinity) / 1000 - seconds);
    const eta = Math.min(bySnapshots, byDuration);
    return Number.isFinite(eta) ? eta : undefined;
  }

  /** Per kind the count and size percentiles, then a histogram of sizes in 80 columns. */
  private sizeTable(): string[] {
    const lines = [
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
    if (doublings.length === 0) return lines;
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
    return lines;
  }
}

/**
 * What a run says on stderr besides warnings: the live progress line (on a
 * terminal rewritten in place, elsewhere a new line each second), and at the
 * end the last progress line and --stats.
 */
class RunReport {
  readonly stats: RunStats;
  private readonly config: Config;
  private readonly progress: boolean;
  private readonly progressEveryMs: number;
  private readonly progressEnd: string;
  private progressAtMs = performance.now();
  private finished = false;

  constructor(config: Config) {
    this.config = config;
    this.stats = new RunStats(config);
    this.progress = config.progress || (!config.noProgress && process.stderr.isTTY);
    [this.progressEveryMs, this.progressEnd] = process.stderr.isTTY ? [250, '\x1b[K\r'] : [1000, '\n'];
  }

  /** Writes the progress line when it is due. */
  tick(): void {
    if (!this.progress || performance.now() - this.progressAtMs < this.progressEveryMs) return;
    this.progressAtMs = performance.now();
    writeStderr(this.stats.progressLine() + this.progressEnd);
  }

  /** The last progress line, a line on sessions left unfinished, and the --stats summary; said once. */
  finish(ending: Ending): void {
    if (this.finished) return;
    this.finished = true;
    if (this.progress) writeStderr(`${this.stats.progressLine()}\n`);
    if (this.config.stats) writeStderr(this.stats.summary(ending));
    else if (this.progress) writeStderr(this.stats.endingLine(ending)?.concat('\n') ?? '');
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

/** A line's place in the run: by capture's receive time, then session, then message id, as the run writes them. */
export interface LineOrder {
  /** `now`, in microseconds. */
  atUs: number;
  sessionId: string;
  /** The message's uuid, which grows within a snapshot's chunks and batches. */
  uuid: string;
}

/** Negative, zero or positive as `a` comes before, with or after `b` in the run. */
function compareOrder(a: LineOrder, b: LineOrder): number {
  return a.atUs - b.atUs || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0) || (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0);
}

/**
 * The order a line takes in the run, read from the line as written: capture's
 * receive time (`now`, to the microsecond), the `$session_id`, and the
 * message's uuid, as scheduleSnapshots and the chunks order them. Undefined
 * for a line without them (vegeta targets, other text).
 */
export function lineOrder(line: string): LineOrder | undefined {
  const value = line.slice(Math.max(0, valueStart(line)));
  const legacy = value.startsWith('{"uuid": ');
  const nowAt = value.lastIndexOf(legacy ? '"now": "' : ',"now":"');
  const sessionAt = value.indexOf(legacy ? '\\"$session_id\\": \\"' : '\\"$session_id\\":\\"');
  if (!value.startsWith('{"uuid"') || nowAt < 0 || sessionAt < 0) return undefined;
  const nowStart = value.indexOf('"', nowAt + 6) + 1;
  const now = value.slice(nowStart, value.indexOf('"', nowStart));
  const fraction = /^\.(\d{1,6})(?:\+00:00|Z)$/.exec(now.slice(19))?.[1] ?? '';
  const atUs = Date.parse(`${now.slice(0, 19)}Z`) * 1000 + Number(fraction.padEnd(6, '0'));
  const idAt = value.indexOf('\\"', sessionAt + (legacy ? 17 : 16)) + 2;
  const sessionId = value.slice(idAt, value.indexOf('\\"', idAt));
  const uuid = /^\{"uuid": ?"([0-9a-f-]{36})"/.exec(value)?.[1];
  if (!Number.isFinite(atUs) || !/^[\w-]{1,70}$/.test(sessionId) || uuid === undefined) return undefined;
  return { atUs, sessionId, uuid };
}

/** Lines up to this long (16 times kcat's default limit) are checked whole, as UTF-8 and JSON; longer ones by their two ends. */
const MAX_CHECKED_LINE_BYTES = 16 * 1024 * 1024;
/** What a line longer than that keeps of each end to read its order: the session id near its start, now near its end. */
const LINE_END_BYTES = 1 << 20;
/** The buffer a merge reads lines through, shared by every file: memory does not grow with their number or their lines. */
const MERGE_READ = Buffer.allocUnsafe(1 << 20);

/** Reads `length` bytes of `fd` from `position` into `target`, short only at the end of the file. */
function readFully(fd: number, target: Buffer, offset: number, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const count = readSync(fd, target, offset + done, length - done, position + done);
    if (count === 0) break;
    done += count;
  }
  return done;
}

/** A line of a shard file, copied from the file as it is written out: its place and length only are kept. */
class FileLine implements OutputLine {
  readonly bytes: number;
  readonly note = 0;
  readonly snapshotSize = 0;
  private readonly fd: number;
  private readonly start: number;

  constructor(fd: number, start: number, length: number) {
    this.fd = fd;
    this.start = start;
    this.bytes = length + 1; // and its newline
  }

  writeTo(target: Buffer, offset: number): number {
    readFully(this.fd, target, offset, this.bytes, this.start);
    return offset + this.bytes;
  }

  *pieces(scratch: Buffer): Generator<Buffer> {
    for (let done = 0; done < this.bytes; ) {
      const count = readFully(this.fd, scratch, 0, Math.min(scratch.length, this.bytes - done), this.start + done);
      yield scratch.subarray(0, count);
      done += count;
    }
  }
}

/** A shard file whose lines do not make a run: names the file and line, which --merge reports before exiting 2. */
class MergeError extends UsageError {}

/**
 * One shard file as --merge reads it: the line to write next, found and
 * checked (whole, UTF-8, a message in JSON, after the line before it) by
 * reading up to its newline, and kept as a place in the file.
 */
class ShardFile {
  readonly path: string;
  readonly fd: number;
  /** The next line's number and place, and its order in the run; no line once the file is done. */
  lineNumber = 0;
  line: { start: number; length: number; order: LineOrder } | undefined;
  private position = 0;

  constructor(path: string) {
    this.path = path;
    try {
      this.fd = openSync(path, 'r');
    } catch (error) {
      throw new UsageError(`--merge cannot read ${path}: ${(error as Error).message}`);
    }
    // Lines are read again as they are written, by their place in the file: a pipe cannot be read twice.
    const stat = fstatSync(this.fd);
    if (!stat.isFile()) throw new UsageError(`--merge reads regular files: ${path} is ${stat.isDirectory() ? 'a directory' : 'not a regular file'}`);
  }

  /** The current line, to be copied from the file as it is written. */
  current(): FileLine {
    return new FileLine(this.fd, this.line!.start, this.line!.length);
  }

  /** Finds and checks the next line; none at the end of the file. */
  advance(): void {
    const previous = this.line?.order;
    const start = this.position;
    this.lineNumber++;
    const scanned = this.scanLine(start);
    this.line = undefined;
    if (scanned === undefined) return;
    const { length, text } = scanned;
    const order = lineOrder(text);
    if (order === undefined) this.refuse('is not a message of --format snapshot or snapshot-items (with its now and $session_id)');
    if (previous && compareOrder(order, previous) <= 0) {
      this.refuse(compareOrder(order, previous) === 0 ? 'repeats the line before it' : 'comes before the line before it: not in order of now');
    }
    this.line = { start, length, order };
  }

  refuse(why: string): never {
    throw new MergeError(`--merge: ${this.path} line ${this.lineNumber} ${why}`);
  }

  /**
   * Reads from `start` to the next newline: the line's length and its text,
   * checked as UTF-8 and JSON when it is short enough to hold, else its two
   * ends; undefined at the end of the file.
   */
  private scanLine(start: number): { length: number; text: string } | undefined {
    let pieces: Buffer[] = [];
    let length = 0;
    let ends: { head: Buffer; tail: Buffer } | undefined;
    for (;;) {
      const count = readSync(this.fd, MERGE_READ, 0, MERGE_READ.length, start + length);
      const newline = MERGE_READ.subarray(0, count).indexOf(0x0a);
      const piece = Buffer.from(MERGE_READ.subarray(0, newline === -1 ? count : newline));
      length += piece.length;
      if (ends) ends.tail = Buffer.concat([ends.tail, piece]).subarray(-LINE_END_BYTES);
      else pieces.push(piece);
      if (!ends && length > MAX_CHECKED_LINE_BYTES) [ends, pieces] = [{ head: Buffer.concat(pieces).subarray(0, LINE_END_BYTES), tail: piece }, []];
      if (newline !== -1) break;
      if (count === 0 && length === 0) return undefined;
      if (count === 0) this.refuse('is cut short: the file ends without its newline');
    }
    this.position = start + length + 1;
    if (ends) return { length, text: ends.head.toString('latin1') + ends.tail.toString('latin1') };
    const whole = Buffer.concat(pieces);
    if (!isUtf8(whole)) this.refuse('is not UTF-8 text');
    const text = whole.toString('utf8');
    try {
      JSON.parse(text.slice(Math.max(0, valueStart(text))));
    } catch {
      this.refuse('is not a whole JSON message');
    }
    return { length, text };
  }
}

/** Shard files named NAME-I-of-N...: which shards of how many they say they are, if every name says. */
function shardsNamed(paths: readonly string[]): { indexes: Set<number>; count: number } | undefined {
  const named = paths.map((path) => /(\d+)-of-(\d+)/.exec(basename(path)));
  const counts = new Set(named.map((match) => match?.[2]));
  if (named.some((match) => !match) || counts.size !== 1) return undefined;
  return { indexes: new Set(named.map((match) => Number(match![1]))), count: Number(named[0]![2]) };
}

/** Opens the shard files and reads their first lines: every fault found here stops the merge before a byte is written. */
function openShardFiles(paths: readonly string[]): ShardFile[] {
  const files = paths.map((path) => new ShardFile(path));
  const seen = new Map<string, string>();
  for (const file of files) {
    const { dev, ino } = fstatSync(file.fd);
    const twin = seen.get(`${dev}/${ino}`);
    if (twin !== undefined) throw new UsageError(`--merge was given ${twin} and ${file.path}, which are the same file`);
    seen.set(`${dev}/${ino}`, file.path);
    file.advance();
  }
  const shards = shardsNamed(paths);
  const missing = shards && Array.from({ length: shards.count }, (_, index) => index).filter((index) => !shards.indexes.has(index));
  if (missing?.length) writeStderr(`generate.ts: warning: --merge lacks shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${shards!.count}, by the files' names: the output is not the whole run\n`);
  return files.filter((file) => file.line);
}

/** The file whose line comes next in the run; two files holding one session at one time are refused. */
function nextShardFile(files: readonly ShardFile[]): ShardFile {
  const first = files.reduce((soonest, file) => (compareOrder(file.line!.order, soonest.line!.order) < 0 ? file : soonest));
  const { atUs, sessionId } = first.line!.order;
  const twin = files.find((file) => file !== first && file.line!.order.atUs === atUs && file.line!.order.sessionId === sessionId);
  twin?.refuse(`holds session ${sessionId} at the same now as ${first.path} line ${first.lineNumber}: a session in two shards`);
  return first;
}

/**
 * `--merge`: writes the lines of shard files as the one run they were cut
 * from, in its order (now, then $session_id, then uuid), each line read from
 * its file as it is written. Memory is a read buffer and each file's place,
 * whatever the files' number or lines' length. A file that does not hold
 * lines of a run in order is refused: before any output when its first line
 * shows it, else after the lines before the fault, naming file and line.
 */
async function mergeShardFiles(request: MergeRequest): Promise<number> {
  const files = openShardFiles(request.merge);
  const stop = new StopSignal();
  let destination: Destination | undefined;
  stop.listen(() => destination?.close(false));
  destination = Destination.open(request.output);
  const writer = new LineWriter(destination, () => {});
  stop.writer = writer;
  let fault: MergeError | undefined;
  try {
    while (files.length > 0 && !writer.closed && stop.status === undefined) {
      const file = nextShardFile(files);
      const line = file.current();
      if (!writer.add(line)) await writer.addAfterFlush(line);
      file.advance();
      if (!file.line) files.splice(files.indexOf(file), 1);
    }
  } catch (error) {
    if (!(error instanceof MergeError)) throw error;
    fault = error;
  }
  await writer.close();
  const whole = !fault && !writer.failure && stop.status === undefined;
  if (!destination.close(whole) && whole) return 1;
  if (writer.failureLine) writeStderr(`generate.ts: ${writer.failureLine}\n`);
  if (fault) writeStderr(`generate.ts: ${fault.message}\n`);
  return writer.failureLine ? 1 : fault ? 2 : (stop.status ?? 0);
}

// ===========================================================================
// 8. main: parseFlags (the command line checked against every section's
// limits), then write every snapshot's lines in schedule order, stop on a
// signal after a whole line, report, and return the exit status.
// ===========================================================================

/** Writes text to stdout at once; false, after saying why on stderr, if it cannot be written. */
function writeStdout(text: string): boolean {
  try {
    writeSync(1, text);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') return true;
    writeStderr(`generate.ts: cannot write to stdout: ${(error as Error).message}\n`);
    return false;
  }
}

/**
 * Whether stdout is /dev/null opened read-write, where a shell's `> /dev/null`
 * is write-only, so that a read succeeds. Node puts such a /dev/null in place
 * of a stdout closed when it starts (`>&-`); but Python's subprocess.DEVNULL,
 * node's stdio 'ignore', Go's nil Stdout and `1<> /dev/null` give the very
 * same, on purpose, and nothing tells the two apart (node marks every stdio
 * descriptor close-on-exec, even the ones it inherits). So the run goes on,
 * with a warning.
 */
function stdoutIsReadWriteNull(): boolean {
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
  if (config.token !== undefined || config.teamId !== undefined) return undefined;
  const { withoutToken, topic } = OUTPUT_FORMATS[config.format];
  const how = topic === null ? 'give --token phc_...' : "give --token phc_...: --kafka sends it in every message's token header";
  return `generate.ts: warning: no --token: ${withoutToken} (${how})\n`;
}

/**
 * Parses the command line into a Config, or a request for help, the
 * version or a merge: the flags as section 1 reads them, then checked
 * against the caps on draws and times (section 2) and the room a message
 * leaves (section 6).
 *
 * @example
 * parseFlags(['--count', '10', '--start', '2024-01-01']).count; // 10
 * parseFlags(['--count', '-1']); // throws UsageError
 */
export function parseFlags(argv: readonly string[], nowMs = Date.now()): Config | Request {
  const commandLine = parseCommandLine(argv, nowMs);
  if (typeof commandLine === 'string' || 'merge' in commandLine) return commandLine;
  const { settings, chunkSize } = commandLine;
  refuseFrequentCaps(settings);
  refuseLateArrivals(settings);
  return { ...settings, chunkSize: OUTPUT_FORMATS[settings.format].topic === null ? 0 : fitMessageLimit(settings, chunkSize) };
}

/** What writing a run's snapshots needs: where lines go, when they may, and what to tell. */
interface RunParts {
  sink: Sink;
  stop: StopSignal;
  pacer: Pacer;
  report: RunReport;
  endMs: number;
}

/** Writes every snapshot's lines in the run's order, as pacing allows; true when the run ran out, false when it was ended. */
async function writeSnapshots(config: Config, sources: readonly EntrySource[], { sink, stop, pacer, report, endMs }: RunParts): Promise<boolean> {
  const flush = () => sink.flush();
  const running = () => stop.status === undefined && !sink.closed && performance.now() < endMs;
  const { inFlight } = report.stats;
  for await (const { entry, source } of mergedEntries(sources, config.order)) {
    if (entry.arrival) {
      inFlight.arrive(entry.atUs);
      continue;
    }
    const due = pacer.snapshotDue(entry.atUs, flush);
    if (due) await due;
    if (!running()) return false;
    for (let at = 0; at < entry.lines; at++) {
      const messageDue = pacer.messageDue(flush);
      if (messageDue) await messageDue;
      if (!running()) return false;
      const line = await source.nextLine(entry, at);
      if (!sink.add(line)) await sink.addAfterFlush(line);
    }
    if (entry.last) inFlight.leave(entry.atUs);
    if (entry.verbose) writeStderr(entry.verbose);
    report.tick();
  }
  return true;
}

/** Where the run's lines go: Kafka with --kafka, else stdout or --output; or the exit status when --kafka cannot start, said on stderr. */
async function openSink(config: Config, destination: Destination, stats: RunStats): Promise<Sink | number> {
  const deliver: Delivered = (bytes, note, snapshotSize, latencyUs) => stats.deliver(bytes, note, snapshotSize, latencyUs);
  if (config.kafka === null) return new LineWriter(destination, deliver);
  const opened = await KafkaSink.open(config.kafka, config.maxMessageBytes, deliver);
  if (!('status' in opened)) return opened;
  writeStderr(`generate.ts: ${opened.line}\n`);
  return opened.status;
}

/** A run of sessions, from the first line to the exit status. */
async function runSessions(config: Config): Promise<number> {
  const report = new RunReport(config);
  const stop = new StopSignal();
  // Signals are caught before --output's temporary file exists, so a stop always removes it.
  let destination: Destination | undefined;
  stop.listen(() => {
    report.finish(stop.signal!);
    destination?.close(false);
  });
  destination = Destination.open(config.output);
  const warning = missingTokenWarning(config);
  if (warning) writeStderr(warning);
  const sink = await openSink(config, destination, report.stats);
  if (typeof sink === 'number') return destination.close(false), sink;
  stop.writer = sink;
  const endMs = performance.now() + (config.duration ?? Infinity);
  const sources = entrySources(config, jobsFor(config, config.output === undefined && config.kafka === null && process.stdout.isTTY));
  const completed = await writeSnapshots(config, sources, { sink, stop, pacer: new Pacer(config, stop, endMs), report, endMs });
  await Promise.all(sources.map((source) => source.stop()));
  await sink.close();
  const ending: Ending = completed ? 'complete' : stop.signal ?? (sink.failureLine ? 'failure' : sink.closed ? 'reader' : 'duration');
  report.finish(ending);
  // A reader that goes away (| head, or a named pipe's) ends the run as wanted, whether stdout or --output is its pipe.
  const placed = destination.close(ending === 'complete' || ending === 'duration' || ending === 'reader');
  if (sink.failureLine) writeStderr(`generate.ts: ${sink.failureLine}\n`);
  else if (stop.status !== undefined && config.kafka) writeStderr(`generate.ts: stopped after ${report.stats.messages} messages, every one acknowledged by Kafka\n`);
  return sink.failureLine || (!placed && stop.status === undefined) ? 1 : (stop.status ?? 0);
}

/**
 * Runs the generator: parses `argv`, writes every snapshot's lines (or
 * merges shard files) to stdout, --output or --kafka in the order capture
 * would, and returns the exit status.
 */
export async function main(argv: readonly string[]): Promise<number> {
  makeStdioBlocking();
  // stderr is commentary: a failure writing it (a closed pipe, a full disk) must not end the run.
  process.stderr.on('error', () => {});
  try {
    const request = parseFlags(argv);
    if (request === 'help') return writeStdout(helpText()) ? 0 : 1;
    if (request === 'version') return writeStdout(`generate.ts ${VERSION}\n`) ? 0 : 1;
    if (request.output === undefined && !('kafka' in request && request.kafka) && stdoutIsReadWriteNull()) {
      writeStderr('generate.ts: warning: stdout is /dev/null opened read-write, as node replaces a closed stdout (>&-): every line is discarded\n');
    }
    return 'merge' in request ? await mergeShardFiles(request) : await runSessions(request);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    writeStderr(`generate.ts: ${error.message}\n`);
    return 2;
  }
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

/** Levenshtein distance: the fewest insertions, deletions and substitutions that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, at) => at);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length]!;
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

/** Whether this file is the program being run: not imported, and not a worker's copy (whose argv[1] may be `[worker eval]`). */
function executedDirectly(): boolean {
  if (!isMainThread || process.argv[1] === undefined) return false;
  try {
    return realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

// No top-level await: tsx runs a copied file as CommonJS where its package.json does not say "type": "module".
const job = isMainThread ? undefined : (workerData as Record<string, JobSpec> | null)?.[JOB_DATA];
if (job) runJob(job);
else if (executedDirectly()) {
  limitHeapGrowth();
  main(process.argv.slice(2)).then((status) => (process.exitCode = status));
}
