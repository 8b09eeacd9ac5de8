/**
 * bench/realism.ts: the generator's recordings side by side with real ones.
 *
 * Real: the recordings in ../shared/data/real/ (README there), split as its
 * README splits them into production pages (the PostHog app, twice, and
 * posthog.com's docs) and small pages (a Next.js example, the 2021 demo).
 * Generated: this repository's generate.ts, run with `--payload rrweb`
 * (legacy topic) and `--format snapshot-items`, read back with bench/read.ts.
 *
 * Each figure is one function of a `Subject` (one recording, or the whole
 * generated run) returning named measures. For the legacy topic the real
 * events are put in messages as PostHog's Python capture would have: batches
 * as posthog-js buffered them (a Meta and its FullSnapshot alone; other
 * events in buffers of 2 s), each `json.dumps`ed, UTF-16 with BOM, gzip
 * level 9, base64. For the items topic the as-sent events (posthog-js's
 * `cv` compression kept) go in the same batches into capture-rs's envelope.
 *
 *   node --import tsx bench/realism.ts [--count N] [--seed-value N] [--json] [--detail] [--real DIR]
 *
 * prints a Markdown table (real range | generated); `--detail` adds one column
 * per recording; `--json` prints every measure of every subject instead.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { consume, decode, decodeGzipBase64, type Json, type RrwebEvent } from './read.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEFAULT_REAL = fileURLToPath(new URL('../../shared/data/real/', import.meta.url));

// ---------------------------------------------------------------------------
// Subjects: what every figure is computed of.
// ---------------------------------------------------------------------------

type Group = 'production' | 'small' | 'generated';

/** One batch of events as it travelled on the legacy topic. */
interface LegacyBatch {
  kind: 'full' | 'incremental';
  events: RrwebEvent[];
  /** Characters of the JSON text inside the UTF-16 (Python's json.dumps for real ones). */
  jsonChars: number;
  base64: string;
}

/** A recording (or the generated run) with everything the figures read. */
interface Subject {
  name: string;
  group: Group;
  /** Recordings (sessions) it holds. */
  recordings: number;
  /** Each window's decoded events (cv undone), in stream order. */
  windows: Map<string, RrwebEvent[]>;
  /** Its batches on the legacy topic (session_recording_events). */
  legacy: LegacyBatch[];
  /** Its messages on the items topic (session_recording_snapshot_item_events), values only. */
  items: string[];
}

const jsonLines = (path: string): [string, RrwebEvent][] =>
  readFileSync(path, 'utf8').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as [string, RrwebEvent]);

/** Groups `[window, event]` pairs by window, keeping order. */
function byWindow(pairs: readonly [string, RrwebEvent][]): Map<string, RrwebEvent[]> {
  const windows = new Map<string, RrwebEvent[]>();
  for (const [window, event] of pairs) {
    const events = windows.get(window) ?? [];
    events.push(event);
    windows.set(window, events);
  }
  return windows;
}

/** posthog-js's recording buffer: flushed when it spans this long (RECORDING_BUFFER_TIMEOUT). */
const BUFFER_MS = 2000;

/** Index ranges of a window's batches: each Meta+FullSnapshot alone, other events in 2-second buffers. */
function batchRanges(events: readonly RrwebEvent[]): [number, number][] {
  const ranges: [number, number][] = [];
  let start = 0;
  const flush = (end: number) => {
    if (end > start) ranges.push([start, end]);
    start = end;
  };
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    const fullAt = event.type === 2 ? i : event.type === 4 && events[i + 1]?.type === 2 ? i + 1 : -1;
    if (fullAt >= 0) {
      flush(i);
      flush(fullAt + 1);
      i = fullAt;
    } else if (i > start && event.timestamp - events[start]!.timestamp > BUFFER_MS) {
      flush(i);
    }
  }
  flush(events.length);
  return ranges;
}

/** A real recording as a subject: `decoded` events for content and legacy batches, `sent` ones (same order) for items. */
function realSubject(name: string, group: Group, decoded: Map<string, RrwebEvent[]>, sent: Map<string, RrwebEvent[]>): Subject {
  const legacy: LegacyBatch[] = [];
  const items: string[] = [];
  for (const [window, events] of decoded) {
    const sentEvents = sent.get(window)!;
    for (const [from, to] of batchRanges(events)) {
      const batch = events.slice(from, to);
      const python = pythonJsonDumps(batch);
      legacy.push({
        kind: batch.some((event) => event.type === 2) ? 'full' : 'incremental',
        events: batch,
        jsonChars: python.length,
        base64: pythonCaptureData(python),
      });
      items.push(itemsMessage(window, sentEvents.slice(from, to)));
    }
  }
  return { name, group, recordings: 1, windows: decoded, legacy, items };
}

/** The real recordings of ../shared/data/real/, as its README describes them. */
function realSubjects(REAL: string): Subject[] {
  const pair = (name: string, group: Group) => {
    const decoded = byWindow(jsonLines(`${REAL}${name}.decoded.jsonl`));
    const sent = byWindow(jsonLines(`${REAL}${name}.as-sent.jsonl`));
    return realSubject(name, group, decoded, sent);
  };
  // Its 9 cv events do not gunzip: plain events only, as decoded and as sent.
  const appDev = byWindow(jsonLines(`${REAL}posthog-app-dev_large_recording_blob_one.as-sent.jsonl`).filter(([, event]) => event.cv === undefined));
  const nextjs = byWindow(jsonLines(`${REAL}nextjs-example_recording_snapshots.jsonl`));
  const hogflixEvents = (JSON.parse(readFileSync(`${REAL}posthog-demo-2021_hogflix_session_recording.json`, 'utf8')) as {
    result: { snapshots: RrwebEvent[] };
  }).result.snapshots;
  const hogflix = new Map([['hogflix-window', hogflixEvents]]);
  return [
    pair('posthog-app-us_perf-snapshot-key0', 'production'),
    pair('posthog-com-docs_blob_key_0', 'production'),
    realSubject('posthog-app-dev_large_recording_blob_one', 'production', appDev, appDev),
    realSubject('nextjs-example_recording_snapshots', 'small', nextjs, nextjs),
    realSubject('posthog-demo-2021_hogflix_session_recording', 'small', hogflix, hogflix),
  ];
}

/** An items message value as capture-rs writes it: envelope, `data` the JSON string of the `$snapshot_items` event. */
function itemsMessage(window: string, events: readonly RrwebEvent[]): string {
  const event = {
    event: '$snapshot_items',
    properties: {
      distinct_id: 'real-distinct-id', $session_id: 'real-session-id', $window_id: window,
      $snapshot_source: 'web', $lib: 'web', $snapshot_items: events,
    },
  };
  return JSON.stringify({
    uuid: '0196cf71-3156-76cb-bb45-d0de45b84d05', distinct_id: 'real-distinct-id', ip: '127.0.0.1',
    site_url: 'https://us.posthog.com', data: JSON.stringify(event), team_id: null,
    now: '2025-05-14T15:37:16.454Z', sent_at: '2025-05-14T15:37:16.454Z', token: 'phc_real',
  });
}

/** Runs generate.ts with `args` into a file (so it never waits on this busy process) and returns its lines. */
async function generatorLines(args: readonly string[]): Promise<string[]> {
  const directory = mkdtempSync(join(tmpdir(), 'realism-'));
  const path = join(directory, 'out.jsonl');
  const output = openSync(path, 'w');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'generate.ts', ...args], { cwd: ROOT, stdio: ['ignore', output, 'inherit'] });
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (status !== 0) throw new Error(`generate.ts ${args.join(' ')} exited with ${status}`);
    return readFileSync(path, 'utf8').split('\n').filter((line) => line !== '');
  } finally {
    closeSync(output);
    rmSync(directory, { recursive: true, force: true });
  }
}

/** The generated run as a subject: the legacy output decoded by read.ts, the items output as it is. */
async function generatedSubject(count: number, seed: number): Promise<Subject> {
  const common = ['--start', '2024-01-01T00:00:00Z', '--seed-value', `${seed}`, '--count', `${count}`];
  const [legacyLines, items] = await Promise.all([
    generatorLines([...common, '--payload', 'rrweb']),
    generatorLines([...common, '--format', 'snapshot-items']),
  ]);
  const { windows, snapshots } = decode('snapshot', legacyLines);
  const legacy = snapshots.map((snapshot): LegacyBatch => ({
    kind: snapshot.kind,
    events: snapshot.events,
    jsonChars: (gunzipSync(Buffer.from(snapshot.base64!, 'base64')).length - 2) / 2,
    base64: snapshot.base64!,
  }));
  const recordings = new Set(snapshots.map((snapshot) => snapshot.sessionId)).size;
  return { name: `generate.ts --count ${count}`, group: 'generated', recordings, windows, legacy, items };
}

/** Whether a window shows content pages (an <article>, as docs and blogs have) rather than an app's: by its first FullSnapshot. */
function isContentWindow(events: readonly RrwebEvent[]): boolean {
  const full = events.find((event) => event.type === 2);
  let article = false;
  walkNodes(objectOf(full?.data).node, (node) => {
    if (node.tagName === 'article') article = true;
  });
  return article;
}

/** The generated run's windows of content pages and of app pages, as two more subjects for the figures of what happens on a page. */
function byPageType(subject: Subject): Subject[] {
  return ([['content pages', true], ['app pages', false]] as const).map(([kind, content]) => {
    const windows = new Map([...subject.windows].filter(([, events]) => isContentWindow(events) === content));
    return { name: `${subject.name}: ${kind}`, group: 'generated', recordings: windows.size, windows, legacy: [], items: [] };
  });
}

// ---------------------------------------------------------------------------
// Python capture's encoding, emulated: json.dumps, UTF-16, gzip 9, base64.
// ---------------------------------------------------------------------------

/** Python's repr of a float: shortest digits, exponent form below 1e-4 and from 1e16 (`1e-05`, `1.5e+16`). */
function pythonFloat(value: number): string {
  const exponent = value === 0 ? 0 : Math.floor(Math.log10(Math.abs(value)));
  if (exponent >= -4 && exponent < 16) return Number.isInteger(value) ? `${value}.0` : `${value}`;
  const [mantissa = '', power = '0'] = value.toExponential().split('e');
  const digits = Math.abs(Number(power));
  return `${mantissa}e${power.startsWith('-') ? '-' : '+'}${digits < 10 ? '0' : ''}${digits}`;
}

/** A JSON number as Python wrote it after parsing posthog-js's JSON: ints as ints, the rest as float reprs. */
function pythonNumber(value: number): string {
  const text = `${value}`;
  return Number.isInteger(value) && !text.includes('e') ? text : pythonFloat(value);
}

const SHORT_ESCAPES: { [char: string]: string } = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };
const NEEDS_ESCAPE = /["\\]|[^ -~]/;

/** A string as Python's json.dumps (ensure_ascii=True) writes it: everything outside printable ASCII as \uXXXX. */
function pythonString(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return `"${text}"`;
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    const code = text.charCodeAt(i);
    out += SHORT_ESCAPES[char] ?? (code < 0x20 || code > 0x7e ? `\\u${code.toString(16).padStart(4, '0')}` : char);
  }
  return `${out}"`;
}

/** Python's `json.dumps(value)`: separators ", " and ": ", ensure_ascii. */
export function pythonJsonDumps(value: Json | RrwebEvent | readonly RrwebEvent[] | undefined): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return pythonNumber(value);
  if (typeof value === 'string') return pythonString(value);
  if (Array.isArray(value)) return `[${value.map((item: Json) => pythonJsonDumps(item)).join(', ')}]`;
  const entries = Object.entries(value as { [key: string]: Json }).filter(([, item]) => item !== undefined);
  return `{${entries.map(([key, item]) => `${pythonString(key)}: ${pythonJsonDumps(item)}`).join(', ')}}`;
}

/** The legacy snapshot data of a JSON text: UTF-16 with BOM, gzip level 9 (Python's gzip.compress), base64. */
function pythonCaptureData(json: string): string {
  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(json, 'utf16le')]);
  return gzipSync(utf16, { level: 9 }).toString('base64');
}

// ---------------------------------------------------------------------------
// Walking events.
// ---------------------------------------------------------------------------

type JsonObject = { [key: string]: Json };
const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);
const objectOf = (value: Json | undefined): JsonObject => (isObject(value) ? value : {});
const listOf = (value: Json | undefined): Json[] => (Array.isArray(value) ? value : []);

const allEvents = (subject: Subject): RrwebEvent[] => [...subject.windows.values()].flat();
const fullSnapshots = (subject: Subject): RrwebEvent[] => allEvents(subject).filter((event) => event.type === 2);
const incrementals = (subject: Subject): RrwebEvent[] => allEvents(subject).filter((event) => event.type === 3);
const sourceOf = (event: RrwebEvent): number => Number(objectOf(event.data).source);
const utf8Bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));
const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);

/** Calls `visit` on every serialized node of a FullSnapshot's tree, with its parent element's tag. */
function walkNodes(node: Json | undefined, visit: (node: JsonObject, parentTag: string) => void, parentTag = ''): void {
  if (!isObject(node)) return;
  visit(node, parentTag);
  const tag = typeof node.tagName === 'string' ? node.tagName.toLowerCase() : '';
  for (const child of listOf(node.childNodes)) walkNodes(child, visit, tag);
}

const DATA_URL = /data:(?:[a-z]+\/[a-z0-9.+-]+)?[;,]/gi;
const CLOSING: { [opener: string]: RegExp } = { '"': /"/, "'": /'/, '(': /\)/ };

/** Characters (as JSON) of the data: URLs in a string, all and base64 ones: each to its closing quote or parenthesis, or the end. */
function dataUrlChars(text: string): { all: number; base64: number } {
  const chars = { all: 0, base64: 0 };
  for (const match of text.matchAll(DATA_URL)) {
    const start = match.index;
    const closing = CLOSING[text[start - 1] ?? ''] ?? /[\s"')]/;
    const rest = text.slice(start);
    const end = rest.search(closing);
    const url = end < 0 ? rest : rest.slice(0, end);
    const length = JSON.stringify(url).length - 2;
    chars.all += length;
    if (BASE64_DATA_URL.test(url)) chars.base64 += length;
  }
  return chars;
}
const BASE64_DATA_URL = /^data:[^,]*;base64,/i;

/** Share (%) of `part` in `whole`, or undefined when there is no whole. */
const percent = (part: number, whole: number): number | undefined => (whole > 0 ? (100 * part) / whole : undefined);
const ratio = (part: number, whole: number): number | undefined => (whole > 0 ? part / whole : undefined);

/**
 * Best CPU time (user + system, this process) of `work` in ms per MB of
 * `megabytes`: many short runs (small inputs repeated to MIN_RUN_MB), the
 * fastest counts. CPU time, not wall time: other processes on a shared
 * machine then cost little.
 */
function bestMsPerMB(work: () => void, megabytes: number): number | undefined {
  if (megabytes <= 0) return undefined;
  const repeats = Math.max(1, Math.ceil(MIN_RUN_MB / megabytes));
  work();
  let best = Infinity;
  const started = process.hrtime.bigint();
  for (let run = 0; run < MIN_RUNS || (run < MAX_RUNS && Number(process.hrtime.bigint() - started) / 1e6 < TIMING_BUDGET_MS); run++) {
    const before = process.cpuUsage();
    for (let repeat = 0; repeat < repeats; repeat++) work();
    const { user, system } = process.cpuUsage(before);
    best = Math.min(best, (user + system) / 1e3 / repeats);
  }
  return best / megabytes;
}
/** Each timed run works through at least this much data, repeating small recordings. */
const MIN_RUN_MB = 2;
/** Timed runs per measurement: at least MIN_RUNS, more while within the budget (a shared machine's noise comes in bursts). */
const MIN_RUNS = 5;
const MAX_RUNS = 30;
const TIMING_BUDGET_MS = 600;

// ---------------------------------------------------------------------------
// The figures: one function each, a subject in, named measures out.
// ---------------------------------------------------------------------------

type Unit = '%' | 'x' | 'ms/MB' | '' | 'ms' | 'px' | 'px/ms';
interface Measure {
  name: string;
  value: number | undefined;
  unit: Unit;
}
const measure = (name: string, value: number | undefined, unit: Unit): Measure => ({ name, value, unit });

// 1. What a FullSnapshot's JSON is made of: stylesheets, other attributes (less their data: URLs), data: URLs anywhere (overlapping stylesheets), non-style text.
function fullSnapshotMakeup(subject: Subject): Measure[] {
  let total = 0, stylesheets = 0, attributes = 0, dataUrls = 0, base64Urls = 0, text = 0;
  const countUrls = (value: string): number => {
    const chars = dataUrlChars(value);
    dataUrls += chars.all;
    base64Urls += chars.base64;
    return chars.all;
  };
  for (const event of fullSnapshots(subject)) {
    total += JSON.stringify(event).length;
    walkNodes(objectOf(event.data).node, (node, parentTag) => {
      for (const [name, value] of Object.entries(objectOf(node.attributes))) {
        const urls = typeof value === 'string' ? countUrls(value) : 0;
        const chars = JSON.stringify(name).length + 1 + JSON.stringify(value).length;
        if (name === '_cssText') stylesheets += chars;
        else attributes += chars - urls;
      }
      if (node.type === 3 && typeof node.textContent === 'string') {
        const chars = JSON.stringify(node.textContent).length;
        if (node.isStyle === true || parentTag === 'style') stylesheets += chars;
        else text += chars;
        countUrls(node.textContent);
      }
    });
  }
  return [
    measure('stylesheets', percent(stylesheets, total), '%'),
    measure('other attributes (class, d, ...; data: URLs not counted)', percent(attributes, total), '%'),
    measure('data: URLs (anywhere)', percent(dataUrls, total), '%'),
    measure('of which ;base64 data: URLs', percent(base64Urls, total), '%'),
    measure('text (non-style)', percent(text, total), '%'),
  ];
}

// 2. gzip level 6 of events as JSON (UTF-8): JSON bytes / gzip bytes, per batch (full ones, all) and per window as one text.
function eventsGzipRatio(subject: Subject): Measure[] {
  const sizes = (lists: readonly (readonly RrwebEvent[])[]) => {
    const texts = lists.map((events) => Buffer.from(JSON.stringify(events)));
    return ratio(sum(texts.map((text) => text.length)), sum(texts.map((text) => gzipSync(text, { level: 6 }).length)));
  };
  return [
    measure('full snapshots', sizes(subject.legacy.filter((batch) => batch.kind === 'full').map((batch) => batch.events)), 'x'),
    measure('everything', sizes(subject.legacy.map((batch) => batch.events)), 'x'),
    measure('everything, each window as one text', sizes([...subject.windows.values()]), 'x'),
  ];
}

// 3. Legacy topic: characters of JSON per character of gzip-base64 data, full snapshots and all batches.
function legacyJsonPerBase64(subject: Subject): Measure[] {
  const of = (batches: readonly LegacyBatch[]) =>
    ratio(sum(batches.map((batch) => batch.jsonChars)), sum(batches.map((batch) => batch.base64.length)));
  return [
    measure('full snapshots', of(subject.legacy.filter((batch) => batch.kind === 'full')), 'x'),
    measure('everything', of(subject.legacy), 'x'),
  ];
}

// 4. PostHog's legacy decode (base64, gunzip, UTF-16, JSON.parse): best ms per MB of base64.
function legacyDecodeCost(subject: Subject): Measure[] {
  const texts = subject.legacy.map((batch) => batch.base64);
  const work = () => {
    for (const text of texts) decodeGzipBase64(text);
  };
  return [measure('decode', bestMsPerMB(work, sum(texts.map((text) => text.length)) / 1e6), 'ms/MB')];
}

// 5. Serialized nodes of full snapshots per 1,000 characters of their gzip-base64 data.
function nodesPerBase64(subject: Subject): Measure[] {
  const full = subject.legacy.filter((batch) => batch.kind === 'full');
  let nodes = 0;
  for (const batch of full) {
    for (const event of batch.events) if (event.type === 2) walkNodes(objectOf(event.data).node, () => nodes++);
  }
  return [measure('nodes per 1,000 base64 chars', ratio(1000 * nodes, sum(full.map((batch) => batch.base64.length))), '')];
}

// 6. The items consumer (both JSON levels, then gunzip+parse of cv fields): best ms per MB of message text (UTF-8).
function itemsParseCost(subject: Subject): Measure[] {
  const megabytes = sum(subject.items.map((line) => Buffer.byteLength(line))) / 1e6;
  const jsonLevels = () => {
    for (const line of subject.items) JSON.parse((JSON.parse(line) as { data: string }).data);
  };
  return [
    measure('both JSON levels only', bestMsPerMB(jsonLevels, megabytes), 'ms/MB'),
    measure('consume(): + cv fields', bestMsPerMB(() => consume('snapshot-items', subject.items), megabytes), 'ms/MB'),
  ];
}

// 7. Items message text: share of characters that are non-ASCII, and that are backslashes.
function itemsTextMakeup(subject: Subject): Measure[] {
  let chars = 0, nonAscii = 0, backslashes = 0;
  for (const line of subject.items) {
    chars += line.length;
    for (let i = 0; i < line.length; i++) {
      const code = line.charCodeAt(i);
      if (code > 0x7f) nonAscii++;
      else if (code === 0x5c) backslashes++;
    }
  }
  return [measure('non-ASCII chars', percent(nonAscii, chars), '%'), measure('backslashes', percent(backslashes, chars), '%')];
}

// 8. Plugin (type 6, console/network) and custom (type 5) events: share of events' JSON bytes; custom events per recording and window.
function pluginAndCustom(subject: Subject): Measure[] {
  const events = allEvents(subject);
  const bytesOf = (type?: number) => sum(events.filter((event) => type === undefined || event.type === type).map(utf8Bytes));
  const total = bytesOf();
  const custom = events.filter((event) => event.type === 5).length;
  return [
    measure('type 6 share of bytes', percent(bytesOf(6), total), '%'),
    measure('type 5 share of bytes', percent(bytesOf(5), total), '%'),
    measure('custom events per recording', ratio(custom, subject.recordings), ''),
    measure('custom events per window', ratio(custom, subject.windows.size), ''),
  ];
}

// 9. Mutation adds: nested (node has children) or flat, nextId set, adds per mutation (max, mean over all mutations).
function mutationAdds(subject: Subject): Measure[] {
  const mutations = incrementals(subject).filter((event) => sourceOf(event) === 0);
  const adds = mutations.map((event) => listOf(objectOf(event.data).adds).map(objectOf));
  const flat = adds.flat();
  const nested = flat.filter((add) => listOf(objectOf(add.node).childNodes).length > 0).length;
  const withNext = flat.filter((add) => add.nextId !== null && add.nextId !== undefined).length;
  return [
    measure('mutations', mutations.length, ''),
    measure('adds that are nested', percent(nested, flat.length), '%'),
    measure('adds with nextId set', percent(withNext, flat.length), '%'),
    measure('max adds per mutation', adds.length > 0 ? Math.max(...adds.map((list) => list.length)) : undefined, ''),
    measure('mean adds per mutation', ratio(flat.length, mutations.length), ''),
  ];
}

const SOURCES: [string, (source: number) => boolean][] = [
  ['mutation', (source) => source === 0],
  ['mouse move', (source) => source === 1],
  ['interaction', (source) => source === 2],
  ['scroll', (source) => source === 3],
  ['viewport resize', (source) => source === 4],
  ['input', (source) => source === 5],
  ['CSSOM rule changes (8, 13, 15)', (source) => source === 8 || source === 13 || source === 15],
  ['other', (source) => (source > 5 && source !== 8 && source !== 13 && source !== 15) || Number.isNaN(source)],
];

// 10. Incremental events by source: viewport resizes among them, and the whole mix.
function incrementalMix(subject: Subject): Measure[] {
  const sources = incrementals(subject).map(sourceOf);
  return SOURCES.map(([name, matches]) => measure(name, percent(sources.filter(matches).length, sources.length), '%'));
}

// 11. Mouse moves (source 1): positions per event (mean, max) and the range of their timeOffset.
function mouseMoves(subject: Subject): Measure[] {
  const moves = incrementals(subject).filter((event) => sourceOf(event) === 1).map((event) => listOf(objectOf(event.data).positions).map(objectOf));
  const offsets = moves.flat().map((position) => Number(position.timeOffset)).filter(Number.isFinite);
  return [
    measure('positions per event, mean', ratio(sum(moves.map((list) => list.length)), moves.length), ''),
    measure('positions per event, max', moves.length > 0 ? Math.max(...moves.map((list) => list.length)) : undefined, ''),
    measure('timeOffset min', offsets.length > 0 ? Math.min(...offsets) : undefined, 'ms'),
    measure('timeOffset max', offsets.length > 0 ? Math.max(...offsets) : undefined, 'ms'),
  ];
}

/** What a person would call clickable: the tags and roles of links, buttons and fields. */
const INTERACTIVE_TAGS = new Set(['a', 'button', 'input', 'textarea', 'select', 'label', 'summary', 'option']);
const INTERACTIVE_ROLES = new Set(['button', 'link', 'tab', 'menuitem', 'option', 'checkbox', 'switch', 'radio']);
/** Successive mouse positions at most this far apart in time belong to one movement: their step over their time is a speed. */
const MOVEMENT_GAP_MS = 200;
/** A click is where the pointer is when the last position before it is this close (px): rrweb rounds click coordinates. */
const AT_POINTER_PX = 3;

const median = (values: number[]): number | undefined => {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/** Each node's tag, role and parent as a window's events build them: FullSnapshots (nested), mutation adds (flat). */
function nodeIndex(): { apply: (event: RrwebEvent) => void; interactive: (id: number) => boolean } {
  const nodes = new Map<number, { tag: string; role: string; parent: number }>();
  const add = (node: JsonObject, parent: number) => {
    const attributes = objectOf(node.attributes);
    nodes.set(Number(node.id), { tag: typeof node.tagName === 'string' ? node.tagName.toLowerCase() : '', role: String(attributes.role ?? ''), parent });
    for (const child of listOf(node.childNodes)) add(objectOf(child), Number(node.id));
  };
  return {
    apply(event) {
      if (event.type === 2) {
        nodes.clear();
        add(objectOf(objectOf(event.data).node), 0);
      } else if (event.type === 3 && sourceOf(event) === 0) {
        for (const entry of listOf(objectOf(event.data).adds).map(objectOf)) add(objectOf(entry.node), Number(entry.parentId));
      }
    },
    interactive(id) {
      for (let node = nodes.get(id); node; node = nodes.get(node.parent)) if (INTERACTIVE_TAGS.has(node.tag) || INTERACTIVE_ROLES.has(node.role)) return true;
      return false;
    },
  };
}

// 13. The hand: steps between successive mouse positions and the speed within movements; clicks at the pointer, on something clickable.
function mouseGeometry(subject: Subject): Measure[] {
  const steps: number[] = [];
  const speeds: number[] = [];
  let clicks = 0, atPointer = 0, onInteractive = 0, known = 0;
  for (const events of subject.windows.values()) {
    const index = nodeIndex();
    const positions = events.filter((event) => event.type === 3 && sourceOf(event) === 1)
      .flatMap((event) => listOf(objectOf(event.data).positions).map(objectOf).map((p) => ({ at: event.timestamp + Number(p.timeOffset), x: Number(p.x), y: Number(p.y) })))
      .sort((a, b) => a.at - b.at);
    for (let at = 1; at < positions.length; at++) {
      const [a, b] = [positions[at - 1]!, positions[at]!];
      const step = Math.hypot(b.x - a.x, b.y - a.y);
      steps.push(step);
      if (b.at > a.at && b.at - a.at <= MOVEMENT_GAP_MS) speeds.push(step / (b.at - a.at));
    }
    for (const event of events) {
      index.apply(event);
      const data = objectOf(event.data);
      if (event.type !== 3 || sourceOf(event) !== 2 || data.type !== 2) continue;
      clicks++;
      const last = positions.filter((position) => position.at <= event.timestamp).at(-1);
      if (last && Math.hypot(last.x - Number(data.x), last.y - Number(data.y)) <= AT_POINTER_PX) atPointer++;
      if (events.some((other) => other.type === 2 && other.timestamp <= event.timestamp)) {
        known++;
        if (index.interactive(Number(data.id))) onInteractive++;
      }
    }
  }
  return [
    measure('median step between successive positions', median(steps), 'px'),
    measure(`median speed within movements (gaps <= ${MOVEMENT_GAP_MS} ms)`, median(speeds), 'px/ms'),
    measure('clicks', clicks, ''),
    measure(`clicks within ${AT_POINTER_PX} px of the last position`, percent(atPointer, clicks), '%'),
    measure('clicks on a link, button or field (or inside one)', percent(onInteractive, known), '%'),
  ];
}

// 12. gzip level 6 of the legacy base64 text itself (as Kafka's compression sees it): base64 bytes / gzip bytes.
function base64GzipRatio(subject: Subject): Measure[] {
  const texts = subject.legacy.map((batch) => Buffer.from(batch.base64, 'latin1'));
  return [measure('base64 / gzip', ratio(sum(texts.map((text) => text.length)), sum(texts.map((text) => gzipSync(text, { level: 6 }).length))), 'x')];
}

const FIGURES: [string, (subject: Subject) => Measure[]][] = [
  ['1. what makes a full snapshot large (share of its JSON)', fullSnapshotMakeup],
  ['2. gzip level 6 of the decoded events\' JSON', eventsGzipRatio],
  ['3. legacy: JSON chars per base64 char', legacyJsonPerBase64],
  ['4. legacy decode, best', legacyDecodeCost],
  ['5. full snapshot', nodesPerBase64],
  ['6. snapshot-items consumer, best', itemsParseCost],
  ['7. snapshot-items message text', itemsTextMakeup],
  ['8. type 6 / type 5', pluginAndCustom],
  ['9. mutation adds', mutationAdds],
  ['10. incremental source mix', incrementalMix],
  ['11. mouse moves', mouseMoves],
  ['12. gzip level 6 of legacy base64 text', base64GzipRatio],
  ['13. mouse geometry', mouseGeometry],
];

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

interface Row {
  figure: string;
  measure: string;
  unit: Unit;
  /** Value per subject name. */
  values: { [subject: string]: number | undefined };
}

function format(value: number | undefined, unit: Unit): string {
  if (value === undefined) return '-';
  const digits = unit === '%' ? (value < 10 ? 1 : 0) : unit === 'ms' || Number.isInteger(value) ? 0 : Math.abs(value) < 10 ? 2 : 1;
  return `${value.toFixed(digits)}${unit === '%' || unit === 'x' ? unit : unit === '' ? '' : ` ${unit}`}`;
}

/** min-max of the subjects of `group` that have the measure. */
function range(row: Row, subjects: readonly Subject[], group: Group): string {
  const values = subjects.filter((subject) => subject.group === group).map((subject) => row.values[subject.name]).filter((value) => value !== undefined);
  if (values.length === 0) return '-';
  const [low, high] = [Math.min(...values), Math.max(...values)];
  return low === high || format(low, row.unit) === format(high, row.unit) ? format(low, row.unit) : `${format(low, row.unit)} – ${format(high, row.unit)}`;
}

function markdown(rows: readonly Row[], subjects: readonly Subject[], detail: boolean): string {
  const real = subjects.filter((subject) => subject.group !== 'generated');
  const generated = subjects.filter((subject) => subject.group === 'generated');
  const count = (group: Group) => subjects.filter((subject) => subject.group === group).length;
  const head = ['figure', 'measure', `real: production (${count('production')})`, `real: small pages (${count('small')})`, ...generated.map((subject) => subject.name)];
  if (detail) head.push(...real.map((subject) => subject.name));
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  let previous = '';
  for (const row of rows) {
    const cells = [
      row.figure === previous ? '' : row.figure, row.measure, range(row, subjects, 'production'), range(row, subjects, 'small'),
      ...generated.map((subject) => format(row.values[subject.name], row.unit)),
    ];
    if (detail) cells.push(...real.map((subject) => format(row.values[subject.name], row.unit)));
    lines.push(`| ${cells.join(' | ')} |`);
    previous = row.figure;
  }
  return lines.join('\n');
}

const NOTES = [
  'Real legacy messages: each window\'s events in batches (a Meta and its FullSnapshot alone, other events in 2 s buffers),',
  'each as Python capture wrote it (json.dumps, UTF-16 with BOM, gzip 9, base64); items messages: the same batches as sent',
  '(cv kept) in capture-rs\'s envelope. posthog-app-dev: plain events only (its cv events do not gunzip), so no full snapshot.',
  'Generated: generate.ts --payload rrweb (legacy) and --format snapshot-items, read back with bench/read.ts.',
  'Times: best CPU time of many runs, single thread. They move with machine load (up to 2x on a busy 2-core machine):',
  'compare real with generated within one run, not across runs or machines.',
].join('\n');

const USAGE = 'usage: node --import tsx bench/realism.ts [--count N] [--seed-value N] [--json] [--detail] [--real DIR]';

export async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        count: { type: 'string', default: '30' },
        'seed-value': { type: 'string', default: '1' },
        json: { type: 'boolean', default: false },
        detail: { type: 'boolean', default: false },
        real: { type: 'string', default: DEFAULT_REAL },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const count = Number(values.count);
  const seed = Number(values['seed-value']);
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed)) {
    process.stderr.write(`--count takes a whole number >= 1 and --seed-value a whole number\n${USAGE}\n`);
    return 2;
  }
  const started = process.hrtime.bigint();
  const elapsed = () => (Number(process.hrtime.bigint() - started) / 1e9).toFixed(1);
  const generating = generatedSubject(count, seed);
  let subjects: Subject[];
  try {
    subjects = realSubjects(values.real.endsWith('/') ? values.real : `${values.real}/`);
  } catch (error) {
    await generating.catch(() => undefined);
    process.stderr.write(`realism: cannot read the real recordings in ${values.real}: ${(error as Error).message}\n`);
    return 1;
  }
  const generated = await generating;
  subjects.push(generated, ...byPageType(generated));
  process.stderr.write(`realism: inputs ready in ${elapsed()} s\n`);
  const rows: Row[] = [];
  for (const [figure, compute] of FIGURES) {
    const bySubject = subjects.map((subject) => compute(subject));
    for (const [index, { name, unit }] of bySubject[0]!.entries()) {
      rows.push({ figure, measure: name, unit, values: Object.fromEntries(subjects.map((subject, at) => [subject.name, bySubject[at]![index]!.value])) });
    }
  }
  if (values.json) {
    const subjectsInfo = subjects.map(({ name, group, recordings, windows, legacy, items }) => ({
      name, group, recordings, windows: windows.size, legacyBatches: legacy.length, itemsMessages: items.length,
    }));
    process.stdout.write(`${JSON.stringify({ subjects: subjectsInfo, rows }, null, 2)}\n`);
  } else {
    process.stdout.write(`${markdown(rows, subjects, values.detail)}\n\n${NOTES}\n`);
  }
  process.stderr.write(`realism: done in ${elapsed()} s\n`);
  return 0;
}

const executedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (executedDirectly) process.exitCode = await main(process.argv.slice(2));
