/** Test PKI made with the openssl CLI (Debian package openssl). */
import assert from "node:assert/strict";

/**
 * Writes into `dir` a CA, a server certificate (SAN IP:127.0.0.1,
 * DNS:localhost), a client certificate with common name `clientCn`, and a
 * rogue client certificate no trusted CA signed.
 */
export async function makeCerts(dir: string, clientCn = "kine-client") {
  const openssl = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, `openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=kine-test-ca",
  );
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  await Deno.writeTextFile(`${dir}/client.ext`, "extendedKeyUsage=clientAuth\n");
  for (const name of ["server", "client"]) {
    await openssl(
      "req",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      name === "client" ? `/CN=${clientCn}` : `/CN=kine-${name}`,
    );
    await openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    );
  }
  // a client certificate the trusted CA never signed
  await openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "rogue.key",
    "-out",
    "rogue.crt",
    "-days",
    "2",
    "-subj",
    "/CN=rogue",
  );
  return {
    ca: `${dir}/ca.crt`,
    serverCert: `${dir}/server.crt`,
    serverKey: `${dir}/server.key`,
    clientCert: `${dir}/client.crt`,
    clientKey: `${dir}/client.key`,
    rogueCert: `${dir}/rogue.crt`,
    rogueKey: `${dir}/rogue.key`,
  };
}
