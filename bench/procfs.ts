/** Reading CPU time and memory of processes from /proc. */

let ticksPerSecond = 100;

/** Reads the kernel's clock tick rate (`getconf CLK_TCK`) once; 100 if that fails. */
export async function initClockTicks(): Promise<void> {
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    if (n > 0) ticksPerSecond = n;
  } catch {
    // keep the default
  }
}

/**
 * CPU seconds (user + system) of a process from /proc/<pid>/stat: all its
 * threads, plus its reaped children's when `children` is set. NaN if gone.
 */
export function cpuSeconds(pid: number, children = true): number {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return NaN;
  }
  // Fields after the parenthesised command name start at field 3 (state).
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const at = (n: number) => Number(fields[n - 3]);
  const ticks = at(14) + at(15) + (children ? at(16) + at(17) : 0);
  return ticks / ticksPerSecond;
}

/** Resident set size now and at its peak (VmRSS, VmHWM), in bytes; zeros if gone. */
export function memory(pid: number): { rss: number; hwm: number } {
  let text = "";
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return { rss: 0, hwm: 0 };
  }
  const kib = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return { rss: kib("VmRSS") * 1024, hwm: kib("VmHWM") * 1024 };
}

/** Samples a process's VmRSS every `intervalMs` and keeps the peak and the last value. */
export class RssSampler {
  peak = 0;
  last = 0;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(readonly pid: number, intervalMs = 100) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  #sample(): void {
    const { rss } = memory(this.pid);
    if (rss > 0) {
      this.last = rss;
      this.peak = Math.max(this.peak, rss);
    }
  }

  /** Takes a last sample and stops. */
  stop(): void {
    this.#sample();
    clearInterval(this.#timer);
  }
}

/** Pids of `root` and all its descendants, from /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of Deno.readDirSync("/proc")) {
    const pid = Number(e.name);
    if (!(pid > 0)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]) ?? []));
  return tree;
}

/**
 * CPU seconds of a process tree: each live process's own time plus what its
 * reaped children used, so a worker that exits between two readings still
 * counts (in its parent). 0 if the root is gone.
 */
export function treeCpuSeconds(root: number): number {
  return processTree(root).reduce((n, pid) => n + (cpuSeconds(pid) || 0), 0);
}

/** Proportional set size of a process tree (shared memory split between sharers), bytes. */
export function treeMemory(root: number): number {
  let total = 0;
  for (const pid of processTree(root)) {
    try {
      const text = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
      total += Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/**
 * CPU seconds each core has spent busy (user, nice, system, irq, softirq)
 * since boot, from /proc/stat; empty if it cannot be read.
 */
export function coreBusySeconds(): number[] {
  let text = "";
  try {
    text = Deno.readTextFileSync("/proc/stat");
  } catch {
    return [];
  }
  const cores: number[] = [];
  for (const m of text.matchAll(/^cpu(\d+) (.*)$/gm)) {
    const [user, nice, system, , , irq, softirq] = m[2].trim().split(/\s+/).map(Number);
    cores[Number(m[1])] = (user + nice + system + irq + softirq) / ticksPerSecond;
  }
  return cores;
}
