/**
 * A worker thread that runs bcrypt (hash-wasm's WebAssembly build, which
 * takes the password as bytes) so the server's event loop never does.
 *
 * Messages in: {@link BcryptJob}. Messages out: {@link BcryptDone}, one per
 * job, with the job's id.
 */
import { bcrypt, bcryptVerify } from "hash-wasm";

/** A job: hash `password` at `cost`, or check it against `hash`. */
export type BcryptJob =
  | { id: number; op: "hash"; password: Uint8Array; cost: number }
  | { id: number; op: "check"; password: Uint8Array; hash: string };

/** A job's answer: the hash, whether the password matched, or the error text. */
export interface BcryptDone {
  id: number;
  hash?: string;
  ok?: boolean;
  error?: string;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<BcryptJob>) => void) | null;
  postMessage(message: BcryptDone): void;
};

async function run(job: BcryptJob): Promise<BcryptDone> {
  if (job.op === "hash") {
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const hash = await bcrypt({
      password: job.password,
      salt,
      costFactor: job.cost,
      outputType: "encoded",
    });
    return { id: job.id, hash };
  }
  return { id: job.id, ok: await bcryptVerify({ password: job.password, hash: job.hash }) };
}

scope.onmessage = (e) => {
  run(e.data).then(
    (done) => scope.postMessage(done),
    (err) => scope.postMessage({ id: e.data.id, error: String(err) }),
  );
};
