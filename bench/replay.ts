// Development-only replay check: do these recordings replay cleanly in rrweb?
//
//   node --import tsx bench/replay.ts [--speed 64] [--json] [--screenshots DIR] FILE...   (FILE - is stdin)
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
// Then two measuring passes, each by seeking (the synchronous path) in one
// more Replayer:
//   pages     just after each FullSnapshot: text nodes visible in the viewport
//             (on screen, on top, not transparent), whether <main> is shown and
//             how many elements inside it the page's own CSS hides, and the
//             document's height in viewports;
//   clicks    at each click (up to MAX_CLICKS a window): the element under its
//             x, y, and whether that is an interactive element (a link, button,
//             field, ...) and the one the click names.
// With --screenshots DIR it writes PNGs (half size) of the replayed page at
// the first FullSnapshot, the middle and the end of every window.
//
// What counts, per window and mode:
//   warnings  rrweb's console.warn: "[replayer] Node with id '12' not found.",
//             "Exception in mutation ...", "Failed to adapt css for replay";
//             and the page's own warnings as Chromium logs them;
//   debug     rrweb's showDebug level (console.log), which is on: an added node
//             whose parent is missing is dropped there ("Drop resolve tree ..."),
//             and interactions with missing nodes are reported there;
//   errors    console.error, uncaught errors in the page, exceptions thrown by
//             the Replayer, errors Chromium logs for the replayed page (invalid
//             SVG path data, resources that fail), and what this script finds
//             itself: events that do
//             not decompress, a window without a FullSnapshot or with fewer than
//             2 events, a mutation add carrying nested childNodes (rrweb records
//             adds flat and replays them without their children, silently), a
//             playback that never finishes, and seek-end rebuilding a different
//             number of elements than play did.
// It prints one line per window and mode (events, span, counts, the first 3
// distinct messages, elements in the replayed document and its body, replay
// time), one line of page and click figures per window, and a summary, or
// with --json one JSON document, and exits 1 if any window had any message at
// all, 0 if none (2 on unreadable input). The page and click figures are
// reported, not judged.
//
// Needs Chromium at /usr/bin/chromium (`apt-get install chromium`) and the
// devDependencies rrweb and playwright-core (`npm ci`); the page is
// bench/replay-page.html, rrweb comes from node_modules. Chromium runs headless
// with --no-sandbox (it runs as root here) in a fresh temporary profile
// (Playwright's own), and every http(s) request of the replayed pages is
// aborted: nothing goes online.
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { chromium, type CDPSession, type Page } from 'playwright-core';

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
/** Clicks checked a window: each is a seek, and a few show whether they land. */
const MAX_CLICKS = 12;
/** Large enough for the widest viewport a recording names, so screenshots are whole. */
const PAGE_VIEWPORT = { width: 1920, height: 1080 };
/** The window id given to a file that holds one window's events without ids. */
const SINGLE_WINDOW_ID = '(whole file)';
type Mode = (typeof MODES)[number] | 'measure';
/** Levels counted as errors; 'warn' and 'page-warning' count as warnings, the rest ('log', rrweb's showDebug level; 'info', 'debug') as debug. */
const ERROR_LEVELS = new Set(['error', 'pageerror', 'exception', 'check', 'page-error']);
const WARNING_LEVELS = new Set(['warn', 'page-warning']);

// rrweb's EventType and IncrementalSource values used here.
const FULL_SNAPSHOT = 2;
const INCREMENTAL_SNAPSHOT = 3;
const MUTATION = 0;
const MOUSE_INTERACTION = 2;
const CLICK = 2;
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

/** What bench/replay-page.html's replay() and close() return. */
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

/** The replayed page just after a FullSnapshot (bench/replay-page.html's measurePage). */
interface PageFigures {
  width: number;
  height: number;
  visibleTexts: number;
  main: 'none' | 'shown' | 'hidden';
  hiddenInMain: number;
  heightInViewports: number;
  hiddenExample: string;
}

/** Where a click landed (checkClick). */
interface ClickFigures {
  onInteractive: boolean;
  onTarget: boolean;
  hit: string;
}

interface WindowResult {
  windowId: string;
  events: number;
  spanMs: number;
  modes: ModeResult[];
  pages: PageFigures[];
  clicks: ClickFigures[];
}

interface FileResult {
  file: string;
  windows: WindowResult[];
}

/** The functions bench/replay-page.html defines. */
interface ReplayPageGlobals {
  loadRecording(eventsJson: string): void;
  replay(mode: Mode, speed: number, playTimeoutMs: number): Promise<{ finished: boolean | null }>;
  seek(offset: number): Promise<void>;
  measurePage(): PageFigures;
  checkClick(id: number, x: number, y: number): ClickFigures;
  close(): { elements: number; bodyElements: number; messages: Message[] };
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

/** The replay page, with what Chromium itself logs for it (invalid SVG, failed resources) gathered in `logged`. */
async function openReplayPage(): Promise<{ page: Page; logged: Message[]; close: () => Promise<void> }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: PAGE_VIEWPORT });
  const logged: Message[] = [];
  const cdp: CDPSession = await page.context().newCDPSession(page);
  cdp.on('Log.entryAdded', ({ entry }) => {
    if (entry.level === 'error' || entry.level === 'warning') {
      logged.push({ level: `page-${entry.level}`, text: `${entry.source}: ${entry.text}`, detail: entry.url ?? '' });
    }
  });
  await cdp.send('Log.enable');
  // Console calls of frames other than the replay page's own (whose console replay-page.html keeps).
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') logged.push({ level: `page-${message.type()}`, text: message.text(), detail: '' });
  });
  await page.route(/^https?:/, (route) => route.abort());
  await page.setContent(readFileSync(PAGE_PATH, 'utf8'));
  await page.addStyleTag({ path: join(RRWEB_DIST, 'style.css') });
  await page.addScriptTag({ path: join(RRWEB_DIST, 'rrweb.umd.cjs') });
  return { page, logged, close: () => browser.close() };
}

function countLevels(messages: Message[]): { warnings: number; debug: number; errors: number } {
  const errors = messages.filter((message) => ERROR_LEVELS.has(message.level)).length;
  const warnings = messages.filter((message) => WARNING_LEVELS.has(message.level)).length;
  return { warnings, debug: messages.length - errors - warnings, errors };
}

/** Calls one of bench/replay-page.html's functions. */
function call<K extends keyof ReplayPageGlobals>(page: Page, name: K, ...args: Parameters<ReplayPageGlobals[K]>): Promise<Awaited<ReturnType<ReplayPageGlobals[K]>>> {
  return page.evaluate(
    ([name, args]) => (globalThis as unknown as Record<string, (...args: unknown[]) => unknown>)[name]!(...args),
    [name, args] as const,
  ) as Promise<Awaited<ReturnType<ReplayPageGlobals[K]>>>;
}

/** Where screenshots go, if anywhere: DIR/<file>-<window>-<moment>.png. */
interface Shots {
  directory: string | undefined;
  prefix: string;
}

/** A half-size PNG of the replayed page as it is now. */
async function screenshot(page: Page, shots: Shots, moment: string): Promise<void> {
  if (!shots.directory) return;
  const wrapper = page.locator('.replayer-wrapper');
  await wrapper.evaluate((element) => Object.assign((element as HTMLElement).style, { transform: 'scale(0.5)', transformOrigin: 'top left' }));
  await wrapper.screenshot({ path: join(shots.directory, `${shots.prefix}-${moment}.png`) });
}

async function replayWindow(page: Page, logged: Message[], recording: Recording, speed: number, shots: Shots): Promise<WindowResult> {
  const { events, problems } = recording;
  const spanMs = events.length ? events[events.length - 1]!.timestamp - events[0]!.timestamp : 0;
  const result: WindowResult = { windowId: recording.windowId, events: events.length, spanMs, modes: [], pages: [], clicks: [] };
  const finish = (mode: Mode, started: number, finished: boolean | null, closed: { elements: number; bodyElements: number; messages: Message[] }) => {
    const messages = [...problems, ...closed.messages, ...logged.splice(0)];
    result.modes.push({ mode, finished, ...closed, seconds: (performance.now() - started) / 1000, messages, ...countLevels(messages) });
  };
  if (events.length < 2) {
    for (const mode of MODES) finish(mode, performance.now(), null, { elements: 0, bodyElements: 0, messages: [] });
    return result;
  }
  // As one JSON string: Playwright serializes a string far faster than the objects of a large snapshot.
  await call(page, 'loadRecording', JSON.stringify(events));
  const playTimeoutMs = spanMs / speed + PLAY_MARGIN_MS;
  for (const mode of MODES) {
    const started = performance.now();
    const { finished } = await call(page, 'replay', mode, speed, playTimeoutMs);
    if (mode !== 'play') await screenshot(page, shots, mode === 'seek-mid' ? 'middle' : 'end');
    const closed = await call(page, 'close');
    if (finished === false) closed.messages.push({ level: 'check', text: `no 'finish' within ${(playTimeoutMs / 1000).toFixed(1)} s`, detail: '' });
    const played = result.modes.find((run) => run.mode === 'play');
    if (mode === 'seek-end' && played?.finished && played.elements !== closed.elements) {
      // Both paths applied every event: the timer path and the synchronous one disagree.
      closed.messages.push({ level: 'check', text: `seek-end rebuilt ${closed.elements} elements, play ${played.elements}`, detail: '' });
    }
    finish(mode, started, finished, closed);
  }
  const started = performance.now();
  const first = events[0]!.timestamp;
  for (const event of events) {
    if (event.type !== FULL_SNAPSHOT) continue;
    // Just after the page load: its FullSnapshot and what came with it in the same millisecond.
    await call(page, 'seek', event.timestamp - first + 1);
    result.pages.push(await call(page, 'measurePage'));
    if (result.pages.length === 1) await screenshot(page, shots, 'first');
  }
  const clicks = events.filter((event) => event.type === INCREMENTAL_SNAPSHOT && isClick(event.data)).slice(0, MAX_CLICKS);
  for (const click of clicks) {
    const { id, x, y } = click.data as { id: number; x: number; y: number };
    await call(page, 'seek', click.timestamp - first);
    result.clicks.push(await call(page, 'checkClick', id, x, y));
  }
  finish('measure', started, null, await call(page, 'close'));
  return result;
}

const isClick = (data: unknown): boolean => {
  const { source, type } = (data ?? {}) as { source?: unknown; type?: unknown };
  return source === MOUSE_INTERACTION && type === CLICK;
};

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
    const pages = window.pages.map((page) =>
      `${page.width}x${page.height}: ${page.visibleTexts} texts, main ${page.main}${page.hiddenInMain ? ` (${page.hiddenInMain} hidden, e.g. ${page.hiddenExample})` : ''}, ${page.heightInViewports.toFixed(1)} viewports`);
    const clicks = window.clicks.length === 0 ? 'no clicks' :
      `clicks ${window.clicks.length}: ${window.clicks.filter((click) => click.onInteractive).length} on an interactive element, ` +
      `${window.clicks.filter((click) => click.onTarget).length} on the one clicked`;
    console.log(`  ${ids.get(window.windowId)!.padEnd(12)} pages    ${pages.join('; ')}; ${clicks}`);
  }
}

/** Viewports at least this wide are a desktop's: the issue's figures (50 visible texts) are for those. */
const DESKTOP_WIDTH = 1024;

/** The page and click figures of every window, summed up: what the summary line and --json report. */
function pageTotals(files: FileResult[]): Record<string, number | string> {
  const pages = files.flatMap((file) => file.windows.flatMap((window) => window.pages));
  const clicks = files.flatMap((file) => file.windows.flatMap((window) => window.clicks));
  const desktop = pages.filter((page) => page.width >= DESKTOP_WIDTH);
  const mobile = pages.filter((page) => page.width < DESKTOP_WIDTH);
  const heights = pages.map((page) => page.heightInViewports).sort((a, b) => a - b);
  const quantile = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0);
  const texts = (list: PageFigures[]) => list.map((page) => page.visibleTexts).sort((a, b) => a - b);
  return {
    pages: pages.length,
    desktopPages: desktop.length,
    desktopPagesWith50Texts: desktop.filter((page) => page.visibleTexts >= 50).length,
    desktopTextsMin: quantile(texts(desktop), 0),
    desktopTextsMedian: quantile(texts(desktop), 0.5),
    mobilePages: mobile.length,
    mobileTextsMin: quantile(texts(mobile), 0),
    mobileTextsMedian: quantile(texts(mobile), 0.5),
    pagesWithoutMain: pages.filter((page) => page.main === 'none').length,
    pagesWithMainHidden: pages.filter((page) => page.main === 'hidden').length,
    pagesHidingInMain: pages.filter((page) => page.hiddenInMain > 0).length,
    heightMedian: Number(quantile(heights, 0.5).toFixed(1)),
    heightP90: Number(quantile(heights, 0.9).toFixed(1)),
    heightMax: Number(quantile(heights, 1).toFixed(1)),
    pagesAtMost10Viewports: pages.filter((page) => page.heightInViewports <= 10).length,
    clicks: clicks.length,
    clicksOnInteractive: clicks.filter((click) => click.onInteractive).length,
    clicksOnTarget: clicks.filter((click) => click.onTarget).length,
  };
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { speed: { type: 'string', default: '64' }, json: { type: 'boolean', default: false }, screenshots: { type: 'string' } },
  });
  const speed = Number(values.speed);
  if (!(speed > 0) || positionals.length === 0) {
    console.error('usage: node --import tsx bench/replay.ts [--speed 64] [--json] [--screenshots DIR] FILE... (- for stdin)');
    return 2;
  }
  if (values.screenshots) mkdirSync(values.screenshots, { recursive: true });
  const started = performance.now();
  const { page, logged, close } = await openReplayPage();
  const files: FileResult[] = [];
  try {
    for (const file of positionals) {
      const text = readInput(file);
      const recordings = parseRecordings(text, file);
      const ids = shortIds(recordings.map((recording) => recording.windowId));
      const windows: WindowResult[] = [];
      for (const recording of recordings) {
        const prefix = `${basename(file === '-' ? 'stdin' : file).replace(/\.[^.]*$/, '')}-${ids.get(recording.windowId)!.replace(/[^A-Za-z0-9-]/g, '')}`;
        windows.push(await replayWindow(page, logged, recording, speed, { directory: values.screenshots, prefix }));
      }
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
  const figures = pageTotals(files);
  const ok = totals.runsWithMessages === 0;
  if (values.json) {
    const report = files.map(({ file, windows }) => ({
      file,
      windows: windows.map(({ modes, ...window }) => ({
        ...window,
        modes: modes.map(({ messages, ...mode }) => ({ ...mode, distinct: distinctMessages(messages), messages })),
      })),
    }));
    console.log(JSON.stringify({ ok, speed, ...totals, figures, files: report }, null, 2));
  } else {
    console.log(
      `${ok ? 'ok' : 'FAIL'}: ${files.length} files, ${totals.windows} windows, ${totals.runs} replays, ` +
        `${totals.runsWithMessages} with messages (${totals.warnings} warnings, ${totals.debug} debug, ${totals.errors} errors), ` +
        `speed ${speed}, ${totals.seconds} s`,
    );
    console.log(`pages: ${Object.entries(figures).map(([name, value]) => `${name} ${value}`).join(', ')}`);
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
