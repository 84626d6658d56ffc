// Build client/src/index.ts into client/dist/sms-otp.js and sms-otp.d.ts with the project's pinned tsc.
//   node client/build.mjs                 write client/dist (the committed artifact the stack serves)
//   node client/build.mjs --out-dir DIR   write DIR instead
//   node client/build.mjs --check         build into a temporary folder and fail unless client/dist matches
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, mkdirSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const clientDir = dirname(fileURLToPath(import.meta.url));
const distDir = join(clientDir, "dist");
// tsc names its output after the source (index.*); the artifact is named after the module.
const OUTPUTS = [
  ["index.js", "sms-otp.js"],
  ["index.d.ts", "sms-otp.d.ts"],
];

function build(outDir) {
  const tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");
  mkdirSync(outDir, { recursive: true });
  const result = spawnSync(process.execPath, [tsc, "-p", join(clientDir, "tsconfig.json"), "--outDir", outDir], {
    stdio: "inherit",
  });
  if (result.status !== 0) {
    process.exit(result.status ?? 1);
  }
  for (const [emitted, artifact] of OUTPUTS) {
    renameSync(join(outDir, emitted), join(outDir, artifact));
  }
}

const args = process.argv.slice(2);
if (args[0] === "--check" && args.length === 1) {
  const scratch = mkdtempSync(join(tmpdir(), "sms-otp-client-"));
  try {
    build(scratch);
    const stale = OUTPUTS.map(([, artifact]) => artifact).filter((artifact) => {
      const committed = join(distDir, artifact);
      return !existsSync(committed) || !readFileSync(committed).equals(readFileSync(join(scratch, artifact)));
    });
    if (stale.length > 0) {
      console.error(`client/dist is not built from client/src (${stale.join(", ")}): run \`make client\``);
      process.exit(1);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
} else if (args[0] === "--out-dir" && args.length === 2) {
  build(resolve(args[1]));
} else if (args.length === 0) {
  build(distDir);
} else {
  console.error("usage: node client/build.mjs [--check | --out-dir DIR]");
  process.exit(2);
}
