/**
 * etcd's auth errors, with the gRPC code and text etcd answers
 * (api/v3rpc/rpctypes), so clients that match on them (the Go client
 * re-authenticates on "invalid auth token" and "revision of auth store is
 * old") behave as against etcd.
 */
import { Code, EtcdError } from "../translator/errors.ts";

/** gRPC codes etcd's auth errors use beyond the translator's. */
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const UNAUTHENTICATED = 16;

const e = (code: number, text: string) => () => new EtcdError(code, `etcdserver: ${text}`);

export const rootUserNotExist = e(Code.FAILED_PRECONDITION, "root user does not exist");
export const rootRoleNotExist = e(Code.FAILED_PRECONDITION, "root user does not have root role");
export const userAlreadyExist = e(Code.FAILED_PRECONDITION, "user name already exists");
export const userEmpty = e(Code.INVALID_ARGUMENT, "user name is empty");
export const userNotFound = e(Code.FAILED_PRECONDITION, "user name not found");
export const roleAlreadyExist = e(Code.FAILED_PRECONDITION, "role name already exists");
export const roleNotFound = e(Code.FAILED_PRECONDITION, "role name not found");
export const roleEmpty = e(Code.INVALID_ARGUMENT, "role name is empty");
export const authFailed = e(
  Code.INVALID_ARGUMENT,
  "authentication failed, invalid user ID or password",
);
export const permissionNotGiven = e(Code.INVALID_ARGUMENT, "permission not given");
export const permissionDenied = e(PERMISSION_DENIED, "permission denied");
export const roleNotGranted = e(Code.FAILED_PRECONDITION, "role is not granted to the user");
export const permissionNotGranted = e(
  Code.FAILED_PRECONDITION,
  "permission is not granted to the role",
);
export const authNotEnabled = e(Code.FAILED_PRECONDITION, "authentication is not enabled");
export const invalidAuthToken = e(UNAUTHENTICATED, "invalid auth token");
export const invalidAuthMgmt = e(Code.INVALID_ARGUMENT, "invalid auth management");
export const authOldRevision = e(Code.INVALID_ARGUMENT, "revision of auth store is old");
export const tooManyRequests = e(RESOURCE_EXHAUSTED, "too many requests");

/** gRPC code names as grpc-go prints them in a status error's text. */
const CODE_NAMES: Record<number, string> = {
  [Code.INVALID_ARGUMENT]: "InvalidArgument",
  [Code.FAILED_PRECONDITION]: "FailedPrecondition",
  [PERMISSION_DENIED]: "PermissionDenied",
  [UNAUTHENTICATED]: "Unauthenticated",
};

/**
 * A watch refused or ended for an auth reason carries the gRPC status error's
 * text as its `cancel_reason`, as etcd sends it
 * (`rpc error: code = PermissionDenied desc = etcdserver: permission denied`).
 */
export function cancelReason(err: EtcdError): string {
  return `rpc error: code = ${CODE_NAMES[err.code] ?? "Unknown"} desc = ${err.message}`;
}
