/** Password hashes: bcrypt, as etcd stores them, with etcd's default cost. */
import bcrypt from "bcryptjs";

/** etcd's `--bcrypt-cost` default (Go's bcrypt.DefaultCost). */
export const DEFAULT_BCRYPT_COST = 10;

/** Hashes without blocking the event loop for the whole computation (bcryptjs yields). */
export function hashPassword(password: string, cost: number): Promise<string> {
  return bcrypt.hash(password, cost);
}

export function checkPassword(password: string, hash: string): Promise<boolean> {
  if (hash === "") return Promise.resolve(false);
  return bcrypt.compare(password, hash);
}
