/**
 * grpc-js reads $GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once, when it loads, and a
 * TLS server without `--trusted-ca-file` would then offer that whole bundle as
 * acceptable client CAs; with a system bundle the handshake overflows and no
 * client connects. kine's server never wants default roots, so the variable
 * is dropped before grpc-js loads (this module is imported first).
 */
try {
  Deno.env.delete("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH");
} catch {
  // Without env permission grpc-js cannot read the variable either.
}
