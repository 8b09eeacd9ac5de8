// How fast `--jobs N` could be on a run's plan, in a model that leaves the
// machine out: each worker makes its sessions' snapshots in time order, a
// snapshot taking as long as its planned characters (a character of
// activity `--activity-cost` times one of a page load); main writes each
// snapshot once it and every snapshot before it in time are made; a worker
// waits while `--lead` characters of its output are unwritten (the batches
// BATCH_CREDITS lets it hold). Prints the speed of N workers against one,
// for the plan's rule (JobBalance) and for other ways to hand out sessions,
// so that a rule can be judged apart from this shared machine's noise.
//
//   node --import tsx bench/jobs-model.ts -- --payload rrweb --count 50
//   node --import tsx bench/jobs-model.ts --jobs 3 --lead 7e6 -- --format snapshot-items --count 200
//
// What follows `--` is generate.ts's own flags (--start is fixed, so runs
// repeat).

import { parseArgs } from 'node:util';
import { Arrivals, type Config, JobBalance, parseFlags, SessionPlan, SessionRandom } from '../generate.ts';

interface Snapshot {
  atMs: number;
  session: number;
  /** Planned characters: what the lead counts. */
  chars: number;
  /** Time to make it, in units of a page load's character. */
  cost: number;
}

interface Session {
  index: number;
  arrivalMs: number;
  snapshots: Snapshot[];
}

const { values, positionals } = parseArgs({
  options: { jobs: { type: 'string', default: '2' }, lead: { type: 'string', default: '4e6' }, 'activity-cost': { type: 'string', default: '1' } },
  allowPositionals: true,
});
const jobs = Number(values.jobs);
const lead = Number(values.lead);
const activityCost = Number(values['activity-cost']);
const parsed = parseFlags([...positionals, '--start', '2026-01-01T00:00:00Z']);
if (typeof parsed === 'string' || 'merge' in parsed) throw new Error(`not a run: ${positionals.join(' ')}`);
const config = parsed;

function plannedSessions(config: Config): Session[] {
  const arrivals = new Arrivals(config);
  const sessions: Session[] = [];
  for (let at = 0; at < config.count; at++) {
    const { index, atMs } = arrivals.next();
    const plan = new SessionPlan(config, new SessionRandom(config.seedValue, index), atMs);
    const snapshots: Snapshot[] = [];
    for (let snapshot = plan.next(); snapshot; snapshot = plan.next()) {
      snapshots.push({ atMs: snapshot.sentAtMs, session: index, chars: snapshot.size, cost: snapshot.size * (snapshot.kind === 'full' ? 1 : activityCost) });
    }
    sessions.push({ index, arrivalMs: atMs, snapshots });
  }
  return sessions;
}

/** Rules that hand session `session` to one of `owned` (each job's sessions so far); `last` is the job that got the one before. */
type Rule = (owned: Session[][], session: Session, last: number) => number;

/** The job of least `load`, ties to the first after `last`, as JobBalance breaks them. */
function least(owned: Session[][], last: number, load: (sessions: Session[]) => number): number {
  let best = 0;
  let lowest = Infinity;
  for (let turn = 1; turn <= owned.length; turn++) {
    const job = (last + turn) % owned.length;
    const value = load(owned[job]!);
    if (value < lowest) [best, lowest] = [job, value];
  }
  return best;
}

const sum = (sessions: Session[], chars: (snapshot: Snapshot) => number) => sessions.reduce((total, session) => total + session.snapshots.reduce((all, snapshot) => all + chars(snapshot), 0), 0);

// JobBalance keeps each job's sessions in flight: one model run asks it, for every arrival in order.
const balance = new JobBalance(config, jobs);
const rules: Record<string, Rule> = {
  'the plan (JobBalance)': (_owned, session) => balance.owner(session.index, session.arrivalMs),
  'fewest characters still to come': (owned, session, last) => least(owned, last, (sessions) => sum(sessions, (snapshot) => (snapshot.atMs > session.arrivalMs ? snapshot.chars : 0))),
  'fewest characters in all': (owned, _session, last) => least(owned, last, (sessions) => sum(sessions, (snapshot) => snapshot.chars)),
  'round by index': (owned, _session, last) => (last + 1) % owned.length,
};

/** Time for `jobs` workers to make and main to write every snapshot, sessions handed out by `rule`. */
function makespan(sessions: Session[], rule: Rule): number {
  const owned: Session[][] = Array.from({ length: jobs }, () => []);
  const ownerOf = new Map<number, number>();
  let last = -1;
  for (const session of sessions) {
    last = rule(owned, session, last);
    owned[last]!.push(session);
    ownerOf.set(session.index, last);
  }
  const inTime = (a: Snapshot, b: Snapshot) => a.atMs - b.atMs || a.session - b.session;
  const written = sessions.flatMap((session) => session.snapshots).sort(inTime);
  const queues = owned.map((mine) => mine.flatMap((session) => session.snapshots).sort(inTime));
  const next = queues.map(() => 0);
  const done = queues.map(() => 0);
  const unwritten = queues.map(() => 0);
  const made = new Set<Snapshot>();
  let writtenUpTo = 0;
  let time = 0;
  const step = 1000;
  while (writtenUpTo < written.length) {
    queues.forEach((queue, job) => {
      for (let budget = step; budget > 0 && next[job]! < queue.length && unwritten[job]! < lead;) {
        const snapshot = queue[next[job]!]!;
        const spent = Math.min(budget, snapshot.cost - done[job]!);
        [budget, done[job]] = [budget - spent, done[job]! + spent];
        if (done[job]! < snapshot.cost) break;
        made.add(snapshot);
        [next[job], done[job], unwritten[job]] = [next[job]! + 1, 0, unwritten[job]! + snapshot.chars];
      }
    });
    time += step;
    for (; writtenUpTo < written.length && made.has(written[writtenUpTo]!); writtenUpTo++) {
      const snapshot = written[writtenUpTo]!;
      unwritten[ownerOf.get(snapshot.session)!]! -= snapshot.chars;
    }
  }
  return time;
}

const sessions = plannedSessions(config);
const alone = sum(sessions, (snapshot) => snapshot.cost);
console.log(`${sessions.length} sessions, ${(sum(sessions, (snapshot) => snapshot.chars) / 1e6).toFixed(1)} M characters; ${jobs} workers, a lead of ${lead / 1e6} M, activity ${activityCost} times a page load's cost`);
for (const [name, rule] of Object.entries(rules)) console.log(`${name}: ${(alone / makespan(sessions, rule)).toFixed(2)} times one worker's speed`);
