/**
 * Embedding kine in a Deno program, the way K3s embeds kine: start it
 * in-process, hand its URL to whatever speaks etcd, close it on the way out.
 *
 *   deno run -A docs/embed/example.ts [data-dir]
 */
import { startKine } from "../../lib/mod.ts";

const dir = Deno.args[0] ?? "./db";
const kine = await startKine({
  listenAddress: "127.0.0.1:0", // any free port; kine.url says which
  endpoint: `sqlite://${dir}/state.db`,
  metricsBindAddress: "0",
});
console.log(`etcd endpoint: ${kine.url}`);

const stop = async () => {
  await kine.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
