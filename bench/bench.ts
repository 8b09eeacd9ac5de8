// npm run bench: how fast the generator writes, as a ratio to how fast node
// itself can write to the same kind of pipe in the same run (these machines
// are shared and noisy, so absolute figures alone mean little).
//
// Every case runs as a shell pipeline into `wc -c` (a reader as fast as cat
// that also counts), REPEAT times; the median wall time counts, start-up
// included. Peak RSS is reported by the process itself via report-rss.ts.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const root = fileURLToPath(new URL('..', import.meta.url));
const START = '--start 2024-01-01T00:00:00Z';
const NODE = `node --import tsx --import ./bench/report-rss.ts`;

interface Run {
  seconds: number;
  bytes: number;
  lines: number;
  peakRssMb: number;
}

/** Runs `command | wc -lc` (or `> /dev/null`) and returns what it measured. */
function run(command: string, sink: 'pipe' | 'devnull'): Run {
  const shell = sink === 'pipe' ? `${command} | wc -lc` : `${command} > /dev/null`;
  const started = process.hrtime.bigint();
  const result = spawnSync('sh', ['-c', shell], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`${shell} failed: ${result.stderr}`);
  const [lines = 0, bytes = 0] = sink === 'pipe' ? result.stdout.trim().split(/\s+/).map(Number) : [];
  const rss = /bench-peak-rss-kb (\d+)/.exec(result.stderr);
  return { seconds, bytes, lines, peakRssMb: rss ? Number(rss[1]) / 1024 : NaN };
}

/** The run with the median wall time of REPEAT. */
function median(command: string, sink: 'pipe' | 'devnull'): Run {
  const runs = Array.from({ length: REPEAT }, () => run(command, sink)).sort((a, b) => a.seconds - b.seconds);
  return runs[Math.floor(runs.length / 2)]!;
}

const mbps = (bytes: number, seconds: number) => bytes / 1e6 / seconds;
const fmt = (value: number, digits = 0) => value.toFixed(digits).padStart(7);

const generator = (flags: string) => `${NODE} generate.ts ${START} ${flags}`;
const defaults = median(generator('--count 2000'), 'pipe');
const rawStream = median(`${NODE} bench/raw-write.ts stream ${defaults.bytes}`, 'pipe');
const rawPool = median(`${NODE} bench/raw-write.ts pool ${defaults.bytes}`, 'pipe');
const raw = Math.max(mbps(rawStream.bytes, rawStream.seconds), mbps(rawPool.bytes, rawPool.seconds));
const toDevNull = median(generator('--count 2000'), 'devnull');
const big = run(generator('--count 3000'), 'devnull');
// Real rrweb events cost far more a byte (recording, compression); fewer sessions still run for seconds.
const rrweb = median(generator('--payload rrweb --count 500'), 'pipe');
const items = median(generator('--format snapshot-items --count 500'), 'pipe');

/** How close --rate gets: messages over the time from the first to the last, as a reader sees them. */
async function achievedRate(rate: number, messages: number): Promise<number> {
  const child = spawn('node', ['--import', 'tsx', 'generate.ts', ...START.split(' '), '--rate', String(rate), '--count', '1000000'], { cwd: root });
  const arrivals: number[] = [];
  child.stdout.on('data', (data: Buffer) => {
    for (let at = data.indexOf(10); at !== -1; at = data.indexOf(10, at + 1)) arrivals.push(performance.now());
    if (arrivals.length >= messages) child.kill();
  });
  await once(child, 'close');
  return (messages - 1) / ((arrivals[messages - 1]! - arrivals[0]!) / 1000);
}
const rates = [];
for (const [rate, messages] of [[100, 300], [1000, 3000], [10000, 20000]] as const) rates.push({ rate, achieved: await achievedRate(rate, messages) });

const line = (label: string, result: Run) =>
  `${label.padEnd(38)}${fmt(mbps(result.bytes, result.seconds))} MB/s ${fmt(result.lines / result.seconds)} messages/s  ` +
  `${(result.bytes / 1e9).toFixed(2)} GB in ${result.seconds.toFixed(2)} s, peak RSS ${result.peakRssMb.toFixed(0)} MB`;
console.log(`generate.ts benchmark, median of ${REPEAT} runs, start-up included (${new Date().toISOString()})`);
console.log(`raw node pipe write, process.stdout     ${fmt(mbps(rawStream.bytes, rawStream.seconds))} MB/s`);
console.log(`raw node pipe write, fs.write (pool)    ${fmt(mbps(rawPool.bytes, rawPool.seconds))} MB/s`);
console.log(line('defaults --count 2000 | wc', defaults));
console.log(`  ratio to the faster raw pipe write     ${fmt(mbps(defaults.bytes, defaults.seconds) / raw, 2)}  (target >= 0.6)`);
console.log(`defaults --count 2000 > /dev/null       ${fmt(mbps(defaults.bytes, toDevNull.seconds))} MB/s  (target >= 1000)`);
console.log(`peak RSS, --count 3000 > /dev/null      ${fmt(big.peakRssMb)} MB  (target < 150)`);
console.log(line('--payload rrweb --count 500 | wc', rrweb) + '  (target >= 100 MB/s)');
console.log(line('--format snapshot-items --count 500', items));
for (const { rate, achieved } of rates) {
  console.log(`--rate ${String(rate).padEnd(6)} achieved ${fmt(achieved, 1)} messages/s (${fmt((100 * achieved) / rate, 1)}% of the rate asked)`);
}
