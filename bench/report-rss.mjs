// Preloaded into every generator run of bench.ts (NODE_OPTIONS=--import
// bench/report-rss.mjs, in tsx's own process too, which stays quiet): as the
// generator's process exits, reports its peak resident memory on stderr, so
// the generator runs unmodified. getrusage's maxRSS is in KiB (1024 bytes).
if (process.argv[1]?.endsWith('generate.ts')) {
  process.on('exit', () => {
    process.stderr.write(`\nbench-peak-rss-kib ${process.resourceUsage().maxRSS}\n`);
  });
}
