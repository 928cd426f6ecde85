/** The README's flag table is the flag list `--help` prints (regenerate: scripts/readme_flags.ts). */
import assert from "node:assert/strict";
import { FLAGS, flagTable, helpText } from "../lib/config/mod.ts";

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));

/** The cells of a Markdown table's body rows, trimmed (so `deno fmt`'s alignment does not count). */
function rows(table: string): string[][] {
  return table.split("\n")
    .filter((l) => l.startsWith("|") && !/^\|[\s|:-]+\|$/.test(l))
    .slice(1) // the header
    .map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim().replace(/\s+/g, " ")));
}

Deno.test("README's flag table lists every flag of --help, with its variable, default and text", () => {
  const start = README.indexOf("<!-- flags:start -->");
  const end = README.indexOf("<!-- flags:end -->");
  assert.ok(start >= 0 && end > start, "README.md has the flags:start/flags:end markers");
  const documented = rows(README.slice(start, end));
  const expected = rows(flagTable());
  assert.equal(expected.length, FLAGS.length);
  assert.deepEqual(
    documented,
    expected,
    "README flag table differs from --help: run scripts/readme_flags.ts, then deno fmt README.md",
  );
  // and --help prints each of them
  const help = helpText();
  for (const f of FLAGS) assert.ok(help.includes(`--${f.name}`) && help.includes(`$${f.env}`));
});
