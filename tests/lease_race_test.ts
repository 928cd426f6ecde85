/**
 * LeaseRevoke racing keep-alives of the same lease: the revoke always wins
 * (a keep-alive landing between its read and its delete makes it try again,
 * never answer "lease not found"), and the lease's keys go with it.
 */
import assert from "node:assert/strict";
import { b } from "./helpers/client.ts";
import { conformance } from "./helpers/conformance.ts";
import { KeepAlive } from "./helpers/keepalive.ts";

const ROUNDS = 200;

conformance(`LeaseRevoke against keep-alives, ${ROUNDS} times: revoked every time`, async (k) => {
  const ka = new KeepAlive(k.endpoint);
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const { ID } = await k.client.lease.leaseGrant({ TTL: 60 });
      const key = `/race/${i}`;
      await k.client.kv.put({ key: b(key), value: b("v"), lease: ID });
      const sent = ka.responses.length;
      for (let n = 0; n < 3; n++) ka.send(ID);
      await new Promise((r) => setTimeout(r, i % 3));
      await k.client.lease.leaseRevoke({ ID });
      // every keep-alive is answered: TTL 60 before the revoke, 0 after it
      await ka.next(sent + 3);
      assert.equal((await k.client.kv.range({ key: b(key) })).count, 0, `round ${i}: key left`);
      assert.equal((await k.client.lease.leaseTimeToLive({ ID })).TTL, -1, `round ${i}`);
    }
  } finally {
    await ka.close();
  }
});
