/** etcd's Auth service: each RPC hands the caller and request to lib/auth. */
import type { AuthApi } from "../auth/mod.ts";
import type { Logger } from "../log/mod.ts";
import { callerOf } from "./caller.ts";
import { unary } from "./services.ts";

export function authService(api: AuthApi, logger: Logger) {
  const rpc = <Req>(fn: (caller: ReturnType<typeof callerOf>, r: Req) => Promise<unknown>) =>
    unary((r: Req, call) => fn(callerOf(call), r), logger);
  return {
    AuthEnable: rpc((c) => api.authEnable(c)),
    AuthDisable: rpc((c) => api.authDisable(c)),
    AuthStatus: rpc((c) => api.authStatus(c)),
    Authenticate: rpc((c, r: any) => api.authenticate(c, r)),
    UserAdd: rpc((c, r: any) => api.userAdd(c, r)),
    UserGet: rpc((c, r: any) => api.userGet(c, r)),
    UserList: rpc((c) => api.userList(c)),
    UserDelete: rpc((c, r: any) => api.userDelete(c, r)),
    UserChangePassword: rpc((c, r: any) => api.userChangePassword(c, r)),
    UserGrantRole: rpc((c, r: any) => api.userGrantRole(c, r)),
    UserRevokeRole: rpc((c, r: any) => api.userRevokeRole(c, r)),
    RoleAdd: rpc((c, r: any) => api.roleAdd(c, r)),
    RoleGet: rpc((c, r: any) => api.roleGet(c, r)),
    RoleList: rpc((c) => api.roleList(c)),
    RoleDelete: rpc((c, r: any) => api.roleDelete(c, r)),
    RoleGrantPermission: rpc((c, r: any) => api.roleGrantPermission(c, r)),
    RoleRevokePermission: rpc((c, r: any) => api.roleRevokePermission(c, r)),
  };
}
