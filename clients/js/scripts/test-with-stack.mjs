#!/usr/bin/env node
// `npm test`: start the local stack (python -m devstack from the repository's .venv, on free
// ports), run every node test against it, stop it. With DEVSTACK_ENDPOINTS already set (as
// `make test` does through pytest), the running stack is used instead.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = resolve(here, "..");
const repo = resolve(packageDir, "../..");
const extra = process.argv.slice(2);

// Node 20's runner takes files, not globs: every test/*.test.mjs (not the support modules).
const files = readdirSync(join(packageDir, "test"))
  .filter((name) => name.endsWith(".test.mjs"))
  .map((name) => join("test", name));

function runTests(env) {
  const result = spawnSync(process.execPath, ["--test", "--test-concurrency=4", ...extra, ...files], {
    cwd: packageDir,
    env,
    stdio: "inherit",
  });
  return result.status ?? 1;
}

if (process.env.DEVSTACK_ENDPOINTS) process.exit(runTests(process.env));

async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

const python = join(repo, ".venv/bin/python");
if (!existsSync(python)) {
  console.error("no .venv: run `make venv` at the repository root first");
  process.exit(1);
}
const endpointsFile = join(mkdtempSync(join(tmpdir(), "js-client-stack-")), "endpoints.json");
const args = ["-m", "devstack", "--endpoints-file", endpointsFile];
for (const flag of ["--http-port", "--anthropic-port", "--ws-port", "--management-port", "--lambda-port", "--aws-port"]) {
  args.push(flag, String(await freePort()));
}
const env = { ...process.env };
delete env.ANTHROPIC_API_KEY; // never spend a real key on tests
delete env.ANTHROPIC_BASE_URL;
const stack = spawn(python, args, { cwd: repo, env, stdio: ["ignore", "pipe", "inherit"] });
let output = "";
const ready = new Promise((resolveReady, reject) => {
  stack.stdout.on("data", (chunk) => {
    output += chunk;
    if (output.split("\n").includes("ready")) resolveReady();
  });
  stack.once("exit", (code) => reject(new Error(`the stack exited with ${code}:\n${output}`)));
  setTimeout(() => reject(new Error(`the stack was not ready within 90 s:\n${output}`)), 90_000);
});
let status = 1;
try {
  await ready;
  JSON.parse(readFileSync(endpointsFile, "utf8"));
  status = runTests({ ...process.env, DEVSTACK_ENDPOINTS: endpointsFile });
} finally {
  if (stack.exitCode === null) {
    const stopped = new Promise((done) => stack.once("exit", done));
    stack.kill("SIGTERM");
    await Promise.race([stopped, new Promise((done) => setTimeout(done, 30_000))]);
  }
}
process.exit(status);
