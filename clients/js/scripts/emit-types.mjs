// The modules' declarations (hudong.d.ts, codec.d.ts, codes.d.ts, backoff.d.ts,
// room.d.ts), emitted by tsc from their JSDoc, so they cannot drift from the code.
//
//   npm run types            write them
//   npm run types -- --check exit 1 (naming the stale files) when one is not current
//
// tsc runs on a copy of the sources: next to the committed .d.ts files it would read
// those instead of the .js. protocol.d.ts (the messages and views) is generated from
// the server instead: `python -m server.js_types --write`.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
export const MODULES = ["hudong", "codec", "codes", "backoff", "room"];
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");

/** @param {string} name */
const header = (name) =>
  `// Generated from ${name}.js's JSDoc by \`npm run types\` (scripts/emit-types.mjs); do not edit.\n`;

/** @returns {Map<string, string>} file name -> its declarations as they should be */
export function emit() {
  // Inside the package, so that node_modules (@msgpack/msgpack) resolves.
  const work = mkdtempSync(join(ROOT, ".types-"));
  try {
    for (const name of MODULES) copyFileSync(join(ROOT, `${name}.js`), join(work, `${name}.js`));
    copyFileSync(join(ROOT, "protocol.d.ts"), join(work, "protocol.d.ts"));
    execFileSync(
      process.execPath,
      [
        TSC,
        "--allowJs",
        "--declaration",
        "--emitDeclarationOnly",
        "--target", "es2022",
        "--module", "nodenext",
        "--moduleResolution", "nodenext",
        "--lib", "es2022,dom",
        "--outDir", join(work, "out"),
        join(work, "hudong.js"),
      ],
      { stdio: "inherit" },
    );
    const out = new Map();
    for (const name of MODULES) {
      out.set(`${name}.d.ts`, header(name) + readFileSync(join(work, "out", `${name}.d.ts`), "utf8"));
    }
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes("--check");
  const stale = [];
  for (const [file, text] of emit()) {
    const path = join(ROOT, file);
    const now = existsSync(path) ? readFileSync(path, "utf8") : null;
    if (now === text) continue;
    stale.push(file);
    if (!check) writeFileSync(path, text);
  }
  if (check && stale.length) {
    console.error(`stale declarations: ${stale.join(", ")}; run \`npm run types\``);
    process.exit(1);
  }
  console.log(check ? "declarations are current" : `wrote ${stale.length ? stale.join(", ") : "nothing (current)"}`);
}
