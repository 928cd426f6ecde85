/**
 * A load generator worker process. Reads JSON lines on stdin:
 * `{id, job, params}` starts a job, `{id, stop}` stops it; writes JSON lines
 * on stdout: `{hello: true}`, `{id, ready}`, `{id, done}` or `{id, error}`.
 */
import { JOBS } from "./jobs.ts";
import { errorText } from "./rpc.ts";

const encoder = new TextEncoder();
const stopHandlers = new Map<number, (data: unknown) => void>();

function send(msg: unknown): void {
  // One write per line; stdout is a pipe read by the coordinator.
  const line = encoder.encode(JSON.stringify(msg) + "\n");
  let off = 0;
  while (off < line.length) off += Deno.stdout.writeSync(line.subarray(off));
}

function start(id: number, job: string, params: unknown): void {
  const fn = JOBS[job];
  if (!fn) return send({ id, error: `unknown job ${job}` });
  const stopped = new Promise((resolve) => stopHandlers.set(id, resolve));
  fn(params, { ready: (data) => send({ id, ready: data ?? true }), stopped }).then(
    (done) => send({ id, done }),
    (err) => send({ id, error: errorText(err) }),
  ).finally(() => stopHandlers.delete(id));
}

if (import.meta.main) {
  send({ hello: true });
  const decoder = new TextDecoder();
  let partial = "";
  for await (const chunk of Deno.stdin.readable) {
    partial += decoder.decode(chunk, { stream: true });
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.trim()) continue;
      const msg = JSON.parse(line);
      if ("stop" in msg) stopHandlers.get(msg.id)?.(msg.stop);
      else start(msg.id, msg.job, msg.params);
    }
  }
  // The coordinator closed stdin: it is gone or done with us.
  Deno.exit(0);
}
