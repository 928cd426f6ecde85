/** Endpoints as logs and errors may show them. */

/**
 * An endpoint as it may be shown: the password of `user:password@` and the value of any
 * `password=`/`token=`-like parameter replaced by `***`.
 */
export function maskEndpoint(endpoint: string): string {
  const scheme = endpoint.indexOf("://");
  const from = scheme < 0 ? 0 : scheme + 3;
  const slash = endpoint.indexOf("/", from);
  const authorityEnd = slash < 0 ? endpoint.length : slash;
  const at = endpoint.lastIndexOf("@", authorityEnd);
  let masked = endpoint;
  if (at >= from) {
    const userinfo = endpoint.slice(from, at);
    const colon = userinfo.indexOf(":");
    // `user:secret@` keeps the user; NATS reads a bare `token@` as a secret.
    const token = /^(nats|jetstream):/.test(endpoint);
    const shown = colon >= 0 ? `${userinfo.slice(0, colon)}:***` : token ? "***" : userinfo;
    masked = endpoint.slice(0, from) + shown + endpoint.slice(at);
  }
  return masked.replace(/([?&](?:password|pass|token|sslpassword)=)[^&]*/gi, "$1***");
}
