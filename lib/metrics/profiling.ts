/**
 * `--metrics-enable-profiling`: V8's profiles on the metrics listener, in the formats Chrome
 * DevTools (and speedscope) open — not Go's pprof format, which `go tool pprof` reads.
 *
 * - `GET /debug/pprof/profile?seconds=N` — a CPU profile of the next N seconds (default 30, at
 *   most 300), `kine.cpuprofile`, through `node:inspector`'s Profiler.
 * - `GET /debug/pprof/heap` — a heap snapshot, `kine.heapsnapshot`, streamed as V8 writes it.
 *
 * @module
 */

const DEFAULT_SECONDS = 30;
const MAX_SECONDS = 300;

const TEXT = { "content-type": "text/plain; charset=utf-8" };

function attachment(name: string, type: string): HeadersInit {
  return { "content-type": type, "content-disposition": `attachment; filename="${name}"` };
}

const INDEX = `kine profiles (V8 formats; open them in Chrome DevTools or speedscope):
/debug/pprof/profile?seconds=N  CPU profile of the next N seconds (default ${DEFAULT_SECONDS}), kine.cpuprofile
/debug/pprof/heap               heap snapshot, kine.heapsnapshot
`;

/** Records a CPU profile for `ms` milliseconds; the `.cpuprofile` JSON text. */
async function cpuProfile(ms: number): Promise<string> {
  const { Session } = await import("node:inspector");
  const session = new Session();
  session.connect();
  const post = (method: string) =>
    new Promise<any>((resolve, reject) =>
      session.post(
        method,
        {},
        (err: Error | null, result: unknown) => err ? reject(err) : resolve(result),
      )
    );
  try {
    await post("Profiler.enable");
    await post("Profiler.start");
    await new Promise((r) => setTimeout(r, ms));
    const { profile } = await post("Profiler.stop");
    return JSON.stringify(profile);
  } finally {
    session.disconnect();
  }
}

/** The profiling routes for `serveMetrics`. */
export function profilingRoutes(): Record<string, (req: Request) => Promise<Response>> {
  let profiling = false;
  const get = (handler: (url: URL) => Promise<Response>) => async (req: Request) => {
    if (req.method !== "GET") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET" } });
    }
    return await handler(new URL(req.url));
  };
  return {
    "/debug/pprof/": get(() => Promise.resolve(new Response(INDEX, { headers: TEXT }))),
    "/debug/pprof/profile": get(async (url) => {
      const raw = url.searchParams.get("seconds") ?? String(DEFAULT_SECONDS);
      const seconds = Number(raw);
      if (!(seconds > 0 && seconds <= MAX_SECONDS)) {
        return new Response(`seconds must be a number in (0, ${MAX_SECONDS}], got ${raw}\n`, {
          status: 400,
          headers: TEXT,
        });
      }
      // V8 runs one profiler per isolate.
      if (profiling) {
        return new Response("a CPU profile is already being recorded\n", {
          status: 409,
          headers: TEXT,
        });
      }
      profiling = true;
      try {
        const body = await cpuProfile(seconds * 1000);
        return new Response(body, { headers: attachment("kine.cpuprofile", "application/json") });
      } finally {
        profiling = false;
      }
    }),
    "/debug/pprof/heap": get(async () => {
      const { getHeapSnapshot } = await import("node:v8");
      const snapshot = getHeapSnapshot();
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          for await (const chunk of snapshot) controller.enqueue(chunk as Uint8Array);
          controller.close();
        },
      });
      return new Response(body, { headers: attachment("kine.heapsnapshot", "application/json") });
    }),
  };
}
