/**
 * The replay rule and the upstream-tag rule, as pure functions.
 *
 * - Replay: a new `release/vcluster/vX.Y.Z` line is cut from the upstream tag
 *   `vX.Y.Z` and must carry an equivalent of every `(fork)` commit the
 *   previous line carries on top of its own upstream tag. Equivalent means the
 *   same subject or the same patch (`git patch-id --stable`), so a commit
 *   reworded during the rebase, or one whose patch had to change, is still
 *   found by one of the two.
 * - Tag origin: a plain `vX.Y.Z` tag in the fork repository must point at an
 *   upstream commit, never at a fork commit posing as an upstream release.
 *
 * `cli.ts` reads the commits, patch ids and refs from git.
 *
 * @module
 */

/** Refs of the upstream remote; any of them makes a commit an upstream commit. */
export const UPSTREAM_REMOTE = "refs/remotes/upstream/";

/**
 * Where upstream's tags are kept (by `.github/policy/fetch-upstream-tags.sh`),
 * apart from the fork's own tags, some of which reuse upstream names.
 */
export const UPSTREAM_TAGS = `${UPSTREAM_REMOTE}tags/`;

/** A release version `[major, minor, patch]`. */
export type Version = readonly [number, number, number];

/** One fork commit of a release line, as the replay check compares it. */
export interface LineCommit {
  /** Full object name. */
  sha: string;
  /** Abbreviated object name used in reports. */
  shortSha: string;
  /** First line of the commit message. */
  subject: string;
  /** `git patch-id --stable` of the commit's diff; `null` when the diff is empty. */
  patchId: string | null;
}

/** What made two commits equivalent, strongest first. */
export type MatchKind = "subject and patch-id" | "subject" | "patch-id";

/** A previous-line commit and the next-line commit that carries it. */
export interface ReplayMatch {
  /** The commit on the previous line. */
  previous: LineCommit;
  /** Its equivalent on the next line. */
  next: LineCommit;
  /** Why they are equivalent. */
  by: MatchKind;
}

/** Result of {@link matchReplay}. */
export interface ReplayResult {
  /** Previous-line commits the next line carries, in previous-line order. */
  matched: ReplayMatch[];
  /** Previous-line commits the next line lacks, in previous-line order. */
  missing: LineCommit[];
  /** Next-line commits with no counterpart on the previous line (new work). */
  added: LineCommit[];
}

const PLAIN_VERSION = /^v([0-9]+)\.([0-9]+)\.([0-9]+)$/;
const LINE_BRANCH = /(?:^|\/)release\/vcluster\/(v[0-9]+\.[0-9]+\.[0-9]+)$/;
const RELEASE_TAG = /(?:^|\/)(v[0-9]+\.[0-9]+\.[0-9]+)\.vcluster\.[0-9]+$/;

/**
 * Parse a plain upstream version tag `vX.Y.Z`.
 *
 * @param tag tag name without `refs/tags/`
 * @returns the version, or `null` when the name is not exactly `vX.Y.Z`
 */
export function parseVersion(tag: string): Version | null {
  const m = PLAIN_VERSION.exec(tag);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** Order two versions: negative when `a` is older, positive when newer, 0 when equal. */
export function compareVersions(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * The upstream tag a release line is cut from, read from a ref's name:
 * `release/vcluster/vX.Y.Z` (with any `refs/heads/`, `origin/`, ... prefix)
 * and release tags `vX.Y.Z.vcluster.N` (with or without `refs/tags/`) both
 * give `vX.Y.Z`.
 *
 * @param ref a branch or tag name
 * @returns the upstream tag, or `null` when the name says nothing
 */
export function upstreamTagOf(ref: string): string | null {
  return LINE_BRANCH.exec(ref)?.[1] ?? RELEASE_TAG.exec(ref)?.[1] ?? null;
}

/**
 * Pick the newest release line older than `version` among ref names. Only
 * `refs/heads/release/vcluster/vX.Y.Z` and `refs/remotes/<remote>/release/vcluster/vX.Y.Z`
 * count; a local branch wins over a remote-tracking one of the same version
 * (it is what the person running the check has in hand), then the remotes in
 * name order.
 *
 * @param refs full ref names, e.g. from `git for-each-ref`
 * @param version the next line's upstream version
 * @returns the chosen ref, or `null` when no older line exists
 */
export function newestOlderLine(refs: readonly string[], version: Version): string | null {
  const lines = refs.flatMap((ref) => {
    const m = /^refs\/(heads|remotes\/[^/]+)\/release\/vcluster\/(v[^/]+)$/.exec(ref);
    const v = m ? parseVersion(m[2]) : null;
    return m && v && compareVersions(v, version) < 0 ? [{ ref, v, local: m[1] === "heads" }] : [];
  });
  lines.sort((a, b) =>
    compareVersions(b.v, a.v) || Number(b.local) - Number(a.local) || (a.ref < b.ref ? -1 : 1)
  );
  return lines[0]?.ref ?? null;
}

/**
 * Pair every previous-line fork commit with an equivalent next-line fork
 * commit. Each next-line commit stands for at most one previous-line commit;
 * pairs agreeing on both subject and patch are made first, then subject-only,
 * then patch-only pairs, so a weak match never steals the partner of a strong one.
 *
 * @param previous fork commits of the previous line, oldest first
 * @param next fork commits of the next line, oldest first
 */
export function matchReplay(
  previous: readonly LineCommit[],
  next: readonly LineCommit[],
): ReplayResult {
  const samePatch = (a: LineCommit, b: LineCommit) => a.patchId !== null && a.patchId === b.patchId;
  const rules: Array<[MatchKind, (a: LineCommit, b: LineCommit) => boolean]> = [
    ["subject and patch-id", (a, b) => a.subject === b.subject && samePatch(a, b)],
    ["subject", (a, b) => a.subject === b.subject],
    ["patch-id", samePatch],
  ];
  const partner = new Map<number, ReplayMatch>();
  const used = new Set<number>();
  for (const [by, equal] of rules) {
    previous.forEach((p, i) => {
      if (partner.has(i)) return;
      const j = next.findIndex((n, k) => !used.has(k) && equal(p, n));
      if (j < 0) return;
      used.add(j);
      partner.set(i, { previous: p, next: next[j], by });
    });
  }
  return {
    matched: previous.flatMap((_, i) => partner.has(i) ? [partner.get(i)!] : []),
    missing: previous.filter((_, i) => !partner.has(i)),
    added: next.filter((_, k) => !used.has(k)),
  };
}

/**
 * Report lines of a replay result: one `matched (<kind>): ...` line per
 * carried commit, `new: <short sha> <subject>` per new commit and
 * `missing: <short sha> <subject>` per missing one.
 *
 * @param r the result of {@link matchReplay}
 */
export function formatReplay(r: ReplayResult): string[] {
  return [
    ...r.matched.map(({ previous: p, next: n, by }) =>
      `matched (${by}): ${p.shortSha} -> ${n.shortSha} ${n.subject}` +
      (p.subject === n.subject ? "" : ` (was: ${p.subject})`)
    ),
    ...r.added.map((n) => `new: ${n.shortSha} ${n.subject}`),
    ...r.missing.map((p) => `missing: ${p.shortSha} ${p.subject}`),
  ];
}
