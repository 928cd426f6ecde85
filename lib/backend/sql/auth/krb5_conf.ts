/**
 * The one setting kine needs from the Kerberos configuration: `[libdefaults] default_realm`,
 * read from the files `KRB5_CONFIG` lists (colon-separated) or `/etc/krb5.conf`, as MIT does.
 *
 * @module
 */

/** `default_realm` of the effective krb5 configuration, or `undefined` when none sets it. */
export async function defaultRealm(env: (name: string) => string | undefined): Promise<
  string | undefined
> {
  const files = (env("KRB5_CONFIG") ?? "/etc/krb5.conf").split(":").filter((f) => f !== "");
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue; // MIT skips configuration files it cannot read
    }
    const realm = defaultRealmOf(text);
    if (realm) return realm;
  }
  return undefined;
}

/** `default_realm` from the `[libdefaults]` section of one krb5.conf text. */
export function defaultRealmOf(text: string): string | undefined {
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[([^\]]+)\]/.exec(line);
    if (header) {
      section = header[1].trim();
      continue;
    }
    if (section !== "libdefaults") continue;
    const m = /^default_realm\s*=\s*(\S+)/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}
