// Preloaded into every generator run of bench.ts
// (`node --import tsx --import ./bench/report-rss.ts generate.ts ...`): as
// the process exits, reports its peak resident memory on stderr, so the
// generator runs unmodified. getrusage's maxRSS is in KiB (1024 bytes).
process.on('exit', () => {
  process.stderr.write(`\nbench-peak-rss-kib ${process.resourceUsage().maxRSS}\n`);
});
