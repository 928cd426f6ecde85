import { ConfigError } from "../config/errors.ts";

/** Failure kinds a backend reports; the front end maps them to etcd's gRPC statuses. */
export type BackendErrorKind =
  | "compacted"
  | "future_revision"
  | "key_exists"
  | "duplicate_key"
  | "invalid"
  | "not_found"
  | "failed_precondition"
  | "out_of_range"
  | "unavailable";

/** An error whose `kind` carries its meaning across the storage boundary. */
export class BackendError extends Error {
  constructor(readonly kind: BackendErrorKind, message: string) {
    super(message);
    this.name = "BackendError";
  }
}

/**
 * A background write (role claim, lease expiry) that found another process
 * holding the store's write lock and did not wait for it: expected while
 * several processes share a SQLite file, and retried on the next pass.
 */
export class StoreBusy extends BackendError {
  constructor() {
    super("unavailable", "store busy: background write deferred");
    this.name = "StoreBusy";
  }
}

export const ERR_COMPACTED = "etcdserver: mvcc: required revision has been compacted";
export const ERR_FUTURE_REV = "etcdserver: mvcc: required revision is a future revision";
export const ERR_DUPLICATE_KEY = "etcdserver: duplicate key given in txn request";

export const compacted = () => new BackendError("compacted", ERR_COMPACTED);
export const futureRevision = () => new BackendError("future_revision", ERR_FUTURE_REV);

/** An endpoint error whose text may be shown as is (it never echoes credentials). */
export class EndpointError extends ConfigError {}

/** A DSN the engine cannot use, worded as upstream words it. */
export const dsnError = (reason: string) =>
  new EndpointError(`failed to create driver for endpoint: ${reason}`);
