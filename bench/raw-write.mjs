// The baseline of npm run bench: plain node (no tsx, nothing of generate.ts
// loaded) writing BYTES bytes of a prebuilt 1 MiB block to stdout, the way
// generate.ts writes its output, so the bench can compare the generator with
// what node itself can push through the same kind of pipe.
//
//   node bench/raw-write.mjs BYTES | reader
//
// What mirrors generate.ts (section 7, "Output"), and must follow it if it
// changes: makeStdioBlocking() as it is there, then LineWriter's writes:
// blocks of BLOCK_BYTES, each written with fs.write from node's thread pool,
// one write in flight at a time, a short write continued where it stopped.
// (LineWriter fills the next block while one is written; a prebuilt block has
// nothing to fill.) The block is lines of 32 KiB, about the length of the
// generator's lines in its default mode, so a line-counting reader does the
// same work for both.
import { write } from 'node:fs';

const BLOCK_BYTES = 1 << 20;
const LINE_BYTES = 1 << 15;

const total = Number(process.argv[2]);
if (!Number.isSafeInteger(total) || total < 1) {
  process.stderr.write('usage: node bench/raw-write.mjs BYTES\n');
  process.exit(2);
}

const block = Buffer.alloc(BLOCK_BYTES, 'x');
for (let end = LINE_BYTES - 1; end < BLOCK_BYTES; end += LINE_BYTES) block[end] = 0x0a;

// As generate.ts's makeStdioBlocking: node's stream for a pipe sets the
// descriptor non-blocking; thread-pool writes need it blocking.
for (const stream of [process.stdout, process.stderr]) stream._handle?.setBlocking?.(true);

/** fs.write as a promise of the number of bytes written, as LineWriter.writeAll awaits it. */
const writeToStdout = (bytes, offset, length) =>
  new Promise((resolve, reject) => write(1, bytes, offset, length, null, (error, count) => (error ? reject(error) : resolve(count))));

for (let left = total; left > 0; ) {
  const length = Math.min(BLOCK_BYTES, left);
  for (let written = 0; written < length; ) written += await writeToStdout(block, written, length - written);
  left -= length;
}
