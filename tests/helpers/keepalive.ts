/** A LeaseKeepAlive stream client for tests. */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { loadProtos } from "../../lib/server/client_protos.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A LeaseKeepAlive stream: `send(id)` and the responses received. */
export class KeepAlive {
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<any, any>;
  readonly responses: { ID: number; TTL: number }[] = [];
  readonly done: Promise<unknown>;
  constructor(endpoint: string) {
    const { etcd } = loadProtos();
    this.client = new etcd.Lease(endpoint, grpc.credentials.createInsecure());
    this.call = (this.client as any).LeaseKeepAlive();
    this.done = new Promise((r) => this.call.on("status", r));
    this.call.on("error", () => {});
    this.call.on("data", (r: any) => this.responses.push(r));
  }
  send(id: number): void {
    this.call.write({ ID: id });
  }
  async next(n: number, ms = 3000): Promise<{ ID: number; TTL: number }> {
    const deadline = performance.now() + ms;
    while (this.responses.length < n) {
      assert.ok(performance.now() < deadline, `no keep-alive response #${n}`);
      await sleep(10);
    }
    return this.responses[n - 1];
  }
  async close(): Promise<void> {
    this.call.end();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.done, new Promise((r) => timer = setTimeout(r, 2000))]);
    clearTimeout(timer);
    this.call.cancel();
    this.client.close();
  }
}
