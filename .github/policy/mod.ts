/**
 * The fork's commit and tag rules, as pure functions.
 *
 * These are the rules the `fork-policy.yml` and `version-policy.yaml` workflows
 * enforce (see `CONTRIBUTING.md` and `docs/release.md`):
 *
 * - every commit subject on a `release/vcluster/v*` branch is a Conventional
 *   Commit carrying the literal scope `fork`;
 * - on `master`/`main`, `(fork)` commits of a product type are refused, and
 *   `(fork)` commits of a tooling type may only touch the tooling allowlist;
 * - release tags follow `vX.Y.Z.vcluster.N`.
 *
 * Nothing here runs git or touches the file system; `cli.ts` does that.
 *
 * @module
 */

/** Conventional Commit subject: `type(scope)!: description`. */
export const CONVENTIONAL_SUBJECT =
  /^(feat|fix|docs|style|refactor|perf|test|build|ci|chore|revert)(\(([a-z0-9/_-]+)\))?(!)?: .+/;

/** The scope that marks a commit as fork-specific. */
export const FORK_SCOPE = "fork";

/** Commit types that change the product (refused as `(fork)` commits on master/main). */
export const PRODUCT_TYPES: readonly string[] = ["feat", "fix", "perf", "refactor"];

/** Commit types that only change tooling. */
export const TOOLING_TYPES: readonly string[] = [
  "docs",
  "style",
  "test",
  "build",
  "ci",
  "chore",
  "revert",
];

/**
 * Paths a tooling `(fork)` commit may touch on master/main. A pattern ending
 * in `/**` matches everything below that directory; any other pattern matches
 * exactly that path (relative to the repository root).
 */
export const TOOLING_ALLOWLIST: readonly string[] = [
  ".github/**",
  "updatecli/**",
  "docs/**",
  "README.md",
  "CONTRIBUTING.md",
  "Dockerfile.release",
  ".golangci.json",
];

/** Release tag scheme, in words, used in messages. */
export const TAG_SCHEME = "vX.Y.Z.vcluster.N";

/** Release tag scheme as a regular expression. */
export const TAG_PATTERN = /^v[0-9]+\.[0-9]+\.[0-9]+\.vcluster\.[0-9]+$/;

/** A commit subject taken apart. */
export interface ParsedSubject {
  /** Conventional type, e.g. `feat`. */
  type: string;
  /** Scope without parentheses, or `null` when the subject has none. */
  scope: string | null;
  /** Whether the `!` breaking-change marker is present. */
  breaking: boolean;
  /** Text after `: `. */
  description: string;
}

/** What {@link checkSubject} found out about one subject line. */
export interface SubjectInfo {
  /** The subject matches {@link CONVENTIONAL_SUBJECT}. */
  conventional: boolean;
  /** Parsed parts; `null` when not conventional. */
  parsed: ParsedSubject | null;
  /** Conventional and the scope is exactly `fork`. */
  fork: boolean;
  /** Conventional and the type is one of {@link PRODUCT_TYPES}. */
  product: boolean;
}

/** One commit as the policy sees it. */
export interface CommitInfo {
  /** Full or abbreviated object name. */
  sha: string;
  /** Abbreviated name used in reports; falls back to the first 7 chars of `sha`. */
  shortSha?: string;
  /** First line of the commit message. */
  subject: string;
  /** Paths changed by the commit, relative to the repository root. */
  files: readonly string[];
  /** Parent object names; more than one means a merge commit, which is skipped. */
  parents?: readonly string[];
}

/** A broken rule. */
export interface Violation {
  /** Abbreviated commit name. */
  sha: string;
  /** Commit subject. */
  subject: string;
  /** Human-readable reason. */
  reason: string;
}

/** Which rule set applies to a pull request's base branch. */
export type BaseKind = "mainline" | "release" | "unchecked";

/** Result of {@link checkTag}. */
export type TagResult = { ok: true } | { ok: false; reason: string };

/**
 * Split a subject into its Conventional Commit parts.
 *
 * @param subject first line of a commit message
 * @returns the parts, or `null` when the subject is not conventional
 */
export function parseSubject(subject: string): ParsedSubject | null {
  const m = CONVENTIONAL_SUBJECT.exec(subject);
  if (!m) return null;
  const head = m[1].length + (m[2]?.length ?? 0) + (m[4] ? 1 : 0);
  return {
    type: m[1],
    scope: m[3] ?? null,
    breaking: m[4] === "!",
    description: subject.slice(head + 2),
  };
}

/**
 * Classify a commit subject: conventional or not, fork or not, product or tooling.
 *
 * @param subject first line of a commit message
 */
export function checkSubject(subject: string): SubjectInfo {
  const parsed = parseSubject(subject);
  if (!parsed) return { conventional: false, parsed: null, fork: false, product: false };
  return {
    conventional: true,
    parsed,
    fork: parsed.scope === FORK_SCOPE,
    product: PRODUCT_TYPES.includes(parsed.type),
  };
}

/**
 * Whether a path is inside the tooling allowlist.
 *
 * @param path repository-relative path using `/` separators
 */
export function isAllowlisted(path: string): boolean {
  const p = path.replace(/^\.\//, "");
  return TOOLING_ALLOWLIST.some((pattern) =>
    pattern.endsWith("/**") ? p.startsWith(pattern.slice(0, -2)) : p === pattern
  );
}

/**
 * Decide which rule set a base branch gets. A leading `refs/heads/` is ignored.
 *
 * - `master`, `main` → `"mainline"`
 * - `release/vcluster/v*` → `"release"`
 * - anything else → `"unchecked"`
 *
 * @param base target branch of the pull request
 */
export function classifyBase(base: string): BaseKind {
  const b = base.replace(/^refs\/heads\//, "");
  if (b === "master" || b === "main") return "mainline";
  if (b.startsWith("release/vcluster/v")) return "release";
  return "unchecked";
}

/** Whether a commit has more than one parent. */
export function isMerge(commit: CommitInfo): boolean {
  return (commit.parents?.length ?? 0) > 1;
}

/**
 * Reasons why one commit may not go into a pull request against `base`.
 * Merge commits and commits against unchecked bases yield no reasons.
 *
 * @param commit the commit
 * @param base target branch of the pull request
 * @returns zero or more reasons (empty means allowed)
 */
export function commitReasons(commit: CommitInfo, base: string): string[] {
  if (isMerge(commit)) return [];
  const kind = classifyBase(base);
  const info = checkSubject(commit.subject);
  if (kind === "mainline") {
    if (!info.fork) return [];
    const type = info.parsed!.type;
    if (info.product) {
      return [
        `product commit ${type}(fork) is not allowed on ${base}; ` +
        `it belongs on a release/vcluster/v* branch`,
      ];
    }
    const outside = commit.files.filter((f) => !isAllowlisted(f));
    if (outside.length > 0) {
      return [
        `tooling commit ${type}(fork) changes files outside the tooling allowlist ` +
        `(${TOOLING_ALLOWLIST.join(", ")}): ${outside.join(", ")}`,
      ];
    }
    return [];
  }
  if (kind === "release") {
    if (!info.conventional) {
      return [
        `not a Conventional Commit subject (expected "type(fork): description"); ` +
        `every commit on release/vcluster/v* must be conventional and carry the fork scope`,
      ];
    }
    if (!info.fork) {
      const scope = info.parsed!.scope;
      return [
        `${scope === null ? "scope is missing" : `scope is "${scope}"`}, but ` +
        `every commit on release/vcluster/v* must carry the fork scope ` +
        `(e.g. "${info.parsed!.type}(fork): ${info.parsed!.description}")`,
      ];
    }
    return [];
  }
  return [];
}

/**
 * Violations of one commit against `base`, in report form.
 *
 * @param commit the commit
 * @param base target branch of the pull request
 */
export function checkCommit(commit: CommitInfo, base: string): Violation[] {
  const sha = commit.shortSha ?? commit.sha.slice(0, 7);
  return commitReasons(commit, base).map((reason) => ({
    sha,
    subject: commit.subject,
    reason,
  }));
}

/**
 * Violations of a list of commits against `base`, in commit order.
 *
 * @param commits the commits of the pull request
 * @param base target branch of the pull request
 */
export function checkCommits(commits: readonly CommitInfo[], base: string): Violation[] {
  return commits.flatMap((c) => checkCommit(c, base));
}

/**
 * Format a violation as one report line: `<short sha> <subject>: <reason>`.
 *
 * @param v the violation
 */
export function formatViolation(v: Violation): string {
  return `${v.sha} ${v.subject}: ${v.reason}`;
}

/**
 * Check a release tag against the scheme `vX.Y.Z.vcluster.N`.
 *
 * @param tag tag name without `refs/tags/`
 */
export function checkTag(tag: string): TagResult {
  if (TAG_PATTERN.test(tag)) return { ok: true };
  return {
    ok: false,
    reason: `tag "${tag}" does not follow the fork release scheme ${TAG_SCHEME} ` +
      `(upstream release vX.Y.Z plus a per-line counter N, e.g. v0.16.2.vcluster.0)`,
  };
}
