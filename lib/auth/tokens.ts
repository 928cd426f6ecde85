/**
 * Auth tokens, as etcd's `--auth-token` selects them:
 * - `simple`: an opaque random token held in this process's memory, valid
 *   until it has gone unused for `--auth-token-ttl`;
 * - `jwt,pub-key=…,priv-key=…,sign-method=…[,ttl=…]`: a signed JWT with the
 *   claims `username`, `revision` and `exp`, which any kine holding the
 *   public key verifies (so it works across several kine servers).
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import * as jose from "jose";
import { parseDuration } from "../config/duration.ts";

/** Who a token stands for; `revision` is the auth revision it was issued at (JWT). */
export interface TokenInfo {
  user: string;
  revision?: number;
}

export interface TokenProvider {
  readonly kind: "simple" | "jwt";
  assign(user: string, revision: number): Promise<string>;
  /** The token's user, or undefined when it is unknown, expired or forged. */
  info(token: string): Promise<TokenInfo | undefined>;
  /** Forgets the user's tokens (password changed, user deleted); no-op for JWT. */
  invalidateUser(user: string): void;
  /** Forgets every token (auth disabled). */
  clear(): void;
  close(): void;
}

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** etcd's simple token shape: 16 random letters, a dot, a sequence number. */
export class SimpleTokens implements TokenProvider {
  readonly kind = "simple";
  readonly #tokens = new Map<string, { user: string; expires: number }>();
  #index = 0;
  readonly #sweeper: ReturnType<typeof setInterval>;

  constructor(private readonly ttlMs: number) {
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(ttlMs, 60_000));
    Deno.unrefTimer(this.#sweeper);
  }

  assign(user: string): Promise<string> {
    const random = crypto.getRandomValues(new Uint8Array(16));
    let token = "";
    for (const r of random) token += LETTERS[r % LETTERS.length];
    token += `.${++this.#index}`;
    this.#tokens.set(token, { user, expires: Date.now() + this.ttlMs });
    return Promise.resolve(token);
  }

  info(token: string): Promise<TokenInfo | undefined> {
    const entry = this.#tokens.get(token);
    if (!entry || entry.expires <= Date.now()) return Promise.resolve(undefined);
    // Each use keeps the token alive for another TTL, as etcd's keeper does.
    entry.expires = Date.now() + this.ttlMs;
    return Promise.resolve({ user: entry.user });
  }

  invalidateUser(user: string): void {
    for (const [token, entry] of this.#tokens) if (entry.user === user) this.#tokens.delete(token);
  }

  clear(): void {
    this.#tokens.clear();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [token, entry] of this.#tokens) if (entry.expires <= now) this.#tokens.delete(token);
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#tokens.clear();
  }
}

const SIGN_METHODS = new Set([
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "HS256",
  "HS384",
  "HS512",
]);

/** Signs with the private key (when given) and verifies with the public one. */
export class JwtTokens implements TokenProvider {
  readonly kind = "jwt";
  constructor(
    private readonly alg: string,
    private readonly verifyKey: jose.CryptoKey | Uint8Array,
    private readonly signKey: jose.CryptoKey | Uint8Array | undefined,
    private readonly ttlMs: number,
  ) {}

  async assign(user: string, revision: number): Promise<string> {
    if (!this.signKey) throw new Error("auth: token signing attempted with verify-only key");
    return await new jose.SignJWT({ username: user, revision })
      .setProtectedHeader({ alg: this.alg })
      .setExpirationTime(Math.floor((Date.now() + this.ttlMs) / 1000))
      .sign(this.signKey);
  }

  async info(token: string): Promise<TokenInfo | undefined> {
    try {
      const { payload } = await jose.jwtVerify(token, this.verifyKey, { algorithms: [this.alg] });
      if (typeof payload.username !== "string" || typeof payload.revision !== "number") return;
      return { user: payload.username, revision: payload.revision };
    } catch {
      return undefined;
    }
  }

  invalidateUser(): void {}
  clear(): void {}
  close(): void {}
}

/** Thrown for an `--auth-token` value etcd would refuse. */
export class TokenOptionsError extends Error {}

/** Parses etcd's `--auth-token` (`simple`, or `jwt,key=value,…`) and loads JWT keys. */
export async function tokenProvider(option: string, ttlSeconds: number): Promise<TokenProvider> {
  const [kind, ...pairs] = option.split(",");
  const opts = new Map<string, string>();
  for (const pair of pairs) {
    const parts = pair.split("=");
    if (parts.length !== 2 || opts.has(parts[0])) {
      throw new TokenOptionsError(`invalid --auth-token option ${JSON.stringify(pair)}`);
    }
    opts.set(parts[0], parts[1]);
  }
  if (kind === "simple" || kind === "") {
    if (opts.size > 0) throw new TokenOptionsError("--auth-token simple takes no options");
    return new SimpleTokens(ttlSeconds * 1000);
  }
  if (kind !== "jwt") throw new TokenOptionsError(`unknown --auth-token type ${kind}`);
  const alg = opts.get("sign-method") ?? "";
  if (!SIGN_METHODS.has(alg)) {
    throw new TokenOptionsError(`invalid --auth-token sign-method ${JSON.stringify(alg)}`);
  }
  let ttlMs = 5 * 60_000;
  if (opts.has("ttl")) {
    try {
      ttlMs = parseDuration(opts.get("ttl")!);
    } catch (err) {
      throw new TokenOptionsError(`invalid --auth-token ttl: ${(err as Error).message}`);
    }
  }
  const pubPath = opts.get("pub-key");
  const privPath = opts.get("priv-key");
  const read = async (path: string, what: string) => {
    try {
      return await Deno.readFile(path);
    } catch (err) {
      throw new TokenOptionsError(`--auth-token jwt: cannot read ${what} ${path}: ${err}`);
    }
  };
  const text = async (path: string, what: string) =>
    new TextDecoder().decode(await read(path, what));
  if (alg.startsWith("HS")) {
    const path = privPath ?? pubPath;
    if (!path) throw new TokenOptionsError("--auth-token jwt: missing key data");
    const secret = await read(path, "key");
    return new JwtTokens(alg, secret, secret, ttlMs);
  }
  if (!pubPath && !privPath) throw new TokenOptionsError("--auth-token jwt: missing key data");
  const privPem = privPath ? await text(privPath, "priv-key") : undefined;
  // node:crypto reads every PEM form (PKCS#1, PKCS#8, SEC1, SPKI, certificates); jose takes SPKI/PKCS#8.
  const publicPem = createPublicKey(pubPath ? await text(pubPath, "pub-key") : privPem!)
    .export({ type: "spki", format: "pem" }) as string;
  const verifyKey = await jose.importSPKI(publicPem, alg);
  let signKey: jose.CryptoKey | undefined;
  if (privPem) {
    const pkcs8 = createPrivateKey(privPem).export({ type: "pkcs8", format: "pem" }) as string;
    signKey = await jose.importPKCS8(pkcs8, alg);
    const derived = createPublicKey(privPem).export({ type: "spki", format: "pem" });
    if (derived !== publicPem) {
      throw new TokenOptionsError("--auth-token jwt: public and private keys don't match");
    }
  }
  return new JwtTokens(alg, verifyKey, signKey, ttlMs);
}
