/**
 * Writes the flag table of README.md from the flag list `--help` prints (lib/config/flags.ts),
 * between the `<!-- flags:start -->` and `<!-- flags:end -->` markers; then `deno fmt README.md`
 * aligns it. tests/docs_test.ts fails while the two differ.
 *
 *   deno run --allow-read --allow-write scripts/readme_flags.ts && deno fmt README.md
 */
import { flagTable } from "../lib/config/mod.ts";

const README = new URL("../README.md", import.meta.url);
const text = await Deno.readTextFile(README);
const start = text.indexOf("<!-- flags:start -->");
const end = text.indexOf("<!-- flags:end -->");
if (start < 0 || end < start) throw new Error("README.md has no flags:start/flags:end markers");
const head = text.slice(0, start + "<!-- flags:start -->".length);
await Deno.writeTextFile(README, `${head}\n\n${flagTable()}\n${text.slice(end)}`);
