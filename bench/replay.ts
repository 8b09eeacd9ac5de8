// Development-only replay check: do these recordings replay cleanly in rrweb?
//
//   node --import tsx bench/replay.ts [--speed 64] [--json] FILE...   (FILE - is stdin)
//
// Each FILE is JSONL of `[window_id, rrweb_event]` lines (the format of
// /work/shared/data/real/*.jsonl), a JSON array of one window's events, or a
// PostHog API response `{"result": {"snapshots": [...]}}`. posthog-js's
// compressed events (`"cv": "2024-10"`) are gunzipped first, the way PostHog's
// player does. Events are grouped by window and sorted by timestamp (stably);
// every window is then replayed by rrweb's Replayer in headless Chromium (one
// browser, one page, windows one after another), three times, each time in a
// fresh Replayer:
//   play      real-time playback at --speed (rrweb's timer path: mutations in
//             order, mouse positions at timestamp + timeOffset) until rrweb's
//             'finish'. skipInactive is on: it only ever raises the speed (over
//             idle stretches longer than 10 s of replay time) and applies the
//             events the same way, so windows left idle for long stay quick;
//   seek-mid  pause() at half the window's span (the synchronous fast-forward
//             path rrweb takes when seeking);
//   seek-end  pause() just past the last event (the same path, every event).
// A seek starts from the last Meta/FullSnapshot before its target (rrweb skips
// what came before), so in a window with several page loads only play goes
// through the earlier ones.
//
// What counts, per window and mode:
//   warnings  rrweb's console.warn: "[replayer] Node with id '12' not found.",
//             "Exception in mutation ...", "Failed to adapt css for replay";
//   debug     rrweb's showDebug level (console.log), which is on: an added node
//             whose parent is missing is dropped there ("Drop resolve tree ..."),
//             and interactions with missing nodes are reported there;
//   errors    console.error, uncaught errors in the page, exceptions thrown by
//             the Replayer, and what this script finds itself: events that do
//             not decompress, a window without a FullSnapshot or with fewer than
//             2 events, a mutation add carrying nested childNodes (rrweb records
//             adds flat and replays them without their children, silently), a
//             playback that never finishes, and seek-end rebuilding a different
//             number of elements than play did.
// It prints one line per window and mode (events, span, counts, the first 3
// distinct messages, elements in the replayed document and its body, replay
// time) and a summary, or with --json one JSON document, and exits 1 if any
// window had any message at all, 0 if none (2 on unreadable input).
//
// Needs Chromium at /usr/bin/chromium (`apt-get install chromium`) and the
// devDependencies rrweb and playwright-core (`npm ci`); the page is
// bench/replay-page.html, rrweb comes from node_modules. Chromium runs headless
// with --no-sandbox (it runs as root here) in a fresh temporary profile
// (Playwright's own), and every http(s) request of the replayed pages is
// aborted: nothing goes online.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { chromium, type Page } from 'playwright-core';

const CHROMIUM_PATH = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const PAGE_PATH = fileURLToPath(new URL('replay-page.html', import.meta.url));
const RRWEB_DIST = dirname(createRequire(import.meta.url).resolve('rrweb'));
/** Margin on top of the span / speed that real-time playback may take. */
const PLAY_MARGIN_MS = 15_000;
const MODES = ['play', 'seek-mid', 'seek-end'] as const;
/** The window id given to a file that holds one window's events without ids. */
const SINGLE_WINDOW_ID = '(whole file)';
type Mode = (typeof MODES)[number];
/** Levels counted as errors; 'warn' counts as a warning, the rest ('log', rrweb's showDebug level; 'info', 'debug') as debug. */
const ERROR_LEVELS = new Set(['error', 'pageerror', 'exception', 'check']);

// rrweb's EventType and IncrementalSource values used here.
const FULL_SNAPSHOT = 2;
const INCREMENTAL_SNAPSHOT = 3;
const MUTATION = 0;
const STYLE_SHEET_RULE = 8;

interface RecordedEvent {
  type: number;
  timestamp: number;
  data?: unknown;
  cv?: string;
}

/**
 * One thing heard. level: the console method rrweb called, 'pageerror' (uncaught
 * in the page), 'exception' (thrown by a Replayer call) or 'check' (found here).
 */
interface Message {
  level: string;
  text: string;
  detail: string;
}

interface Recording {
  windowId: string;
  events: RecordedEvent[];
  /** What parsing found: events that do not decompress, nested adds, too few events, no FullSnapshot. */
  problems: Message[];
}

/** What bench/replay-page.html's replay() returns. */
interface PageResult {
  finished: boolean | null;
  elements: number;
  bodyElements: number;
  seconds: number;
  messages: Message[];
}

interface ModeResult extends PageResult {
  mode: Mode;
  warnings: number;
  debug: number;
  errors: number;
}

interface WindowResult {
  windowId: string;
  events: number;
  spanMs: number;
  modes: ModeResult[];
}

interface FileResult {
  file: string;
  windows: WindowResult[];
}

/** The functions bench/replay-page.html defines. */
interface ReplayPageGlobals {
  loadRecording(eventsJson: string): void;
  replay(mode: Mode, speed: number, playTimeoutMs: number): Promise<PageResult>;
}

class InputError extends Error {}

function isEvent(value: unknown): value is RecordedEvent {
  if (typeof value !== 'object' || value === null) return false;
  const { type, timestamp } = value as Record<string, unknown>;
  return typeof type === 'number' && typeof timestamp === 'number';
}

/** posthog-js's compressed field: gzip of the JSON, held as a latin1 string ('' or absent: nothing). */
function unzip(field: unknown): unknown {
  if (field === undefined || field === null || field === '') return undefined;
  if (typeof field !== 'string') throw new Error(`compressed field is a ${typeof field}, not a string`);
  return JSON.parse(gunzipSync(Buffer.from(field, 'latin1')).toString());
}

/**
 * Undoes posthog-js's `cv: "2024-10"` compression as PostHog's player does
 * (decompressEvent): a FullSnapshot's data, a StyleSheetRule's adds and
 * removes, a mutation's adds, removes, texts and attributes. On failure the
 * player keeps the event as it is, and so does this, reporting why.
 */
function decompress(event: RecordedEvent, problems: Message[]): RecordedEvent {
  if (event.cv === undefined) return event;
  const where = `event at ${event.timestamp} (type ${event.type})`;
  if (event.cv !== '2024-10') {
    problems.push({ level: 'check', text: `unknown compression version cv=${event.cv}`, detail: where });
    return event;
  }
  try {
    if (event.type === FULL_SNAPSHOT && typeof event.data === 'string') {
      return { ...event, data: unzip(event.data) };
    }
    if (event.type !== INCREMENTAL_SNAPSHOT || typeof event.data !== 'object' || event.data === null) return event;
    const data = event.data as Record<string, unknown>;
    if (data.source === STYLE_SHEET_RULE) {
      return { ...event, data: { ...data, adds: unzip(data.adds), removes: unzip(data.removes) } };
    }
    if (data.source === MUTATION && 'texts' in data) {
      const [adds, removes, texts, attributes] = [data.adds, data.removes, data.texts, data.attributes].map(unzip);
      return { ...event, data: { ...data, adds, removes, texts, attributes } };
    }
    return event;
  } catch (error) {
    problems.push({ level: 'check', text: `cannot decompress: ${(error as Error).message}`, detail: where });
    return event;
  }
}

/**
 * rrweb records a mutation's adds flat, one entry per node, and its replayer
 * builds each added node without its childNodes (skipChild): nested children
 * vanish from the replay without a word, so they are reported here.
 */
function findNestedAdds(event: RecordedEvent, problems: Message[]): void {
  if (event.type !== INCREMENTAL_SNAPSHOT) return;
  const data = event.data as { source?: unknown; adds?: unknown } | undefined;
  if (data?.source !== MUTATION || !Array.isArray(data.adds)) return;
  for (const add of data.adds as { node?: { id?: unknown; childNodes?: unknown[] } }[]) {
    const nested = add.node?.childNodes?.length ?? 0;
    if (nested > 0) {
      problems.push({
        level: 'check',
        text: `mutation at ${event.timestamp} adds node ${add.node!.id} with ${nested} nested childNodes, which rrweb never replays`,
        detail: JSON.stringify(add).slice(0, 300),
      });
    }
  }
}

/** Splits a file's text into windows: JSONL `[window_id, event]`, a JSON array of events, or `{result: {snapshots}}`. */
function parseRecordings(text: string, name: string): Recording[] {
  const windows = new Map<string, RecordedEvent[]>();
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch {
    // not one JSON document: JSONL
  }
  const snapshots = (whole as { result?: { snapshots?: unknown } } | undefined)?.result?.snapshots;
  const singleWindow = Array.isArray(snapshots) ? snapshots : Array.isArray(whole) && whole.every(isEvent) ? whole : null;
  if (singleWindow) {
    if (!singleWindow.every(isEvent)) throw new InputError(`${name}: an event without a numeric type and timestamp`);
    windows.set(SINGLE_WINDOW_ID, singleWindow);
  } else {
    text.split('\n').forEach((line, index) => {
      if (line.trim() === '') return;
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch (error) {
        throw new InputError(`${name}:${index + 1}: ${(error as Error).message}`);
      }
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || !isEvent(entry[1])) {
        throw new InputError(`${name}:${index + 1}: expected [window_id, {type, timestamp, ...}]`);
      }
      const [windowId, event] = entry as [string, RecordedEvent];
      const events = windows.get(windowId);
      if (events) events.push(event);
      else windows.set(windowId, [event]);
    });
  }
  return [...windows].map(([windowId, events]) => {
    const problems: Message[] = [];
    const sorted = events.map((event) => decompress(event, problems)).sort((a, b) => a.timestamp - b.timestamp);
    for (const event of sorted) findNestedAdds(event, problems);
    if (sorted.length < 2) problems.push({ level: 'check', text: 'fewer than 2 events: rrweb cannot replay it', detail: '' });
    else if (!sorted.some((event) => event.type === FULL_SNAPSHOT)) {
      problems.push({ level: 'check', text: 'no FullSnapshot: nothing to replay onto', detail: '' });
    }
    return { windowId, events: sorted, problems };
  });
}

function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new InputError(`${file}: ${(error as Error).message}`);
  }
}

async function openReplayPage(): Promise<{ page: Page; close: () => Promise<void> }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  const page = await browser.newPage();
  await page.route(/^https?:/, (route) => route.abort());
  await page.setContent(readFileSync(PAGE_PATH, 'utf8'));
  await page.addStyleTag({ path: join(RRWEB_DIST, 'style.css') });
  await page.addScriptTag({ path: join(RRWEB_DIST, 'rrweb.umd.cjs') });
  return { page, close: () => browser.close() };
}

function countLevels(messages: Message[]): { warnings: number; debug: number; errors: number } {
  const errors = messages.filter((message) => ERROR_LEVELS.has(message.level)).length;
  const warnings = messages.filter((message) => message.level === 'warn').length;
  return { warnings, debug: messages.length - errors - warnings, errors };
}

async function replayWindow(page: Page, recording: Recording, speed: number): Promise<WindowResult> {
  const { events, problems } = recording;
  const spanMs = events.length ? events[events.length - 1]!.timestamp - events[0]!.timestamp : 0;
  const modes: ModeResult[] = [];
  if (events.length >= 2) {
    // As one JSON string: Playwright serializes a string far faster than the objects of a large snapshot.
    const eventsJson = JSON.stringify(events);
    await page.evaluate((json) => (globalThis as unknown as ReplayPageGlobals).loadRecording(json), eventsJson);
  }
  const playTimeoutMs = spanMs / speed + PLAY_MARGIN_MS;
  for (const mode of MODES) {
    const result: PageResult =
      events.length >= 2
        ? await page.evaluate(
            ([mode, speed, playTimeoutMs]) => (globalThis as unknown as ReplayPageGlobals).replay(mode, speed, playTimeoutMs),
            [mode, speed, playTimeoutMs] as const,
          )
        : { finished: null, elements: 0, bodyElements: 0, seconds: 0, messages: [] };
    const messages = [...problems, ...result.messages];
    if (result.finished === false) {
      messages.push({ level: 'check', text: `no 'finish' within ${(playTimeoutMs / 1000).toFixed(1)} s`, detail: '' });
    }
    const played = modes.find((run) => run.mode === 'play');
    if (mode === 'seek-end' && played?.finished && played.elements !== result.elements) {
      // Both paths applied every event: the timer path and the synchronous one disagree.
      messages.push({ level: 'check', text: `seek-end rebuilt ${result.elements} elements, play ${played.elements}`, detail: '' });
    }
    modes.push({ mode, ...result, messages, ...countLevels(messages) });
  }
  return { windowId: recording.windowId, events: events.length, spanMs, modes };
}

/**
 * The distinct messages, alike but for their numbers (node ids, CSS offsets)
 * counting as one: errors first, then in order of first appearance, each with
 * its first text and how many came.
 */
function distinctMessages(messages: Message[]): { level: string; text: string; count: number }[] {
  const groups = new Map<string, { level: string; text: string; count: number }>();
  for (const { level, text } of messages) {
    const key = `${level} ${text.replace(/\d+/g, 'N')}`;
    const group = groups.get(key);
    if (group) group.count += 1;
    else groups.set(key, { level, text, count: 1 });
  }
  const isError = (group: { level: string }) => Number(ERROR_LEVELS.has(group.level));
  return [...groups.values()].sort((a, b) => isError(b) - isError(a));
}

/** Window ids are long (UUIDv7s share their leading time bits): the last 8 characters, unless two windows share them. */
function shortIds(windowIds: string[]): Map<string, string> {
  const tails = windowIds.map((id) => (id.length > 16 ? `…${id.slice(-8)}` : id));
  const unique = new Set(tails).size === tails.length;
  return new Map(windowIds.map((id, index) => [id, unique ? tails[index]! : id]));
}

function printFile({ file, windows }: FileResult): void {
  console.log(file);
  const ids = shortIds(windows.map((window) => window.windowId));
  for (const window of windows) {
    for (const mode of window.modes) {
      const texts = distinctMessages(mode.messages)
        .slice(0, 3)
        .map(({ level, text, count }) => {
          const shown = JSON.stringify(level === 'warn' ? text.slice(0, 160) : `${level}: ${text.slice(0, 160)}`);
          return count > 1 ? `${shown} x${count}` : shown;
        });
      console.log(
        [
          `  ${ids.get(window.windowId)!.padEnd(12)} ${mode.mode.padEnd(8)}`,
          `${String(window.events).padStart(5)} events`,
          `${(window.spanMs / 1000).toFixed(1).padStart(7)} s`,
          `${String(mode.warnings).padStart(3)} warnings ${String(mode.debug).padStart(3)} debug ${String(mode.errors).padStart(3)} errors`,
          `${String(mode.elements).padStart(5)} elements (body ${mode.bodyElements})`,
          `${mode.seconds.toFixed(1)} s to replay`,
          ...texts,
        ].join('  '),
      );
    }
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { speed: { type: 'string', default: '64' }, json: { type: 'boolean', default: false } },
  });
  const speed = Number(values.speed);
  if (!(speed > 0) || positionals.length === 0) {
    console.error('usage: node --import tsx bench/replay.ts [--speed 64] [--json] FILE... (- for stdin)');
    return 2;
  }
  const started = performance.now();
  const { page, close } = await openReplayPage();
  const files: FileResult[] = [];
  try {
    for (const file of positionals) {
      const text = readInput(file);
      const windows: WindowResult[] = [];
      for (const recording of parseRecordings(text, file)) windows.push(await replayWindow(page, recording, speed));
      files.push({ file, windows });
      if (!values.json) printFile(files[files.length - 1]!);
    }
  } finally {
    await close();
  }
  const runs = files.flatMap((file) => file.windows.flatMap((window) => window.modes));
  const totals = {
    windows: files.reduce((sum, file) => sum + file.windows.length, 0),
    runs: runs.length,
    runsWithMessages: runs.filter((run) => run.messages.length > 0).length,
    warnings: runs.reduce((sum, run) => sum + run.warnings, 0),
    debug: runs.reduce((sum, run) => sum + run.debug, 0),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  };
  const ok = totals.runsWithMessages === 0;
  if (values.json) {
    const report = files.map(({ file, windows }) => ({
      file,
      windows: windows.map(({ modes, ...window }) => ({
        ...window,
        modes: modes.map(({ messages, ...mode }) => ({ ...mode, distinct: distinctMessages(messages), messages })),
      })),
    }));
    console.log(JSON.stringify({ ok, speed, ...totals, files: report }, null, 2));
  } else {
    console.log(
      `${ok ? 'ok' : 'FAIL'}: ${files.length} files, ${totals.windows} windows, ${totals.runs} replays, ` +
        `${totals.runsWithMessages} with messages (${totals.warnings} warnings, ${totals.debug} debug, ${totals.errors} errors), ` +
        `speed ${speed}, ${totals.seconds} s`,
    );
  }
  return ok ? 0 : 1;
}

main().then(
  (status) => process.exit(status),
  (error) => {
    console.error(error instanceof InputError ? error.message : error);
    process.exit(2);
  },
);
