// The baseline: node writing one prebuilt 1 MiB buffer to stdout in a loop,
// `bytes` in all. Run by bench.ts in the same pipeline as the generator.
import { write } from 'node:fs';
import { makeStdioBlocking } from '../generate.ts';

const [method, bytesArgument] = process.argv.slice(2);
const total = Number(bytesArgument);
const buffer = Buffer.alloc(1 << 20, 'A');
let written = 0;

/** process.stdout.write, waiting for 'drain' when it asks to. */
function viaStream(): void {
  while (written < total) {
    const size = Math.min(buffer.length, total - written);
    written += size;
    if (!process.stdout.write(buffer.subarray(0, size))) {
      process.stdout.once('drain', viaStream);
      return;
    }
  }
}

/** fs.write from the thread pool, as the generator writes. */
function viaThreadPool(): void {
  if (written >= total) return;
  write(1, buffer, 0, Math.min(buffer.length, total - written), null, (error, bytes) => {
    if (error) throw error;
    written += bytes;
    viaThreadPool();
  });
}

if (method === 'stream') viaStream();
else {
  makeStdioBlocking();
  viaThreadPool();
}
