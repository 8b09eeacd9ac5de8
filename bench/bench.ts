/**
 * npm run bench: how fast generate.ts writes, how much memory it takes, how
 * well it keeps --rate, how it compares with PostHog's consumer and with
 * real recordings. Markdown tables on stdout, progress on stderr.
 *
 *   npm run bench [-- --quick] [-- --pairs N] [-- --kafka]      (or BENCH_QUICK=1, BENCH_PAIRS=N)
 *
 * Method:
 * - Pipe and reader. Every throughput run writes into a pipe (pipe(2), made
 *   by bash's `|`, as in `generate.ts | kcat`) read by one small plain-node
 *   reader (READER below) that counts bytes and lines and notes when the
 *   first and the last byte arrive. MB/s is measured from the first byte to
 *   the last as the reader sees them, so start-up (node, tsx compiling
 *   generate.ts) is excluded; wall time from spawn to exit, start-up
 *   included, is given beside it.
 * - Baseline. bench/raw-write.mjs: plain node, no tsx, nothing of
 *   generate.ts loaded, writing a prebuilt block into the same pipe and
 *   reader the way generate.ts writes (stdout made blocking, 1 MiB fs.write
 *   calls from the thread pool): what node itself can push through the pipe.
 * - Paired runs. A comparison alternates its two runs (generator, baseline,
 *   generator, baseline, ...) for PAIRS pairs and takes the ratio within each
 *   pair, so a burst of load from elsewhere on a shared machine hits both
 *   sides of a pair; tables give the median with the min and max over pairs,
 *   of the ratio and of each side's MB/s.
 * - Units: MB = 10^6 bytes, MB/s = 10^6 bytes a second; memory is peak RSS
 *   (getrusage maxRSS, reported by bench/report-rss.mjs as the generator
 *   exits) in MiB = 2^20 bytes.
 * - Kafka. --kafka runs produce into librdkafka's mock cluster
 *   (bench/kafka-mock.c, built here with cc and Debian's librdkafka-dev) on
 *   this machine, paired with the same flags into the reader; both sides'
 *   MB/s come from their own --stats (from start-up to the last byte the
 *   reader took or the broker acknowledged), so the two count alike.
 *   `-- --kafka` runs that comparison alone.
 * - Every generator run gets --start and --token, so its output is the same
 *   bytes every time and it prints no warning. It runs as users run it,
 *   through tsx's command (node_modules/.bin/tsx starts node with tsx's
 *   loader), under the node on PATH, which `npm run` makes node_modules'
 *   own node 22; peak RSS is the generator's process, tsx's loader included.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compressionWork, InFlight, Line, parseFlags, scheduleSnapshots } from '../generate.ts';
import { consume, type Format } from './read.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const USAGE = 'usage: npm run bench [-- --quick] [-- --pairs N] [-- --kafka]   (or BENCH_QUICK=1, BENCH_PAIRS=N)';

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

const { values: options } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false }, pairs: { type: 'string' }, kafka: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (options.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const QUICK = options.quick || process.env.BENCH_QUICK === '1';
const PAIRS = Number(options.pairs ?? process.env.BENCH_PAIRS ?? (QUICK ? 2 : 5));
if (!Number.isInteger(PAIRS) || PAIRS < 1) {
  process.stderr.write(`--pairs takes a whole number >= 1\n${USAGE}\n`);
  process.exit(2);
}

/** Flags of every generator run: the same bytes every time, and no warning. */
const FIXED_FLAGS = ['--start', '2024-01-01T00:00:00Z', '--token', 'phc_bench'];
/** What the baseline writes a run: about as long as a default-mode generator run. */
const BASELINE_BYTES = QUICK ? 500e6 : 2e9;
/**
 * Sessions a run: the default mode makes about 0.9 MB a session near 1 GB/s;
 * the rrweb formats 5-15 MB/s, and with seed 0 session 0 alone is 10-27 MB.
 */
const DEFAULT_MODE_COUNT = QUICK ? 1000 : 3000;
const RRWEB_COUNT = QUICK ? 3 : 50;
/** --count values for peak RSS at the defaults; 100000 sessions are about 90 GB. */
const RSS_COUNTS = QUICK ? [10, 100, 1000] : [10, 100, 1000, 10000, 100000];
/** --concurrency values for peak RSS with sessions in flight, and how long each run lasts. */
const IN_FLIGHT = QUICK
  ? [{ concurrency: 10, seconds: 5 }, { concurrency: 100, seconds: 5 }]
  : [{ concurrency: 10, seconds: 10 }, { concurrency: 100, seconds: 10 }, { concurrency: 1000, seconds: 75 }];
/**
 * Lighter sessions for the in-flight runs: one full snapshot (default size,
 * so each window's page is as large as usual) and 10 small incremental ones,
 * so 1000 sessions are in flight within a minute rather than many minutes
 * (at the defaults a session lasts 210 s on average, with a long tail).
 */
const IN_FLIGHT_FLAGS = [
  '--full-snapshot-count-mean', '1', '--full-snapshot-count-standard-deviation', '0',
  '--incremental-snapshot-count-mean', '10', '--incremental-snapshot-count-standard-deviation', '5',
  '--incremental-snapshot-size-mean', '2000', '--incremental-snapshot-size-standard-deviation', '2000',
];
/** The pacing run: messages a second, for how long, with small snapshots so the pipe is never the limit. */
const RATE = 1000;
const RATE_SECONDS = QUICK ? 10 : 60;
const RATE_FLAGS = [
  '--full-snapshot-size-mean', '2000', '--full-snapshot-size-standard-deviation', '1000',
  '--incremental-snapshot-size-mean', '500', '--incremental-snapshot-size-standard-deviation', '500',
];
/** Worker threads the generator is measured with against the reference consumer. */
const CONSUMER_JOBS = [1, 2];
const REALISM_COUNT = 12;

/** One measured mode of the generator. */
interface Case {
  label: string;
  flags: string[];
  /** bench/read.ts's format for the output, if it carries rrweb events the reference consumer can read. */
  consumerFormat?: Format;
}

const CASES: Case[] = [
  { label: 'snapshot, random payload (the default)', flags: ['--count', String(DEFAULT_MODE_COUNT)] },
  { label: 'snapshot, rrweb payload', flags: ['--payload', 'rrweb', '--count', String(RRWEB_COUNT)], consumerFormat: 'snapshot' },
  { label: 'snapshot-items', flags: ['--format', 'snapshot-items', '--count', String(RRWEB_COUNT)], consumerFormat: 'snapshot-items' },
  { label: 'vegeta', flags: ['--format', 'vegeta', '--count', String(RRWEB_COUNT)], consumerFormat: 'vegeta' },
];

// ---------------------------------------------------------------------------
// Running: a command into the reader or /dev/null, and what it reports
// ---------------------------------------------------------------------------

/**
 * The reader at the end of every pipe, as plain node (`node -e`): reads fd 0
 * (the pipe, blocking) in a loop and prints one JSON line: bytes, lines, and
 * on its own clock (ms) when the first and last byte and the first and last
 * newline arrived.
 */
const READER = `
const { readSync } = require('node:fs');
const buffer = Buffer.allocUnsafe(1 << 20);
const report = { bytes: 0, lines: 0, firstByteMs: 0, lastByteMs: 0, firstLineMs: 0, lastLineMs: 0 };
for (let count; (count = readSync(0, buffer, 0, buffer.length, null)) > 0; ) {
  const nowMs = performance.now();
  if (report.bytes === 0) report.firstByteMs = nowMs;
  report.bytes += count;
  report.lastByteMs = nowMs;
  const chunk = buffer.subarray(0, count);
  let newlines = 0;
  for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) newlines++;
  if (newlines === 0) continue;
  if (report.lines === 0) report.firstLineMs = nowMs;
  report.lines += newlines;
  report.lastLineMs = nowMs;
}
process.stdout.write(JSON.stringify(report));
`;

interface ReaderReport {
  bytes: number;
  lines: number;
  firstByteMs: number;
  lastByteMs: number;
  firstLineMs: number;
  lastLineMs: number;
}

/** One run into the reader: what the reader saw, and more. */
interface PipeRun extends ReaderReport {
  /** From the first byte to the last, as the reader saw them. */
  seconds: number;
  /** From spawn to exit, start-up included. */
  wallSeconds: number;
  /** The command's stderr (--stats, peak RSS). */
  stderr: string;
}

/** The generator's command line, as users run it (tsx's command, which runs node with its loader); report-rss.mjs comes in NODE_OPTIONS. */
const generator = (flags: readonly string[]): string[] => [join(ROOT, 'node_modules/.bin/tsx'), 'generate.ts', ...FIXED_FLAGS, ...flags];
const baseline = (): string[] => [process.execPath, 'bench/raw-write.mjs', String(BASELINE_BYTES)];

/** Runs a bash script with `command` as its arguments, returning stdout, stderr and wall time; throws unless it succeeds. */
function bash(script: string, command: readonly string[], stdout: 'pipe' | number = 'pipe'): { stdout: string; stderr: string; wallSeconds: number } {
  const startedMs = performance.now();
  const result = spawnSync('bash', ['-c', `set -o pipefail; ${script}`, 'bench', ...command], {
    cwd: ROOT,
    env: { ...process.env, BENCH_NODE: process.execPath, BENCH_READER: READER, NODE_OPTIONS: `--import ${join(ROOT, 'bench/report-rss.mjs')}` },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', stdout, 'pipe'],
  });
  const wallSeconds = (performance.now() - startedMs) / 1000;
  if (result.status !== 0) throw new Error(`${command.join(' ')} (${script}) failed with status ${result.status}:\n${result.stderr}`);
  return { stdout: result.stdout ?? '', stderr: result.stderr, wallSeconds };
}

/** `command | reader`. */
function intoReader(command: readonly string[]): PipeRun {
  const { stdout, stderr, wallSeconds } = bash('"$@" | "$BENCH_NODE" -e "$BENCH_READER"', command);
  const reader = JSON.parse(stdout) as ReaderReport;
  const seconds = (reader.lastByteMs - reader.firstByteMs) / 1000;
  return { ...reader, seconds, wallSeconds, stderr };
}

/** `command > /dev/null`: for runs where only memory and --stats count. */
function intoDevNull(command: readonly string[]): { stderr: string; wallSeconds: number } {
  return bash('"$@" > /dev/null', command);
}

/** `command > file`. */
function intoFile(command: readonly string[], path: string): void {
  const fd = openSync(path, 'w');
  try {
    bash('"$@"', command, fd);
  } finally {
    closeSync(fd);
  }
}

/** Peak RSS in MiB, from report-rss.mjs's line on stderr. */
function peakRssMiB(stderr: string): number {
  const match = /bench-peak-rss-kib (\d+)/.exec(stderr);
  if (!match) throw new Error(`no peak RSS on stderr:\n${stderr}`);
  return Number(match[1]) / 1024;
}

/** What --stats says at the end: bytes delivered and sessions in flight. */
function statsOf(stderr: string): { bytes: number; inFlightMean: number; inFlightMax: number } {
  const bytes = /^sessions \d+ done, messages \d+, bytes (\d+)/m.exec(stderr);
  const inFlight = /^sessions in flight: mean ([\d.]+), max (\d+)/m.exec(stderr);
  if (!bytes || !inFlight) throw new Error(`no --stats summary on stderr:\n${stderr}`);
  return { bytes: Number(bytes[1]), inFlightMean: Number(inFlight[1]), inFlightMax: Number(inFlight[2]) };
}

const mbPerSecond = (run: PipeRun): number => run.bytes / 1e6 / run.seconds;
const note = (text: string): void => void process.stderr.write(`bench: ${text}\n`);

// ---------------------------------------------------------------------------
// Figures and tables
// ---------------------------------------------------------------------------

/** Median, min and max. */
interface Spread {
  median: number;
  min: number;
  max: number;
}

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)! };
}

/** A figure with about three significant digits: 1234, 123, 12.3, 1.23. */
function figure(value: number): string {
  if (Math.abs(value) >= 100) return value.toFixed(0);
  return value.toFixed(Math.abs(value) >= 10 ? 1 : 2);
}

const showSpread = (values: readonly number[], show: (value: number) => string = figure): string => {
  const { median, min, max } = spread(values);
  return `${show(median)} (${show(min)}–${show(max)})`;
};
/** A ratio: two decimals, or two significant digits below 0.1. */
const ratio = (value: number): string => (value >= 0.1 ? value.toFixed(2) : value.toPrecision(2));

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Prints a section: a heading, a table and notes below it. */
function section(heading: string, body: string, notes: readonly string[] = []): void {
  process.stdout.write(`\n## ${heading}\n\n${body}\n${notes.map((text) => `\n${text}`).join('')}\n`);
}

// ---------------------------------------------------------------------------
// The measurements
// ---------------------------------------------------------------------------

/** Alternates two commands into the reader, `PAIRS` times. */
function pairedRuns(first: readonly string[], second: readonly string[], label: string): { first: PipeRun[]; second: PipeRun[] } {
  const runs = { first: [] as PipeRun[], second: [] as PipeRun[] };
  for (let pair = 1; pair <= PAIRS; pair++) {
    note(`${label}: pair ${pair}/${PAIRS}`);
    runs.first.push(intoReader(first));
    runs.second.push(intoReader(second));
  }
  return runs;
}

/** 1. Each case against the baseline. */
function throughput(): void {
  const rows = CASES.map((testCase) => {
    const { first: runs, second: baselines } = pairedRuns(generator(testCase.flags), baseline(), testCase.label);
    const mbps = runs.map(mbPerSecond);
    return [
      testCase.label,
      `\`${testCase.flags.join(' ')}\``,
      figure(runs[0]!.bytes / 1e6),
      showSpread(mbps),
      showSpread(baselines.map(mbPerSecond)),
      showSpread(runs.map((run, at) => mbPerSecond(run) / mbPerSecond(baselines[at]!)), ratio),
      figure(spread(runs.map((run) => run.lines / run.seconds)).median),
      figure(spread(runs.map((run) => run.wallSeconds)).median),
      figure(spread(runs.map((run) => peakRssMiB(run.stderr))).median),
    ];
  });
  section(
    'Throughput: generator vs plain node writing to the same pipe',
    table(['format', 'flags', 'MB a run', 'generator MB/s', 'baseline MB/s', 'generator / baseline', 'messages/s', 'generator wall s, start-up incl.', 'peak RSS MiB'], rows),
    [
      `Median (min–max) of ${PAIRS} pairs, each a generator run then a baseline run (\`node bench/raw-write.mjs ${BASELINE_BYTES}\`) into the same reader;`,
      'the ratio is taken within each pair. MB/s from the first byte to the last as the reader saw them (start-up excluded);',
      'messages/s likewise; wall time from spawn to exit and peak RSS are medians.',
    ],
  );
}

/** 2. The default mode interleaved in time vs one session after another. */
function interleavingCost(): void {
  const count = ['--count', String(DEFAULT_MODE_COUNT)];
  const { first: timeOrder, second: sessionOrder } = pairedRuns(generator([...count, '--order', 'time']), generator([...count, '--order', 'session']), 'interleaving');
  const ratios = timeOrder.map((run, at) => mbPerSecond(run) / mbPerSecond(sessionOrder[at]!));
  section(
    'Interleaving cost: --order time vs --order session',
    table([`\`--count ${DEFAULT_MODE_COUNT}\``, 'MB/s'], [
      ['--order time (default)', showSpread(timeOrder.map(mbPerSecond))],
      ['--order session', showSpread(sessionOrder.map(mbPerSecond))],
      ['time / session, per pair', showSpread(ratios, ratio)],
    ]),
    [`Median (min–max) of ${PAIRS} pairs (time, then session), into the reader. Goal: time / session >= 0.9.`],
  );
}

/** 3. --rate as the reader sees it: messages between the first and the last arrival. */
function pacing(): void {
  note(`--rate ${RATE} for ${RATE_SECONDS} s`);
  const run = intoReader(generator([...RATE_FLAGS, '--rate', String(RATE), '--duration', `${RATE_SECONDS}s`]));
  const { lines, firstLineMs, lastLineMs } = run;
  const seconds = (lastLineMs - firstLineMs) / 1000;
  const achieved = (lines - 1) / seconds;
  section(
    'Pacing: --rate',
    table(['--rate', 'messages', 'first to last message, s', 'achieved messages/s', 'of the rate asked'], [
      [String(RATE), String(lines), seconds.toFixed(2), achieved.toFixed(1), `${((100 * achieved) / RATE).toFixed(2)}%`],
    ]),
    [`\`--rate ${RATE} --duration ${RATE_SECONDS}s ${RATE_FLAGS.join(' ')}\` into the reader; achieved = (messages − 1) / (last arrival − first arrival). Goal: within 1%.`],
  );
}

/**
 * 4. The rrweb formats against the reference consumer on the same output,
 * made with `--jobs 1` (a worker) and `--jobs 2` (a worker and main): each
 * pair a generator run into the reader, then `consume` (PostHog's
 * per-message decode, one thread) of the same bytes, lines already in
 * memory, timed in this process.
 */
function consumerRatio(): void {
  const directory = mkdtempSync(join(tmpdir(), 'bench-'));
  try {
    const rows = CASES.flatMap((testCase) => {
      const format = testCase.consumerFormat;
      if (format === undefined) return [];
      const path = join(directory, 'output.jsonl');
      intoFile(generator(testCase.flags), path);
      const bytes = statSync(path).size;
      const lines = readFileSync(path, 'utf8').split('\n');
      return CONSUMER_JOBS.map((jobs) => {
        const runs = { generator: [] as number[], consumer: [] as number[] };
        for (let pair = 1; pair <= PAIRS; pair++) {
          note(`reference consumer: ${testCase.label}, --jobs ${jobs}: pair ${pair}/${PAIRS}`);
          runs.generator.push(mbPerSecond(intoReader(generator([...testCase.flags, '--jobs', String(jobs)]))));
          const startedMs = performance.now();
          consume(format, lines);
          runs.consumer.push(bytes / 1e6 / ((performance.now() - startedMs) / 1000));
        }
        const ratios = runs.generator.map((mbps, at) => mbps / runs.consumer[at]!);
        return [testCase.label, String(jobs), figure(bytes / 1e6), showSpread(runs.generator), showSpread(runs.consumer), showSpread(ratios, ratio)];
      });
    });
    section(
      'Generator vs the reference consumer (bench/read.ts `consume`)',
      table(['format', '--jobs', 'MB', 'generator MB/s', 'consumer MB/s', 'generator / consumer'], rows),
      [
        `Median (min–max) of ${PAIRS} pairs, each a generator run into the reader (MB/s from the first byte to the last) and then the reference`,
        "consumer on the same bytes (the flags' output, read once into memory). Above 1: the generator outruns one consumer core.",
      ],
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/**
 * 4b. Compression work per byte of text the output carries, for each rrweb
 * format: bytes fed to deflate (trials that size a batch feed some twice,
 * reused stylesheets none), and bytes of dictionaries deflate was primed
 * with, both over bytes of text in the finished members; input also over
 * the distinct text (each stylesheet counted once): 1.0 when each byte is
 * compressed once. Made in this process, from the library, as the
 * generator makes them.
 */
function compressionPerByte(): void {
  const rows = CASES.filter((testCase) => testCase.consumerFormat !== undefined).map((testCase) => {
    note(`compression work: ${testCase.label}`);
    Object.assign(compressionWork, { text: 0, reused: 0, stylesheets: 0, input: 0, dictionary: 0 });
    const config = parseFlags([...FIXED_FLAGS, ...testCase.flags]);
    if (typeof config === 'string' || 'merge' in config) throw new Error(`not a run: ${testCase.flags.join(' ')}`);
    for (const { session, snapshot } of scheduleSnapshots(config, new InFlight())) {
      for (const message of snapshot.messages) new Line(config, session.identity.sessionId, message).render();
    }
    const { text, reused, stylesheets, input, dictionary } = compressionWork;
    return [testCase.label, figure(text / 1e6), ratio(input / text), ratio(input / (text - reused + stylesheets)), ratio(dictionary / text)];
  });
  section(
    'Compression work per byte of text',
    table(['format', 'MB of text compressed', 'deflate input / text', 'deflate input / distinct text', 'dictionaries / text'], rows),
    ['Text: the uncompressed bytes of every gzip member the output carries. Distinct text: the same with each stylesheet counted once',
      '(it is compressed once and spliced into every page that links it). Goal: deflate input / text <= 1.05.'],
  );
}

/** 5. Peak RSS at the defaults as --count grows. */
function memoryByCount(): void {
  const rows = RSS_COUNTS.map((count) => {
    note(`peak RSS at --count ${count}`);
    const { stderr, wallSeconds } = intoDevNull(generator(['--count', String(count), '--stats']));
    return [String(count), figure(statsOf(stderr).bytes / 1e9), figure(wallSeconds), figure(peakRssMiB(stderr))];
  });
  section(
    'Peak RSS by --count (defaults)',
    table(['--count', 'GB written', 'wall s', 'peak RSS MiB'], rows),
    [`Defaults, \`--stats\`, stdout to /dev/null; one run each.${QUICK ? ' Quick mode: no 10000 and 100000.' : ''} Goal: <= 150 MiB at --count 100000.`],
  );
}

/** 6. Peak RSS with many sessions in flight, for the rrweb formats. */
function memoryInFlight(): void {
  const formats = [['--payload', 'rrweb'], ['--format', 'snapshot-items']];
  const rows = formats.flatMap((formatFlags) =>
    IN_FLIGHT.map(({ concurrency, seconds }) => {
      note(`peak RSS in flight: ${formatFlags.join(' ')} --concurrency ${concurrency}, ${seconds} s`);
      const { stderr } = intoDevNull(generator([...formatFlags, ...IN_FLIGHT_FLAGS, '--concurrency', String(concurrency), '--duration', `${seconds}s`, '--stats']));
      const stats = statsOf(stderr);
      return [formatFlags.join(' '), String(concurrency), String(seconds), String(stats.inFlightMax), figure(stats.inFlightMean), figure(stats.bytes / 1e6), figure(peakRssMiB(stderr))];
    }),
  );
  section(
    'Peak RSS by sessions in flight',
    table(['format', '--concurrency', '--duration s', 'in flight, max', 'in flight, mean', 'MB written', 'peak RSS MiB'], rows),
    [
      `With \`${IN_FLIGHT_FLAGS.join(' ')}\`, \`--stats\`, stdout to /dev/null: one full snapshot of the default size and 10 small incremental ones`,
      'a session, so sessions are as large in memory as usual but build up to --concurrency in flight within a minute. In flight as --stats',
      `counts them: the max reached, and the mean over the run's own time from the first arrival to the last, ramp-up included.${QUICK ? ' Quick mode: no --concurrency 1000.' : ''}`,
      'Goal: <= 250 MiB at 1000 in flight.',
    ],
  );
}

/** 7. bench/realism.ts's table. */
function realism(): void {
  note(`realism --count ${REALISM_COUNT}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'bench/realism.ts', '--count', String(REALISM_COUNT)], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 });
  const body = result.status === 0 ? result.stdout.trimEnd() : `bench/realism.ts failed (status ${result.status}):\n\n    ${result.stderr.trim().split('\n').join('\n    ')}`;
  section(`Realism: \`node --import tsx bench/realism.ts --count ${REALISM_COUNT}\``, body);
}

/** Partitions of the bench's topic: the mock keeps about 5 MB of each, and this spreads the load over its brokers. */
const KAFKA_PARTITIONS = 32;
/** What the Kafka comparison runs: the default mode, and the rrweb format PostHog's current consumer reads. */
const KAFKA_CASES: Case[] = [CASES[0]!, CASES[2]!];

/** MB/s and produce latency as a run's --stats gives them. */
function statsSpeed(stderr: string): { mbps: number; latency: string } {
  const mbps = /^([\d.]+) MB\/s, /m.exec(stderr);
  const latency = /produce latency (p50 [\d.]+ ms, p99 [\d.]+ ms)/.exec(stderr);
  if (!mbps) throw new Error(`no --stats on stderr:\n${stderr}`);
  return { mbps: Number(mbps[1]), latency: latency?.[1] ?? '' };
}

/** Builds and starts bench/kafka-mock.c; its address and a way to stop it, or why it cannot run here. */
function startKafkaMock(directory: string): { address: string; stop: () => void } | string {
  const binary = join(directory, 'kafka-mock');
  const built = spawnSync('cc', ['-O2', '-o', binary, 'bench/kafka-mock.c', '-lrdkafka'], { cwd: ROOT, encoding: 'utf8' });
  if (built.status !== 0) return `cannot build bench/kafka-mock.c (apt-get install librdkafka-dev): ${(built.stderr || String(built.error)).split('\n')[0]}`;
  const addressFile = join(directory, 'address');
  const mock = spawn(binary, ['-p', String(KAFKA_PARTITIONS), addressFile, 'bench'], { stdio: 'ignore' });
  for (const startedMs = performance.now(); !existsSync(addressFile); ) {
    if (performance.now() - startedMs > 10_000) return 'kafka-mock did not start within 10 s';
    spawnSync('sleep', ['0.05']);
  }
  return { address: readFileSync(addressFile, 'utf8').trim(), stop: () => mock.kill() };
}

/** 8. --kafka into the mock broker against the same flags into the reader. */
function kafkaThroughput(): void {
  const directory = mkdtempSync(join(tmpdir(), 'bench-kafka-'));
  const broker = startKafkaMock(directory);
  try {
    if (typeof broker === 'string') {
      section('Kafka: --kafka into a broker vs stdout', `Not measured: ${broker}.`);
      return;
    }
    const rows = KAFKA_CASES.map((testCase) => {
      const flags = [...testCase.flags, '--stats'];
      const kafkaFlags = [...flags, '--kafka', broker.address, '--topic', 'bench'];
      const runs = { kafka: [] as { mbps: number; latency: string; wall: number }[], stdout: [] as { mbps: number }[], kcat: [] as number[] };
      for (let pair = 1; pair <= PAIRS; pair++) {
        note(`--kafka, ${testCase.label}: pair ${pair}/${PAIRS}`);
        const kafka = intoDevNull(generator(kafkaFlags));
        runs.kafka.push({ ...statsSpeed(kafka.stderr), wall: statsOf(kafka.stderr).bytes / 1e6 / kafka.wallSeconds });
        runs.stdout.push(statsSpeed(intoReader(generator(flags)).stderr));
        const piped = bash(`"$@" | kcat -P -b ${broker.address} -t bench -K '\t'`, generator([...flags, '--key']));
        runs.kcat.push(statsOf(piped.stderr).bytes / 1e6 / piped.wallSeconds);
      }
      return [
        testCase.label, `\`${testCase.flags.join(' ')}\``, showSpread(runs.kafka.map(({ mbps }) => mbps)), showSpread(runs.stdout.map(({ mbps }) => mbps)),
        showSpread(runs.kafka.map(({ mbps }, at) => mbps / runs.stdout[at]!.mbps), ratio), showSpread(runs.kafka.map(({ wall }) => wall)),
        showSpread(runs.kcat), runs.kafka.map(({ latency }) => latency).at(-1) ?? '',
      ];
    });
    section(
      'Kafka: --kafka into a broker vs stdout',
      table(['format', 'flags', '--kafka MB/s', 'stdout MB/s', '--kafka / stdout', '--kafka MB/s, wall', '\\| kcat -P MB/s, wall', 'produce latency, last run'], rows),
      [
        `Median (min–max) of ${PAIRS} triples: a --kafka run into librdkafka's mock cluster (bench/kafka-mock.c: 3 brokers, ${KAFKA_PARTITIONS} partitions,`,
        'on this machine), the same flags into the reader, and the same flags with --key piped into kcat -P (the pipeline --kafka replaces)',
        "into the same broker. --kafka and stdout MB/s as each run's --stats gives it (bytes of values acknowledged, or of lines the reader",
        'took, from start-up to the last); the wall columns divide the bytes by the time from spawn to exit, start-up and kcat\'s last',
        'delivery included. Goal: --kafka / stdout >= 0.8 for the random payload.',
      ],
    );
  } finally {
    if (typeof broker !== 'string') broker.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

/** First line of a command's output, or undefined if it fails. */
function firstLine(command: string, args: readonly string[]): string | undefined {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8' });
  return result.status === 0 ? result.stdout.split('\n')[0] : undefined;
}

function header(): void {
  const model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const revision = firstLine('git', ['rev-parse', '--short', 'HEAD']);
  const modified = firstLine('git', ['status', '--porcelain', '--', 'generate.ts']);
  process.stdout.write([
    `# generate.ts benchmark${QUICK ? ' (quick)' : ''}`,
    '',
    `- date: ${new Date().toISOString()}`,
    `- node: ${process.version}, for this script and every run (the generator through tsx)`,
    `- machine: ${availableParallelism()} cores, ${model}; load average at start ${loadavg().map((load) => load.toFixed(2)).join(' ')}`,
    `- revision: ${revision ?? 'unknown'}${modified ? ', generate.ts modified' : ''}`,
    `- pairs: ${PAIRS}; MB = 10^6 bytes, MiB = 2^20 bytes; every generator run has \`${FIXED_FLAGS.join(' ')}\``,
    '',
  ].join('\n'));
}

const startedMs = performance.now();
header();
note('warm-up (tsx compiles generate.ts once)');
intoDevNull(generator(['--count', '1']));
if (!options.kafka) {
  throughput();
  interleavingCost();
  pacing();
  consumerRatio();
  compressionPerByte();
  memoryByCount();
  memoryInFlight();
  realism();
}
kafkaThroughput();
process.stdout.write(`\nBench took ${((performance.now() - startedMs) / 60000).toFixed(1)} min; load average at the end ${loadavg().map((load) => load.toFixed(2)).join(' ')}.\n`);
