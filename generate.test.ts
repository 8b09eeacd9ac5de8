// The promises of generate.ts, as properties (fast-check) and command-line
// checks (node's test runner). Run with `npm test`.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  EventType,
  FLAGS,
  IncrementalSource,
  NodeType,
  type Config,
  type Distribution,
  generateSession,
  isoString,
  parseFlags,
  planSnapshots,
  randomPayload,
  renderLine,
  UsageError,
} from './generate.ts';

const START = '2024-01-01T00:00:00Z';
const ROOT = fileURLToPath(new URL('.', import.meta.url));
/** fast-check's seed: every property sees the same cases on every run. */
const SEED = 20261128;

/** A Config from flags, with a fixed --start so output is reproducible. */
function configFrom(args: string[]): Config {
  const config = parseFlags(['--start', START, ...args]);
  assert.notEqual(config, 'help');
  return config as Config;
}

/** Session `index` as the lines main would print, without their newlines. */
function sessionLines(config: Config, index: number): string[] {
  return [...generateSession(config, index).messages].map((message) => renderLine(config, message).toString('utf8').slice(0, -1));
}

/** The value part of a line: after the key and tab when --key is on. */
const valueOf = (config: Config, line: string) => (config.key ? line.slice(line.indexOf('\t') + 1) : line);

interface SnapshotMessage {
  uuid: string;
  distinct_id: string;
  now: string;
  sent_at: string;
  team_id: number | null;
  token: string | null;
  event: string;
  sessionId: string;
  windowId: string;
  chunkId: string;
  chunkIndex: number;
  chunkCount: number;
  data: string;
  compression: string;
  hasFullSnapshot: boolean;
}

/** Parses a format-1 value the way PostHog's consumer does: the envelope, then `data`. */
function parseSnapshotMessage(value: string): SnapshotMessage {
  const envelope = JSON.parse(value);
  const event = JSON.parse(envelope.data);
  const snapshot = event.properties.$snapshot_data;
  return {
    ...envelope,
    event: event.event,
    sessionId: event.properties.$session_id,
    windowId: event.properties.$window_id,
    chunkId: snapshot.chunk_id,
    chunkIndex: snapshot.chunk_index,
    chunkCount: snapshot.chunk_count,
    data: snapshot.data,
    compression: snapshot.compression,
    hasFullSnapshot: snapshot.has_full_snapshot,
  };
}

/** Groups a session's messages by chunk_id, in order of first appearance, as PostHog reassembles them. */
function reassemble(messages: SnapshotMessage[]): { data: string; hasFullSnapshot: boolean; indexes: number[]; first: SnapshotMessage }[] {
  const groups = new Map<string, SnapshotMessage[]>();
  for (const message of messages) groups.set(message.chunkId, [...(groups.get(message.chunkId) ?? []), message]);
  return [...groups.values()].map((chunks) => {
    assert.ok(chunks.every((chunk) => chunk.chunkCount === chunks.length), 'chunk_count is the number of chunks');
    assert.ok(chunks.every((chunk) => chunk.hasFullSnapshot === chunks[0]!.hasFullSnapshot), 'chunks agree on has_full_snapshot');
    const ordered = [...chunks].sort((a, b) => a.chunkIndex - b.chunkIndex);
    return {
      data: ordered.map((chunk) => chunk.data).join(''),
      hasFullSnapshot: chunks[0]!.hasFullSnapshot,
      indexes: ordered.map((chunk) => chunk.chunkIndex),
      first: ordered[0]!,
    };
  });
}

/** Small but varied flag sets: every size and count flag, chunking, ids, key. */
const flagSets = fc
  .record({
    fullCountMean: fc.double({ min: 1, max: 4, noNaN: true }),
    fullCountSd: fc.double({ min: 0, max: 4, noNaN: true }),
    incrementalCountMean: fc.double({ min: 0.1, max: 12, noNaN: true }),
    incrementalCountSd: fc.double({ min: 0, max: 30, noNaN: true }),
    fullSizeMean: fc.integer({ min: 1, max: 6000 }),
    fullSizeSd: fc.integer({ min: 0, max: 6000 }),
    incrementalSizeMean: fc.integer({ min: 1, max: 2000 }),
    incrementalSizeSd: fc.integer({ min: 0, max: 4000 }),
    chunkSize: fc.integer({ min: 40, max: 3000 }),
    spareBytes: fc.integer({ min: 0, max: 2000 }),
    seed: fc.integer(),
    teamId: fc.option(fc.nat()),
    token: fc.option(fc.string({ maxLength: 30 })),
    key: fc.boolean(),
  })
  .map((flags) => {
    const args = [
      '--full-snapshot-count-mean', String(flags.fullCountMean),
      '--full-snapshot-count-standard-deviation', String(flags.fullCountSd),
      '--incremental-snapshot-count-mean', String(flags.incrementalCountMean),
      '--incremental-snapshot-count-standard-deviation', String(flags.incrementalCountSd),
      '--full-snapshot-size-mean', String(flags.fullSizeMean),
      '--full-snapshot-size-standard-deviation', String(flags.fullSizeSd),
      '--incremental-snapshot-size-mean', String(flags.incrementalSizeMean),
      '--incremental-snapshot-size-standard-deviation', String(flags.incrementalSizeSd),
      '--chunk-size', String(flags.chunkSize),
      // Envelopes take under 900 bytes with a 30-character token; the spare bytes vary how tight the limit is.
      '--max-message-bytes', String(flags.chunkSize + 900 + flags.spareBytes),
      `--seed-value=${flags.seed}`,
      ...(flags.teamId === null ? [] : ['--team-id', String(flags.teamId)]),
      ...(flags.token === null ? [] : [`--token=${flags.token}`]),
      ...(flags.key ? ['--key'] : []),
    ];
    return { args, config: configFrom(args) };
  });

const sessionIndexes = fc.integer({ min: 0, max: 1_000_000 });

describe('messages', () => {
  it('parse as SPEC format 1: envelope keys in order, $ properties, canonical JSON', () => {
    fc.assert(
      fc.property(flagSets, sessionIndexes, ({ config }, index) => {
        for (const line of sessionLines(config, index)) {
          const value = valueOf(config, line);
          const envelope = JSON.parse(value);
          assert.deepEqual(Object.keys(envelope), ['uuid', 'distinct_id', 'ip', 'site_url', 'data', 'team_id', 'now', 'sent_at', 'token']);
          const event = JSON.parse(envelope.data);
          assert.deepEqual(Object.keys(event), ['event', 'properties']);
          assert.equal(event.event, '$snapshot');
          assert.deepEqual(Object.keys(event.properties), ['distinct_id', '$session_id', '$window_id', '$snapshot_data']);
          assert.deepEqual(Object.keys(event.properties.$snapshot_data), [
            'chunk_id', 'chunk_index', 'chunk_count', 'data', 'compression', 'has_full_snapshot',
          ]);
          assert.equal(event.properties.$snapshot_data.compression, 'gzip-base64');
          assert.equal(event.properties.distinct_id, envelope.distinct_id);
          assert.equal(envelope.team_id, config.teamId);
          assert.equal(envelope.token, config.token);
          // Byte for byte what JSON.stringify writes for the same content: nothing hand-assembled leaks through.
          assert.equal(value, JSON.stringify({ ...envelope, data: JSON.stringify(event) }));
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('each fit --max-message-bytes, and --key prefixes the $session_id and a tab', () => {
    fc.assert(
      fc.property(flagSets, sessionIndexes, ({ config }, index) => {
        for (const line of sessionLines(config, index)) {
          const value = valueOf(config, line);
          assert.ok(Buffer.byteLength(value) <= config.maxMessageBytes, `${Buffer.byteLength(value)} > ${config.maxMessageBytes}`);
          assert.ok(!value.includes('\n'));
          if (config.key) assert.equal(line.slice(0, line.indexOf('\t')), parseSnapshotMessage(value).sessionId);
          else assert.ok(!line.includes('\t'));
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('give every message its own v4 uuid and every session its own ids, with a window id that is not the session id', () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    fc.assert(
      fc.property(flagSets, sessionIndexes, ({ config }, index) => {
        const messages = [0, 1].flatMap((offset) => sessionLines(config, index + offset).map((line) => parseSnapshotMessage(valueOf(config, line))));
        for (const message of messages) {
          for (const id of [message.uuid, message.sessionId, message.windowId, message.chunkId, message.distinct_id]) assert.match(id, uuid);
          assert.notEqual(message.windowId, message.sessionId);
        }
        assert.equal(new Set(messages.map((message) => message.uuid)).size, messages.length);
        assert.equal(new Set(messages.map((message) => message.sessionId)).size, 2);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it('move forward in time from --start: sent_at before now, both non-decreasing through a session', () => {
    fc.assert(
      fc.property(flagSets, fc.integer({ min: 0, max: 1000 }), ({ config }, index) => {
        let previous = config.startMs;
        for (const line of sessionLines(config, index)) {
          const { now, sent_at } = parseSnapshotMessage(valueOf(config, line));
          assert.match(now, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
          assert.ok(Date.parse(sent_at) >= previous && Date.parse(now) >= Date.parse(sent_at));
          previous = Date.parse(sent_at);
        }
      }),
      { seed: SEED, numRuns: 40 },
    );
  });
});

describe('isoString', () => {
  it('writes what Date#toISOString writes, for any millisecond from 1970 to 9999', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Date.UTC(9999, 0, 1) - 1 }), fc.integer({ min: 0, max: 1_000_000 }), (ms, later) => {
        assert.equal(isoString(ms), new Date(ms).toISOString());
        assert.equal(isoString(ms + later), new Date(ms + later).toISOString());
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

describe('chunks', () => {
  it('regroup by chunk_id into exactly the planned snapshots: indexes 0..count-1, planned sizes and kinds, the planned data', () => {
    fc.assert(
      fc.property(flagSets, sessionIndexes, ({ config }, index) => {
        const plan = planSnapshots(config, index);
        const messages = sessionLines(config, index).map((line) => parseSnapshotMessage(valueOf(config, line)));
        const snapshots = reassemble(messages);
        // The data each snapshot should carry: consecutive stretches of the session's payload text.
        const payload = randomPayload(config, index);
        const planned = plan.map(({ size }) => {
          const text = Buffer.alloc(size);
          payload.writeNext(text, 0, size);
          return text.toString('latin1');
        });
        assert.equal(snapshots.length, plan.length);
        snapshots.forEach((snapshot, at) => {
          assert.deepEqual(snapshot.indexes, [...Array(snapshot.indexes.length).keys()]);
          assert.equal(snapshot.hasFullSnapshot, plan[at]!.kind === 'full');
          assert.equal(snapshot.data.length, plan[at]!.size);
          assert.equal(snapshot.data, planned[at]);
          assert.match(snapshot.data, /^[A-Za-z0-9+/]*$/);
        });
        for (const message of messages) assert.ok(message.data.length <= config.chunkSize);
      }),
      { seed: SEED, numRuns: 60 },
    );
  });
});

describe('plans', () => {
  it('start with a full snapshot and keep counts and sizes in bounds', () => {
    fc.assert(
      fc.property(flagSets, sessionIndexes, ({ config }, index) => {
        const plan = planSnapshots(config, index);
        assert.equal(plan[0]!.kind, 'full');
        for (const snapshot of plan) assert.ok(Number.isInteger(snapshot.size) && snapshot.size >= 1);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('place later full snapshots among the incrementals, not all first', () => {
    const config = configFrom([]);
    let fullAfterIncremental = 0;
    for (let index = 0; index < 500; index++) {
      const kinds = planSnapshots(config, index).map((snapshot) => snapshot.kind).join(' ');
      if (/incremental.* full/.test(kinds)) fullAfterIncremental++;
    }
    assert.ok(fullAfterIncremental > 50, `${fullAfterIncremental} of 500 sessions have a full snapshot after an incremental one`);
  });
});

describe('determinism', () => {
  it('the same flags and --start give the same bytes; another seed gives other bytes', () => {
    fc.assert(
      fc.property(flagSets, sessionIndexes, ({ args, config }, index) => {
        const again = configFrom(args);
        assert.deepEqual(sessionLines(again, index), sessionLines(config, index));
        const reseeded = { ...config, seed: config.seed + 1 };
        assert.notDeepEqual(sessionLines(reseeded, index), sessionLines(config, index));
      }),
      { seed: SEED, numRuns: 30 },
    );
  });

  it('session i does not depend on how many sessions the run has', () => {
    const few = configFrom(['--count', '3', '--incremental-snapshot-count-mean', '3']);
    const many = configFrom(['--count', '300', '--incremental-snapshot-count-mean', '3']);
    assert.deepEqual(sessionLines(few, 2), sessionLines(many, 2));
  });
});

// --- rrweb: real recordings, the snapshot-items format, windows --------------

/** What rrweb writes: an event with a type, data and a timestamp. */
interface RecordedEvent {
  type: number;
  data: Record<string, any>;
  timestamp: number;
}

/**
 * Replays one window's events as rrweb's player would, asserting each refers
 * only to nodes that exist at that moment; a FullSnapshot (after its Meta)
 * starts a new page.
 */
class WindowReplay {
  /** Node id to parent id (0 for the document). */
  private readonly parents = new Map<number, number>();
  private expectFullSnapshot = false;
  started = false;

  apply(event: RecordedEvent): void {
    assert.ok(Number.isInteger(event.timestamp) && event.timestamp > 0, 'every event has a positive timestamp');
    if (this.expectFullSnapshot) assert.equal(event.type, EventType.FullSnapshot, 'a Meta event is followed by a FullSnapshot');
    this.expectFullSnapshot = event.type === EventType.Meta;
    if (event.type === EventType.Meta) {
      assert.ok(event.data.href && event.data.width > 0 && event.data.height > 0);
    } else if (event.type === EventType.FullSnapshot) {
      this.parents.clear();
      this.add(event.data.node, 0);
      assert.equal(event.data.node.type, NodeType.Document);
      this.started = true;
    } else {
      assert.equal(event.type, EventType.IncrementalSnapshot, `event type ${event.type} is one rrweb writes`);
      assert.ok(this.started, "a window's first snapshot is full");
      this.incremental(event.data);
    }
  }

  private add(node: Record<string, any>, parentId: number): void {
    assert.ok(Number.isInteger(node.id) && !this.parents.has(node.id), `node id ${node.id} is new`);
    assert.ok([NodeType.Document, NodeType.DocumentType, NodeType.Element, NodeType.Text].includes(node.type));
    if (node.type === NodeType.Element) assert.equal(typeof node.tagName, 'string');
    this.parents.set(node.id, parentId);
    for (const child of node.childNodes ?? []) this.add(child, node.id);
  }

  private remove(id: number): void {
    this.parents.delete(id);
    for (const [child, parent] of [...this.parents]) if (parent === id) this.remove(child);
  }

  private exists(id: number, what: string): void {
    assert.ok(this.parents.has(id), `${what} refers to node ${id}, which exists`);
  }

  private incremental(data: Record<string, any>): void {
    switch (data.source) {
      case IncrementalSource.Mutation:
        // rrweb applies removes, then adds, then text and attribute changes.
        for (const { parentId, id } of data.removes) {
          this.exists(id, 'a remove');
          assert.equal(this.parents.get(id), parentId, 'a remove names the parent');
          this.remove(id);
        }
        for (const { parentId, node } of data.adds) {
          this.exists(parentId, 'an add');
          this.add(node, parentId);
        }
        for (const { id } of data.texts) this.exists(id, 'a text change');
        for (const { id } of data.attributes) this.exists(id, 'an attribute change');
        break;
      case IncrementalSource.MouseMove:
        assert.ok(data.positions.length > 0);
        for (const { id } of data.positions) this.exists(id, 'a mouse move');
        break;
      case IncrementalSource.MouseInteraction:
      case IncrementalSource.Scroll:
      case IncrementalSource.Input:
        this.exists(data.id, `source ${data.source}`);
        break;
      case IncrementalSource.ViewportResize:
        assert.ok(data.width > 0 && data.height > 0);
        break;
      default:
        assert.fail(`incremental source ${data.source} is one rrweb writes`);
    }
  }
}

/** Decodes `gzip-base64` snapshot data as PostHog's reader does: base64, gunzip, UTF-16 with BOM, JSON. */
function decodeSnapshotData(data: string): RecordedEvent[] {
  const bytes = gunzipSync(Buffer.from(data, 'base64'));
  assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xfe], 'UTF-16LE with a byte-order mark');
  return JSON.parse(bytes.subarray(2).toString('utf16le'));
}

/** Small rrweb-sized flag sets: sizes from 1 kB, several windows, chunking. */
const rrwebFlagSets = fc
  .record({
    fullSizeMean: fc.integer({ min: 2000, max: 60000 }),
    incrementalSizeMean: fc.integer({ min: 1000, max: 12000 }),
    windowMean: fc.double({ min: 1, max: 3, noNaN: true }),
    chunkSize: fc.integer({ min: 2000, max: 50000 }),
    seed: fc.integer(),
  })
  .map((flags) => configFrom([
    '--payload', 'rrweb',
    '--full-snapshot-count-mean', '2', '--full-snapshot-count-standard-deviation', '1',
    '--incremental-snapshot-count-mean', '6', '--incremental-snapshot-count-standard-deviation', '4',
    '--full-snapshot-size-mean', String(flags.fullSizeMean), '--full-snapshot-size-standard-deviation', String(flags.fullSizeMean / 2),
    '--incremental-snapshot-size-mean', String(flags.incrementalSizeMean),
    '--incremental-snapshot-size-standard-deviation', String(flags.incrementalSizeMean),
    '--window-count-mean', String(flags.windowMean), '--window-count-standard-deviation', '1',
    '--chunk-size', String(flags.chunkSize), `--seed-value=${flags.seed}`,
  ]));

describe('--payload rrweb', () => {
  it("decodes, chunks regrouped, to valid rrweb events of each window's page, sized within 5% of the plan", () => {
    fc.assert(
      fc.property(rrwebFlagSets, fc.integer({ min: 0, max: 10_000 }), (config, index) => {
        const plan = planSnapshots(config, index);
        const messages = sessionLines(config, index).map((line) => parseSnapshotMessage(line));
        const snapshots = reassemble(messages);
        assert.equal(snapshots.length, plan.length);
        const windows = new Map<string, WindowReplay>();
        snapshots.forEach((snapshot, at) => {
          const planned = plan[at]!;
          if (planned.size >= 1000) assert.ok(Math.abs(snapshot.data.length / planned.size - 1) <= 0.05, `${snapshot.data.length} chars for ${planned.size} planned`);
          const events = decodeSnapshotData(snapshot.data);
          const full = events.some((event) => event.type === EventType.FullSnapshot);
          assert.equal(full, planned.kind === 'full');
          assert.equal(snapshot.hasFullSnapshot, full);
          if (full) assert.deepEqual(events.slice(0, 2).map((event) => event.type), [EventType.Meta, EventType.FullSnapshot]);
          const { windowId, sent_at } = snapshot.first;
          const replay = windows.get(windowId) ?? new WindowReplay();
          windows.set(windowId, replay);
          let previous = 0;
          for (const event of events) {
            replay.apply(event);
            assert.ok(event.timestamp >= previous, 'timestamps increase through a batch');
            assert.ok(event.timestamp <= Date.parse(sent_at), 'no event is later than the batch was sent');
            assert.ok(event.timestamp >= planned.firstEventMs, 'no event is earlier than the previous batch was sent');
            previous = event.timestamp;
          }
        });
      }),
      { seed: SEED, numRuns: 25 },
    );
  });

  it('gives the same bytes for the same flags, and other bytes for another seed', () => {
    fc.assert(
      fc.property(rrwebFlagSets, fc.integer({ min: 0, max: 10_000 }), (config, index) => {
        assert.deepEqual(sessionLines({ ...config }, index), sessionLines(config, index));
        assert.notDeepEqual(sessionLines({ ...config, seed: config.seed + 1 }, index), sessionLines(config, index));
      }),
      { seed: SEED, numRuns: 10 },
    );
  });
});

describe('windows', () => {
  it('each start with a full snapshot, have their own ids, and interleave', () => {
    const config = configFrom(['--window-count-mean', '3', '--window-count-standard-deviation', '2', '--incremental-snapshot-count-mean', '20']);
    let interleaved = 0;
    for (let index = 0; index < 300; index++) {
      const plan = planSnapshots(config, index);
      const { session } = generateSession(config, index);
      const windows = 1 + Math.max(...plan.map((snapshot) => snapshot.window));
      assert.equal(new Set([...session.windowIds, session.sessionId]).size, windows + 1, 'window ids are distinct and not the session id');
      for (let window = 0; window < windows; window++) {
        assert.equal(plan.find((snapshot) => snapshot.window === window)!.kind, 'full');
      }
      const order = plan.map((snapshot) => snapshot.window).join(',');
      if (/(\d),(?!\1)\d.*,\1(,|$)/.test(order)) interleaved++;
    }
    assert.ok(interleaved > 100, `${interleaved} of 300 sessions switch back to a window after another`);
  });

  it('number what --window-count-mean asks for, one by default', () => {
    const count = (args: string[]) => {
      const config = configFrom([...args, '--incremental-snapshot-count-mean', '1']);
      const windows = Array.from({ length: SESSIONS / 4 }, (_, index) => 1 + Math.max(...planSnapshots(config, index).map((snapshot) => snapshot.window)));
      return { windows, config };
    };
    assert.ok(count([]).windows.every((windows) => windows === 1));
    const { windows, config } = count(['--window-count-mean', '2.5', '--window-count-standard-deviation', '1.5']);
    assertMatchesFlags(windows, config.windowCount, 1, true, 'windows per session');
  });
});

/** The checks PostHog's current parser makes of a session_recording_snapshot_item_events value. */
function parseItemsMessage(value: string) {
  const envelope = JSON.parse(value);
  assert.deepEqual(Object.keys(envelope), ['uuid', 'distinct_id', 'ip', 'site_url', 'data', 'team_id', 'now', 'sent_at', 'token']);
  const event = JSON.parse(envelope.data);
  assert.equal(event.event, '$snapshot_items');
  assert.deepEqual(Object.keys(event.properties), ['distinct_id', '$session_id', '$window_id', '$snapshot_source', '$lib', '$snapshot_items']);
  const { $session_id: sessionId, $snapshot_items: items, $snapshot_source: source, $lib: lib } = event.properties;
  assert.match(sessionId, /^[A-Za-z0-9-]{1,70}$/, 'a session id capture accepts');
  assert.equal(source, 'web');
  assert.equal(lib, 'web');
  assert.ok(Array.isArray(items) && items.length > 0, '$snapshot_items is a non-empty list');
  for (const item of items) assert.ok(item.timestamp > 0);
  return { envelope, windowId: event.properties.$window_id as string, items: items as RecordedEvent[] };
}

describe('--format snapshot-items', () => {
  const itemsFlagSets = fc
    .record({ maxMessageBytes: fc.integer({ min: 10_000, max: 200_000 }), seed: fc.integer(), windowMean: fc.double({ min: 1, max: 2.5, noNaN: true }) })
    .map((flags) => configFrom([
      '--format', 'snapshot-items', '--max-message-bytes', String(flags.maxMessageBytes), `--seed-value=${flags.seed}`,
      '--full-snapshot-size-mean', '60000', '--full-snapshot-size-standard-deviation', '60000',
      '--incremental-snapshot-count-mean', '8', '--incremental-snapshot-size-mean', '5000',
      '--window-count-mean', String(flags.windowMean), '--window-count-standard-deviation', '1',
    ]));

  it('lines pass PostHog\'s parser, fit the limit, carry valid events of each window, as much JSON as planned', () => {
    fc.assert(
      fc.property(itemsFlagSets, fc.integer({ min: 0, max: 10_000 }), (config, index) => {
        const plan = planSnapshots(config, index);
        const { session } = generateSession(config, index);
        const windows = new Map<string, WindowReplay>();
        let planned = 0;
        let carried = 0;
        for (const line of sessionLines(config, index)) {
          assert.ok(Buffer.byteLength(line) <= config.maxMessageBytes);
          const { envelope, windowId, items } = parseItemsMessage(line);
          assert.equal(JSON.parse(envelope.data).properties.$session_id, session.sessionId);
          const replay = windows.get(windowId) ?? new WindowReplay();
          windows.set(windowId, replay);
          for (const item of items) {
            replay.apply(item);
            assert.ok(item.timestamp <= Date.parse(envelope.sent_at));
            carried += JSON.stringify(item).length;
          }
        }
        for (const snapshot of plan) planned += snapshot.size;
        assert.ok(Math.abs(carried / planned - 1) <= 0.05, `${carried} characters of events for ${planned} planned`);
        assert.equal(windows.size, 1 + Math.max(...plan.map((snapshot) => snapshot.window)));
      }),
      { seed: SEED, numRuns: 25 },
    );
  });

  it('spreads a snapshot too large for one message over several, at event boundaries', () => {
    const config = configFrom(['--format', 'snapshot-items', '--max-message-bytes', '20000', '--full-snapshot-size-mean', '100000', '--incremental-snapshot-count-mean', '2']);
    const lines = sessionLines(config, 0);
    const plan = planSnapshots(config, 0);
    assert.ok(lines.length > plan.length, `${lines.length} messages for ${plan.length} snapshots`);
    for (const line of lines) assert.ok(Buffer.byteLength(line) <= 20_000);
  });

  it('gives the same bytes for the same flags', () => {
    const config = configFrom(['--format', 'snapshot-items', '--count', '2']);
    assert.deepEqual(sessionLines({ ...config }, 1), sessionLines(config, 1));
  });
});

// --- Running it: shards, rate, progress and stats, vegeta targets -------------

/** Flags for small, quick runs of the command line. */
const SMALL = ['--start', START, '--full-snapshot-size-mean', '3000', '--incremental-snapshot-size-mean', '500', '--incremental-snapshot-count-mean', '5'];

describe('--shard', () => {
  it('the N shards together are exactly the lines of the run without --shard', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 7 }), fc.constantFrom('snapshot', 'snapshot-items'), (shards, seed, count, format) => {
        const args = [...SMALL, '--count', String(count), '--seed-value', String(seed), '--format', format];
        const whole = cli(args);
        assert.equal(whole.status, 0);
        const parts = Array.from({ length: shards }, (_, index) => cli([...args, '--shard', `${index}/${shards}`]));
        for (const part of parts) assert.equal(part.status, 0);
        const sorted = (text: string) => text.split('\n').filter(Boolean).sort();
        assert.deepEqual(sorted(parts.map((part) => part.stdout).join('')), sorted(whole.stdout));
      }),
      { seed: SEED, numRuns: 5 },
    );
  });
});

describe('--stats and --progress', () => {
  it('leave stdout as it was, and --stats sums up the run in 80 columns', () => {
    const args = [...SMALL, '--count', '12', '--payload', 'rrweb'];
    const plain = cli(args);
    const watched = cli([...args, '--stats', '--progress']);
    assert.equal(watched.status, 0);
    assertSameText(watched.stdout, plain.stdout, 'stdout with --stats and --progress against without');
    const lines = watched.stderr.trimEnd().split('\n');
    assert.match(lines[0]!, /^sessions 12\/12, \d+ messages, [\d.]+ MB, [\d.]+ MB\/s, ETA /, 'the final progress line');
    const config = configFrom(args);
    const planned = { full: 0, incremental: 0 };
    for (let index = 0; index < 12; index++) for (const snapshot of planSnapshots(config, index)) planned[snapshot.kind]++;
    assert.match(watched.stderr, new RegExp(`^sessions 12, messages ${plain.stdout.split('\n').length - 1}, bytes ${Buffer.byteLength(plain.stdout)} `, 'm'));
    for (const kind of ['full', 'incremental'] as const) {
      const row = lines.find((line) => line.trimStart().startsWith(kind))!.trim().split(/\s+/).map(Number);
      assert.equal(row[1], planned[kind], `${kind} snapshots counted`);
      const [, , p50, p90, p99, max] = row as number[];
      assert.ok(p50! <= p90! && p90! <= p99! && p99! <= max!, 'percentiles in order');
    }
    const histogram = lines.slice(lines.findIndex((line) => line.startsWith('histogram')) + 1);
    assert.ok(histogram.length > 3);
    const counted = histogram.reduce((sum, line) => sum + Number(line.trim().split(/\s+/).at(-1)), 0);
    assert.equal(counted, planned.full + planned.incremental, 'the histogram counts every snapshot');
    for (const line of lines) assert.ok(line.length <= 80, `${line.length} columns: ${line}`);
  });
});

describe('--rate', () => {
  it('spaces messages evenly: message k arrives no sooner than k/rate seconds after the run starts, and not all at the end', async () => {
    const rate = 25;
    const started = performance.now();
    const child = spawn(process.execPath, [...CLI, ...SMALL, '--count', '3', '--rate', String(rate)], { cwd: ROOT });
    const arrivals: number[] = [];
    let pending = '';
    child.stdout.on('data', (data: Buffer) => {
      const now = performance.now();
      pending += data.toString();
      const complete = pending.split('\n');
      pending = complete.pop()!;
      for (let line = 0; line < complete.length; line++) arrivals.push(now);
    });
    const [status] = await once(child, 'close');
    assert.equal(status, 0);
    assert.ok(arrivals.length > 5, `${arrivals.length} messages`);
    arrivals.forEach((arrival, k) => assert.ok(arrival - started >= (k * 1000) / rate, `message ${k} at ${(arrival - started).toFixed(0)} ms`));
    const duration = ((arrivals.length - 1) * 1000) / rate;
    assert.ok(arrivals.at(-1)! - started >= duration);
    // Lines held back and released together would arrive in a burst; paced ones span the run.
    assert.ok(arrivals.at(-1)! - arrivals[0]! >= duration / 2, `all ${arrivals.length} within ${(arrivals.at(-1)! - arrivals[0]!).toFixed(0)} ms`);
  });
});

describe('--format vegeta', () => {
  const vegetaConfig = configFrom([...SMALL, '--format', 'vegeta', '--token', 'phc_test', '--window-count-mean', '2', '--window-count-standard-deviation', '1']);

  it('writes targets with only vegeta\'s keys whose bodies decode to posthog-js $snapshot batches of valid events', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), (index) => {
        const plan = planSnapshots(vegetaConfig, index);
        const { session } = generateSession(vegetaConfig, index);
        const targets = sessionLines(vegetaConfig, index).map((line) => JSON.parse(line));
        assert.equal(targets.length, plan.length);
        const windows = new Map<string, WindowReplay>();
        targets.forEach((target, at) => {
          assert.deepEqual(Object.keys(target), ['method', 'url', 'body', 'header']);
          assert.equal(target.method, 'POST');
          assert.equal(target.url, vegetaConfig.captureUrl);
          for (const values of Object.values(target.header)) assert.ok(Array.isArray(values) && values.every((value) => typeof value === 'string'));
          const batch = JSON.parse(gunzipSync(Buffer.from(target.body, 'base64')).toString());
          assert.equal(batch.length, 1);
          const [{ event, properties }] = batch;
          assert.equal(event, '$snapshot');
          assert.deepEqual(Object.keys(properties), ['token', 'distinct_id', '$session_id', '$window_id', '$snapshot_bytes', '$snapshot_data']);
          assert.equal(properties.token, 'phc_test');
          assert.equal(properties.$session_id, session.sessionId);
          const data = JSON.stringify(properties.$snapshot_data);
          assert.equal(properties.$snapshot_bytes, data.length);
          if (plan[at]!.size >= 1000) assert.ok(Math.abs(data.length / plan[at]!.size - 1) <= 0.05);
          const replay = windows.get(properties.$window_id) ?? new WindowReplay();
          windows.set(properties.$window_id, replay);
          for (const recorded of properties.$snapshot_data) replay.apply(recorded);
        });
      }),
      { seed: SEED, numRuns: 15 },
    );
  });

  it('posts, as vegeta would, gzip bodies a server can read', async () => {
    const received: unknown[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks);
        assert.deepEqual([...body.subarray(0, 2)], [0x1f, 0x8b], 'a gzip body');
        received.push({ url: request.url, type: request.headers['content-type'], batch: JSON.parse(gunzipSync(body).toString()) });
        response.end('{"status":1}');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      const result = cli([...SMALL, '--format', 'vegeta', '--count', '1', '--capture-url', `http://127.0.0.1:${port}/s/?compression=gzip-js`]);
      const targets = result.stdout.trim().split('\n').slice(0, 4).map((line) => JSON.parse(line));
      for (const target of targets) {
        const headers = Object.fromEntries(Object.entries(target.header as Record<string, string[]>).map(([name, values]) => [name, values.join(', ')]));
        const response = await fetch(target.url, { method: target.method, headers, body: Buffer.from(target.body, 'base64') });
        assert.equal(response.status, 200);
      }
      assert.equal(received.length, targets.length);
      for (const request of received as { url: string; type: string; batch: { event: string; properties: { $snapshot_data: unknown[] } }[] }[]) {
        assert.equal(request.url, '/s/?compression=gzip-js');
        assert.equal(request.type, 'application/json');
        assert.equal(request.batch[0]!.event, '$snapshot');
        assert.ok(request.batch[0]!.properties.$snapshot_data.length > 0);
      }
    } finally {
      server.close();
    }
  });
});

// --- Statistics: observed means and spreads match the flags -----------------
//
// Tolerances come from the distribution: Z standard errors, with a fixed seed
// so a run never flakes. A log-normal with coefficient of variation c has
// kurtosis w^4 + 2w^3 + 3w^2 - 3 with w = 1 + c^2; the sample variance's
// standard error is variance * sqrt((kurtosis - 1) / n). Rounding counts to
// whole numbers adds between 0 and 1/4 to the variance, and a little to its
// standard error.
const Z = 4.5;
const SESSIONS = 20_000;

function mean(samples: number[]): number {
  return samples.reduce((sum, sample) => sum + sample, 0) / samples.length;
}

function variance(samples: number[]): number {
  const m = mean(samples);
  return samples.reduce((sum, sample) => sum + (sample - m) ** 2, 0) / (samples.length - 1);
}

/**
 * Asserts samples of `minimum + round(log-normal)` have the flags' mean and,
 * with `spread`, their standard deviation.
 */
function assertMatchesFlags(samples: number[], { mean: m, standardDeviation: sd }: Distribution, minimum: number, spread: boolean, what: string) {
  const n = samples.length;
  const roundingVariance = 0.25;
  const meanTolerance = (Z * Math.sqrt(sd ** 2 + roundingVariance)) / Math.sqrt(n);
  assert.ok(Math.abs(mean(samples) - m) <= meanTolerance, `${what}: mean ${mean(samples)} vs ${m} ± ${meanTolerance} over ${n}`);
  if (!spread) return;
  const w = 1 + (sd / (m - minimum)) ** 2;
  const kurtosis = w ** 4 + 2 * w ** 3 + 3 * w ** 2 - 3;
  // The variance of the squared deviations: the log-normal's own, plus what rounding adds (at most).
  const varianceOfSquares = (kurtosis - 1) * sd ** 4 + sd ** 2 + roundingVariance ** 2;
  const varianceTolerance = Z * Math.sqrt(varianceOfSquares / n);
  const observed = variance(samples);
  assert.ok(
    observed >= sd ** 2 - varianceTolerance && observed <= sd ** 2 + roundingVariance + varianceTolerance,
    `${what}: variance ${observed} vs ${sd ** 2} (+ up to 1/4) ± ${varianceTolerance} over ${n}`,
  );
}

function samplePlans(config: Config, sessions: number) {
  const full: number[] = [];
  const incremental: number[] = [];
  const fullSizes: number[] = [];
  const incrementalSizes: number[] = [];
  for (let index = 0; index < sessions; index++) {
    const plan = planSnapshots(config, index);
    let fullCount = 0;
    for (const snapshot of plan) {
      if (snapshot.kind === 'full') {
        fullCount++;
        fullSizes.push(snapshot.size);
      } else {
        incrementalSizes.push(snapshot.size);
      }
    }
    full.push(fullCount);
    incremental.push(plan.length - fullCount);
  }
  return { full, incremental, fullSizes, incrementalSizes };
}

describe('statistics', () => {
  it('with the defaults, means match the flags (the original gave 1.65 full snapshots, not 2)', () => {
    const config = configFrom([]);
    const samples = samplePlans(config, SESSIONS);
    assertMatchesFlags(samples.full, config.fullSnapshotCount, 1, false, 'full snapshots per session');
    assertMatchesFlags(samples.incremental, config.incrementalSnapshotCount, 0, false, 'incremental snapshots per session');
    assertMatchesFlags(samples.fullSizes, config.fullSnapshotSize, 1, true, 'full snapshot size');
    assertMatchesFlags(samples.incrementalSizes, config.incrementalSnapshotSize, 1, false, 'incremental snapshot size');
  });

  it('for generated flags, means and standard deviations of counts and sizes match', () => {
    // Spreads up to 1.5 times the mean: beyond that a log-normal's sample
    // deviation converges too slowly for any useful tolerance.
    const distribution = (min: number, max: number, floor: number) =>
      fc.record({ mean: fc.double({ min, max, noNaN: true }), cv: fc.double({ min: 0, max: 1.5, noNaN: true }) })
        .map(({ mean: m, cv }) => ({ mean: m, standardDeviation: cv * (m - floor) }));
    fc.assert(
      fc.property(
        distribution(1.2, 5, 1), distribution(0.5, 8, 0), distribution(50, 5000, 1), distribution(50, 5000, 1), fc.integer(),
        (fullCount, incrementalCount, fullSize, incrementalSize, seed) => {
          const config: Config = { ...configFrom([]), seed, fullSnapshotCount: fullCount, incrementalSnapshotCount: incrementalCount, fullSnapshotSize: fullSize, incrementalSnapshotSize: incrementalSize };
          const samples = samplePlans(config, 8000);
          assertMatchesFlags(samples.full, fullCount, 1, true, 'full snapshots per session');
          assertMatchesFlags(samples.incremental, incrementalCount, 0, true, 'incremental snapshots per session');
          assertMatchesFlags(samples.fullSizes, fullSize, 1, true, 'full snapshot size');
          assertMatchesFlags(samples.incrementalSizes, incrementalSize, 1, true, 'incremental snapshot size');
        },
      ),
      { seed: SEED, numRuns: 12 },
    );
  });
});

// --- The command line ----------------------------------------------------------

const CLI = ['--import', 'tsx', 'generate.ts'];

function cli(args: string[]) {
  return spawnSync(process.execPath, [...CLI, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 28 });
}

/** Asserts two long texts are equal, reporting where they part rather than both in full. */
function assertSameText(actual: string, expected: string, what: string) {
  if (actual === expected) return;
  let at = 0;
  while (actual[at] === expected[at]) at++;
  assert.fail(`${what}: differs at character ${at} of ${actual.length} (expected ${expected.length}): ` +
    `${JSON.stringify(actual.slice(at, at + 40))} vs ${JSON.stringify(expected.slice(at, at + 40))}`);
}

describe('command line', () => {
  const badInputs: [string, string[]][] = [
    ['an unknown flag', ['--bogus']],
    ['a stray argument', ['100']],
    ['a missing value', ['--count']],
    ['a flag where a value is due', ['--count', '--verbose']],
    ['a value for a switch', ['--verbose=yes']],
    ['a non-number', ['--count', 'many']],
    ['a fractional count', ['--count', '2.5']],
    ['a negative count', ['--count', '-1']],
    ['a negative standard deviation', ['--full-snapshot-size-standard-deviation=-5']],
    ['a zero size mean', ['--incremental-snapshot-size-mean', '0']],
    ['a zero incremental count mean', ['--incremental-snapshot-count-mean', '0']],
    ['fewer than one full snapshot on average', ['--full-snapshot-count-mean', '0.5']],
    ['a chunk size over the message limit', ['--chunk-size', '1000000']],
    ['a message limit below the envelope', ['--max-message-bytes', '300']],
    ['a zero chunk size', ['--chunk-size', '0']],
    ['an unparsable start', ['--start', 'yesterday']],
    ['an impossible date', ['--start', '2024-02-31T00:00:00Z']],
    ['a fractional seed', ['--seed-value', '1.5']],
    ['an unknown format', ['--format', 'avro']],
    ['an unknown payload', ['--payload', 'zeros']],
    ['a payload for snapshot-items', ['--format', 'snapshot-items', '--payload', 'rrweb']],
    ['fewer than one window on average', ['--window-count-mean', '0.5']],
    ['an items message limit too small for an event', ['--format', 'snapshot-items', '--max-message-bytes', '5000']],
    ['a shard index equal to the count', ['--shard', '3/3']],
    ['a shard count of zero', ['--shard', '0/0']],
    ['a shard that is not I/N', ['--shard', 'one/two']],
    ['a shard of three numbers', ['--shard', '1/2/3']],
    ['a negative rate', ['--rate', '-5']],
    ['a key on vegeta targets', ['--format', 'vegeta', '--key']],
    ['a capture URL that is not http', ['--capture-url', 'ftp://example.com/s/']],
    ['both --progress and --no-progress', ['--progress', '--no-progress']],
  ];
  for (const [what, args] of badInputs) {
    it(`refuses ${what} with exit 2, one line on stderr naming the flag, nothing on stdout`, () => {
      const result = cli(['--count', '1', ...args]);
      assert.equal(result.status, 2);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /^generate\.ts: [^\n]+\n$/);
      const flag = args.find((arg) => arg.startsWith('--'));
      if (flag && flag !== '--verbose') assert.ok(result.stderr.includes(flag.split('=')[0]!), result.stderr);
    });
  }

  it('parseFlags throws UsageError for what the command line refuses', () => {
    for (const [, args] of badInputs) assert.throws(() => parseFlags(['--count', '1', ...args]), UsageError);
  });

  it('accepts a negative seed given as a separate argument', () => {
    assert.equal(configFrom(['--seed-value', '-7']).seed, -7);
  });

  it('--help lists every flag with its default and a kcat pipeline', () => {
    const result = cli(['--help']);
    assert.equal(result.status, 0);
    // Each flag's entry: its line and the indented description under it, joined.
    const entries = result.stdout.split(/\n(?= {2}--)/).map((entry) => entry.replace(/\s+/g, ' ').trim());
    for (const [name, spec] of Object.entries(FLAGS)) {
      const entry = entries.find((text) => text.startsWith(`--${name} `));
      assert.ok(entry, `--help lists --${name}`);
      if ('default' in spec) assert.ok(entry.includes(`(default ${spec.default})`), entry);
    }
    assert.match(result.stdout, /\| kcat -P/);
  });

  it('prints what the library renders, and the same bytes on a second run', () => {
    const args = ['--count', '3', '--seed-value', '11', '--start', START, '--key'];
    const first = cli(args);
    assert.equal(first.status, 0);
    assert.equal(first.stderr, '');
    const config = configFrom(args);
    const expected = [0, 1, 2].flatMap((index) => sessionLines(config, index)).join('\n') + '\n';
    assertSameText(first.stdout, expected, 'the command line against the library');
    assertSameText(cli(args).stdout, first.stdout, 'a second run against the first');
  });

  it('--verbose describes each session on stderr and leaves stdout as it was', () => {
    const args = ['--count', '4', '--start', START];
    const quiet = cli(args);
    const verbose = cli([...args, '--verbose']);
    assertSameText(verbose.stdout, quiet.stdout, 'stdout with --verbose against without');
    const lines = verbose.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 4);
    for (const line of lines) assert.match(line, /^session \d\/4 [0-9a-f-]{36}: \d+ full and \d+ incremental snapshots in \d+ messages/);
  });

  it('| head -1 ends quietly with status 0', () => {
    const result = spawnSync('bash', ['-c', `node ${CLI.join(' ')} --count 200 2>err.tmp | head -1 > /dev/null; echo "\${PIPESTATUS[0]}"; cat err.tmp; rm err.tmp`], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(result.stdout, '0\n');
  });

  it('Ctrl-C ends after a whole line, with status 130', async () => {
    const child = spawn(process.execPath, [...CLI, '--count', '100000', '--start', START], { cwd: ROOT });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data));
    let received = 0;
    child.stdout.on('data', (data: Buffer) => {
      chunks.push(data);
      received += data.length;
      if (received > 5_000_000 && !child.killed) child.kill('SIGINT');
    });
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(status, 130);
    assert.equal(stderr, '');
    const output = Buffer.concat(chunks).toString('utf8');
    assert.ok(output.endsWith('\n'));
    for (const line of output.slice(0, -1).split('\n')) JSON.parse(JSON.parse(line).data);
  });
});
