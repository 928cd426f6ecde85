import { BackendError } from "../backend/errors.ts";

/** gRPC status codes used by etcd's errors. */
export const Code = {
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
} as const;

/** An error with the gRPC code and message etcd would answer with. */
export class EtcdError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "EtcdError";
  }
}

export const emptyKey = () =>
  new EtcdError(Code.INVALID_ARGUMENT, "etcdserver: key is not provided");
/** etcd's answer to a txn op with no request set. */
export const emptyOp = () => new EtcdError(Code.INVALID_ARGUMENT, "etcdserver: key not found");
export const valueProvided = () =>
  new EtcdError(Code.INVALID_ARGUMENT, "etcdserver: value is provided");
export const leaseProvided = () =>
  new EtcdError(Code.INVALID_ARGUMENT, "etcdserver: lease is provided");
/** etcd's refusal of a write while NOSPACE is raised or the store is over its quota. */
export const noSpace = () =>
  new EtcdError(Code.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded");
/** etcd's refusal of a write while CORRUPT is raised. */
export const corrupt = () => new EtcdError(Code.DATA_LOSS, "etcdserver: corrupt cluster");
export const notSupported = (what: string) =>
  new EtcdError(Code.UNKNOWN, `${what} is not supported`);

const KIND_CODES: Record<BackendError["kind"], number> = {
  compacted: Code.OUT_OF_RANGE,
  future_revision: Code.OUT_OF_RANGE,
  key_exists: Code.INVALID_ARGUMENT,
  duplicate_key: Code.INVALID_ARGUMENT,
  invalid: Code.INVALID_ARGUMENT,
  not_found: Code.NOT_FOUND,
  failed_precondition: Code.FAILED_PRECONDITION,
  out_of_range: Code.OUT_OF_RANGE,
  unavailable: Code.UNAVAILABLE,
};

/** Maps anything thrown below the front end to an {@link EtcdError}. */
export function toEtcdError(err: unknown): EtcdError {
  if (err instanceof EtcdError) return err;
  if (err instanceof BackendError) return new EtcdError(KIND_CODES[err.kind], err.message);
  return new EtcdError(Code.UNKNOWN, String((err as Error)?.message ?? err));
}
