/**
 * bench/read.ts: PostHog's read paths for the generator's output, as a
 * library and a CLI.
 *
 * Each line is read as PostHog's consumers read a message of its format:
 *
 * - `snapshot` (topic `session_recording_events`): parse the value, then its
 *   `data` string; group chunks by `chunk_id`; a group is complete when
 *   indexes 0..chunk_count-1 are all there (chunks of different snapshots may
 *   interleave); join `data` by `chunk_index`; base64-decode, gunzip, decode
 *   UTF-16 (little-endian, byte-order mark), `JSON.parse`: the rrweb events.
 * - `snapshot-items` (topic `session_recording_snapshot_item_events`): parse
 *   the value, then `data`; `$snapshot_items` are the rrweb events, some
 *   compressed as posthog-js's `compressEvent` does (`cv: "2024-10"`).
 * - `vegeta`: a target whose base64 `body` is (usually gzip of) the JSON list
 *   of `$snapshot` events posthog-js posts to capture's `/s/`.
 *
 * A line may start with kafka-console-producer's headers (`h1:v1,h2:v2<TAB>`,
 * `--headers`) and then the key (`<key><TAB>`, `--key`), in that order.
 *
 * `decode` turns lines into windows and per-snapshot records (events decoded,
 * `cv` undone); `consume` is the reference consumer: exactly the per-message
 * work PostHog does and nothing more, single-threaded, so its time is a fair
 * measure of consumer CPU per MB.
 *
 *   node --import tsx bench/read.ts --format snapshot [--key] [--headers] [FILE|-]
 *
 * prints `[window_id, event]` JSONL (the shape of ../shared/data/real/*.decoded.jsonl);
 * `--consume` instead prints the consumer's counts and time as one JSON line.
 */
import { createReadStream, realpathSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';

/** What each line is, as generate.ts's `--format` names it. */
export type Format = 'snapshot' | 'snapshot-items' | 'vegeta';
export const FORMATS: readonly Format[] = ['snapshot', 'snapshot-items', 'vegeta'];

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** An rrweb event as it comes out of JSON.parse (`cv` only while still compressed). */
export interface RrwebEvent {
  type: number;
  timestamp: number;
  data: Json;
  cv?: string;
  [key: string]: Json | undefined;
}

/** Which prefixes each line carries before the value. */
export interface LineOptions {
  /** kafka-console-producer `parse.headers` line format: `h1:v1,h2:v2<TAB>` first. */
  headers?: boolean;
  /** The message key and a tab (generate.ts `--key`). */
  key?: boolean;
}

/** One snapshot as it travelled: a complete chunk group, an items message, or one `$snapshot` event of a vegeta body. */
export interface SnapshotRecord {
  sessionId: string;
  windowId: string;
  /** 'full' if it holds a FullSnapshot (type 2) event. */
  kind: 'full' | 'incremental';
  /** Characters of snapshot data as it travelled: the base64 text (snapshot), the events' JSON as sent (the others). */
  dataChars: number;
  /** The rrweb events, decoded (`cv` undone). */
  events: RrwebEvent[];
  /** For `snapshot`: the joined gzip-base64 text itself. */
  base64?: string;
}

/** What `decode` returns. */
export interface Decoded {
  /** Each window's events in stream order. */
  windows: Map<string, RrwebEvent[]>;
  snapshots: SnapshotRecord[];
  /** Chunk groups still incomplete at the end (snapshot format). */
  incomplete: number;
}

/** What `consume` returns: counts only. */
export interface Counts {
  messages: number;
  /** Complete snapshots (chunk groups, items messages, `$snapshot` events of vegeta bodies). */
  snapshots: number;
  events: number;
}

// ---------------------------------------------------------------------------
// Pieces of the read path, shared by the reader and the consumer.
// ---------------------------------------------------------------------------

const TAB = '\t';

/** The message value of a line: drops the headers prefix and the key, as the producer splits them off. */
export function valueOf(line: string, options: LineOptions = {}): string {
  let start = 0;
  if (options.headers) start = line.indexOf(TAB, start) + 1;
  if (options.key) start = line.indexOf(TAB, start) + 1;
  return start === 0 ? line : line.slice(start);
}

/** The headers of a line in kafka-console-producer's format (`h1:v1,h2:v2<TAB>`), for inspection. */
export function headersOf(line: string): Map<string, string> {
  const headers = new Map<string, string>();
  const text = line.slice(0, Math.max(0, line.indexOf(TAB)));
  for (const pair of text.split(',')) {
    if (pair === '') continue;
    const colon = pair.indexOf(':');
    headers.set(colon < 0 ? pair : pair.slice(0, colon), colon < 0 ? '' : pair.slice(colon + 1));
  }
  return headers;
}

/** PostHog's legacy decode of `gzip-base64` data: base64, gunzip, UTF-16LE (skipping the byte-order mark), JSON.parse. */
export function decodeGzipBase64(text: string): Json {
  const utf16 = gunzipSync(Buffer.from(text, 'base64'));
  const bom = utf16.length >= 2 && utf16[0] === 0xff && utf16[1] === 0xfe ? 2 : 0;
  return JSON.parse(utf16.toString('utf16le', bom)) as Json;
}

/** A posthog-js `cv` field: gzip of JSON, held as a latin1 string. */
export function gunzipLatin1(text: string): Json {
  return JSON.parse(gunzipSync(Buffer.from(text, 'latin1')).toString()) as Json;
}

const MUTATION = 0;
const STYLE_SHEET_RULE = 8;
const MUTATION_FIELDS = ['texts', 'attributes', 'removes', 'adds'];
const STYLE_SHEET_FIELDS = ['adds', 'removes'];

/** The fields of `event` that posthog-js's compressEvent compressed (strings, under `data`), or 'data' for all of it. */
function compressedFields(event: RrwebEvent): 'data' | readonly string[] {
  if (typeof event.data === 'string') return 'data';
  const data = event.data;
  if (event.type !== 3 || data === null || typeof data !== 'object' || Array.isArray(data)) return [];
  return data.source === MUTATION ? MUTATION_FIELDS : data.source === STYLE_SHEET_RULE ? STYLE_SHEET_FIELDS : [];
}

/** `event` with posthog-js's `cv: "2024-10"` compression undone (and `cv` dropped); other events as they are. */
export function decompressEvent(event: RrwebEvent): RrwebEvent {
  if (event.cv === undefined) return event;
  const { cv: _cv, ...plain } = event;
  const fields = compressedFields(event);
  if (fields === 'data') {
    plain.data = gunzipLatin1(event.data as string);
    return plain as RrwebEvent;
  }
  const data = { ...(event.data as { [key: string]: Json }) };
  for (const field of fields) {
    const value = data[field];
    if (typeof value === 'string') data[field] = gunzipLatin1(value);
  }
  plain.data = data;
  return plain as RrwebEvent;
}

/** Whether `event` was compressed by posthog-js and still is. */
export const isCompressed = (event: RrwebEvent): boolean => event.cv !== undefined;

/** Legacy `$snapshot_data` of one chunk. */
interface ChunkData {
  chunk_id: string;
  chunk_index: number;
  chunk_count: number;
  data: string;
}

/** The chunks of one snapshot seen so far. */
interface ChunkGroup {
  parts: (string | undefined)[];
  present: number;
}

/** Adds a chunk to its group; returns the joined data when the group becomes complete. */
function addChunk(groups: Map<string, ChunkGroup>, chunk: ChunkData): string | undefined {
  let group = groups.get(chunk.chunk_id);
  if (group === undefined) {
    group = { parts: new Array<string | undefined>(chunk.chunk_count), present: 0 };
    groups.set(chunk.chunk_id, group);
  }
  if (group.parts[chunk.chunk_index] === undefined) {
    group.parts[chunk.chunk_index] = chunk.data;
    group.present++;
  }
  if (group.present < chunk.chunk_count) return undefined;
  groups.delete(chunk.chunk_id);
  return group.parts.join('');
}

/** The `data` event of a Kafka value (both formats), both JSON levels parsed. */
interface KafkaEvent {
  event: string;
  properties: { [key: string]: Json } & { $session_id: string; $window_id: string };
}

const parseKafkaValue = (value: string): KafkaEvent =>
  JSON.parse((JSON.parse(value) as { data: string }).data) as KafkaEvent;

/** A vegeta target's body as capture reads it: base64, gunzip when it starts with gzip's magic bytes, JSON. */
function parseVegetaBody(value: string): KafkaEvent[] {
  const body = Buffer.from((JSON.parse(value) as { body: string }).body, 'base64');
  const plain = body[0] === 0x1f && body[1] === 0x8b ? gunzipSync(body) : body;
  return JSON.parse(plain.toString()) as KafkaEvent[];
}

// ---------------------------------------------------------------------------
// The reader: lines in, decoded snapshot records out.
// ---------------------------------------------------------------------------

const holdsFullSnapshot = (events: readonly RrwebEvent[]): boolean => events.some((event) => event.type === 2);

/**
 * Reads lines one at a time, in stream order, returning the snapshots each
 * line completes (none while a chunk group waits for more chunks).
 *
 * @example
 * const reader = new Reader('snapshot', { key: true });
 * for (const line of lines) for (const record of reader.read(line)) console.log(record.windowId, record.events.length);
 */
export class Reader {
  private readonly groups = new Map<string, ChunkGroup>();
  readonly format: Format;
  readonly options: LineOptions;

  constructor(format: Format, options: LineOptions = {}) {
    this.format = format;
    this.options = options;
  }

  /** Chunk groups still waiting for chunks. */
  get incomplete(): number {
    return this.groups.size;
  }

  read(line: string): SnapshotRecord[] {
    const value = valueOf(line, this.options);
    if (this.format === 'vegeta') return parseVegetaBody(value).map((event) => itemsRecord(event, '$snapshot_data'));
    const event = parseKafkaValue(value);
    if (this.format === 'snapshot-items') return [itemsRecord(event, '$snapshot_items')];
    const chunk = event.properties.$snapshot_data as unknown as ChunkData;
    const base64 = addChunk(this.groups, chunk);
    if (base64 === undefined) return [];
    const events = decodeGzipBase64(base64) as unknown as RrwebEvent[];
    return [{
      sessionId: event.properties.$session_id,
      windowId: event.properties.$window_id,
      kind: holdsFullSnapshot(events) ? 'full' : 'incremental',
      dataChars: base64.length,
      events,
      base64,
    }];
  }
}

/** A record of an items message or a vegeta `$snapshot` event: its events as sent, measured, then decompressed. */
function itemsRecord(event: KafkaEvent, field: '$snapshot_items' | '$snapshot_data'): SnapshotRecord {
  const sent = event.properties[field] as unknown as RrwebEvent[];
  const events = sent.map(decompressEvent);
  return {
    sessionId: event.properties.$session_id,
    windowId: event.properties.$window_id,
    kind: holdsFullSnapshot(events) ? 'full' : 'incremental',
    dataChars: JSON.stringify(sent).length,
    events,
  };
}

/** Every snapshot of `lines` decoded, and each window's events in stream order. */
export function decode(format: Format, lines: Iterable<string>, options: LineOptions = {}): Decoded {
  const reader = new Reader(format, options);
  const windows = new Map<string, RrwebEvent[]>();
  const snapshots: SnapshotRecord[] = [];
  for (const line of lines) {
    if (line === '') continue;
    for (const record of reader.read(line)) {
      snapshots.push(record);
      const events = windows.get(record.windowId);
      if (events === undefined) windows.set(record.windowId, [...record.events]);
      else for (const event of record.events) events.push(event);
    }
  }
  return { windows, snapshots, incomplete: reader.incomplete };
}

// ---------------------------------------------------------------------------
// The reference consumer: PostHog's per-message work, nothing more.
// ---------------------------------------------------------------------------

/**
 * Reads every line as PostHog's consumer does and counts what it got:
 * `snapshot`: both JSON levels, chunk regrouping, base64, gunzip, UTF-16
 * decode, JSON.parse; `snapshot-items`: both JSON levels, then gunzip and
 * JSON.parse of every `cv` field; `vegeta`: what capture does with the
 * request (base64, gunzip, JSON.parse). Single-threaded, no validation.
 */
export function consume(format: Format, lines: Iterable<string>, options: LineOptions = {}): Counts {
  const counts: Counts = { messages: 0, snapshots: 0, events: 0 };
  const groups = new Map<string, ChunkGroup>();
  for (const line of lines) {
    if (line === '') continue;
    counts.messages++;
    const value = valueOf(line, options);
    if (format === 'snapshot') {
      const base64 = addChunk(groups, parseKafkaValue(value).properties.$snapshot_data as unknown as ChunkData);
      if (base64 === undefined) continue;
      counts.snapshots++;
      counts.events += (decodeGzipBase64(base64) as Json[]).length;
    } else if (format === 'snapshot-items') {
      const items = parseKafkaValue(value).properties.$snapshot_items as unknown as RrwebEvent[];
      for (const item of items) if (item.cv !== undefined) decompressEvent(item);
      counts.snapshots++;
      counts.events += items.length;
    } else {
      for (const event of parseVegetaBody(value)) {
        counts.snapshots++;
        counts.events += (event.properties.$snapshot_data as Json[]).length;
      }
    }
  }
  return counts;
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

const USAGE = 'usage: node --import tsx bench/read.ts --format snapshot|snapshot-items|vegeta [--key] [--headers] [--consume] [FILE|-]';

/** Lines of a file, or of stdin for '-' or none. */
async function* linesOf(path: string | undefined): AsyncGenerator<string> {
  const input = path === undefined || path === '-' ? process.stdin : createReadStream(path);
  yield* createInterface({ input, crlfDelay: Infinity });
}

/** Writes text to stdout, waiting for the pipe when it is full. */
async function write(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise((resolve) => process.stdout.once('drain', resolve));
}

/** The CLI: `[window_id, event]` JSONL of the decoded events, or with `--consume` the consumer's counts and time. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        format: { type: 'string', default: 'snapshot' },
        key: { type: 'boolean', default: false },
        headers: { type: 'boolean', default: false },
        consume: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const format = values.format as Format;
  if (!FORMATS.includes(format) || positionals.length > 1) {
    process.stderr.write(`--format must be one of ${FORMATS.join(', ')}, with at most one FILE\n${USAGE}\n`);
    return 2;
  }
  const options: LineOptions = { key: values.key, headers: values.headers };
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  if (values.consume) {
    const lines: string[] = [];
    let bytes = 0;
    for await (const line of linesOf(positionals[0])) {
      lines.push(line);
      bytes += Buffer.byteLength(line) + 1;
    }
    const started = process.hrtime.bigint();
    const counts = consume(format, lines, options);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    await write(`${JSON.stringify({ ...counts, bytes, ms: Math.round(ms * 10) / 10, msPerMB: Math.round((ms / (bytes / 1e6)) * 100) / 100 })}\n`);
    return 0;
  }
  const reader = new Reader(format, options);
  for await (const line of linesOf(positionals[0])) {
    if (line === '') continue;
    for (const record of reader.read(line)) {
      const prefix = `[${JSON.stringify(record.windowId)},`;
      await write(record.events.map((event) => `${prefix}${JSON.stringify(event)}]\n`).join(''));
    }
  }
  if (reader.incomplete > 0) process.stderr.write(`read.ts: ${reader.incomplete} chunk group(s) incomplete at end of input\n`);
  return 0;
}

const executedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (executedDirectly) process.exitCode = await main(process.argv.slice(2));
