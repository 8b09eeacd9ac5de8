// Preloaded into every generator run of bench.ts (NODE_OPTIONS=--import
// bench/report-rss.ts, so tsx's own process and its node alike): as the
// generator's process exits, reports its peak resident memory on stderr, so
// the generator runs unmodified. getrusage's maxRSS is in KiB (1024 bytes).
if (process.argv.slice(1).some((arg) => arg.endsWith('generate.ts'))) {
  process.on('exit', () => {
    process.stderr.write(`\nbench-peak-rss-kib ${process.resourceUsage().maxRSS}\n`);
  });
}
