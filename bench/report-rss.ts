// Preloaded into the generator by bench.ts (`node --import ./bench/report-rss.ts`):
// reports the process's peak resident memory on stderr as it exits, so the
// generator runs unmodified.
process.on('exit', () => {
  process.stderr.write(`\nbench-peak-rss-kb ${process.resourceUsage().maxRSS}\n`);
});
