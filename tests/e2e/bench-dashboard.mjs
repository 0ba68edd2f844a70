// The review dashboard's inspection page, from request to rendered, in Debian's Chromium
// driven by playwright-core (BENCHMARKS.md, "Dashboard"; issue 5 §5: aim under 1 s).
//
// By default it makes its own data folder with `demo-data --endpoints 2500000` (the
// national estate), starts the release server on it with the built dashboard, signs in
// as the demo reviewer, and opens the seeded RJ1 inspection (the largest demo trust:
// 225,000 endpoints) many times. "Rendered" is the first animation frame in which the
// page shows the answers with their telemetry verdicts, the findings and the trust's
// telemetry charts: everything the page asks the server for (the inspection, the join,
// the telemetry summary) has arrived and been drawn.
//
//   cargo build --release -p wardcheck-server && npm --prefix ui run build
//   node tests/e2e/bench-dashboard.mjs                 # 2.5 million endpoints, 30 loads
//   node tests/e2e/bench-dashboard.mjs --endpoints 50000 --loads 10
//   node tests/e2e/bench-dashboard.mjs --data DIR      # an existing demo-data folder
//   node tests/e2e/bench-dashboard.mjs --base http://127.0.0.1:8080   # a running server
//
// Two series, each after WARMUP loads that are not counted:
//   - "new visitor": a fresh browser context for each load (no HTTP cache; the sign-in
//     cookie only), so the page's script and styles are fetched every time;
//   - "same tab": one tab loading the page again (script and styles from the cache).
// For each it prints the median, p95, min and max of navigation start to rendered (the
// browser's clock), and the median as the script's wall clock sees it.

import { createRequire } from "node:module";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const require = createRequire(join(root, "ui", "package.json"));
const { chromium } = require("playwright-core");

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const LOADS = Number(args.loads ?? 30);
const WARMUP = Number(args.warmup ?? 3);
const ENDPOINTS = String(args.endpoints ?? 2_500_000);
const USER = args.user ?? "rita";
const PASSWORD = args.password ?? "wardcheck-demo";
const INSPECTION = args.inspection ?? "d3e00000-0000-4000-8000-000000000001";
const SERVER = args.server ?? join(root, "target", "release", "wardcheck-server");
const UI = args.ui ?? join(root, "ui", "dist");
for (const [k, v] of [["loads", LOADS], ["warmup", WARMUP]]) {
  if (!Number.isInteger(v) || v < 0 || v > 1000) throw new Error(`--${k} must be a whole number from 0 to 1000`);
}
if (LOADS < 1) throw new Error("--loads must be at least 1");

const log = (...m) => console.error("bench:", ...m);
let server = null;
let scratch = null;

function cleanUp() {
  if (server) server.kill();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}
process.on("exit", cleanUp);
process.on("SIGINT", () => process.exit(130));

/** Starts the server on `data`; resolves with its address once it says where it listens. */
function startServer(data) {
  if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: cargo build --release -p wardcheck-server`);
  if (!existsSync(join(UI, "index.html"))) throw new Error(`${UI}/index.html is missing: npm --prefix ui run build`);
  server = spawn(SERVER, ["--data", data, "serve", "--listen", "127.0.0.1:0", "--ui", UI], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    server.once("exit", (code) => reject(new Error(`the server exited (${code}) before listening`)));
    createInterface({ input: server.stdout }).once("line", (line) => {
      const url = line.split(/\s+/).find((w) => w.startsWith("http://"));
      if (url) resolve(url.replace(/\/$/, ""));
      else reject(new Error(`the server did not say where it listens: ${line}`));
    });
  });
}

let base = args.base?.replace(/\/$/, "");
if (!base) {
  let data = args.data;
  if (!data) {
    scratch = mkdtempSync(join(tmpdir(), "wardcheck-bench-dashboard-"));
    data = join(scratch, "data");
    log(`demo-data --endpoints ${ENDPOINTS} in ${data} (about 30 s for 2.5 million)`);
    const made = spawnSync(SERVER, ["--data", data, "demo-data", "--endpoints", ENDPOINTS], {
      stdio: ["ignore", "pipe", "inherit"],
      encoding: "utf8",
    });
    if (made.status !== 0) throw new Error(`demo-data failed (${made.status})`);
    log(made.stdout.split("\n").find((l) => l.startsWith("demo-data:")) ?? "demo-data done");
  }
  base = await startServer(data);
  log(`server ${base} on ${data}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

// Sign in once; every context starts with the same cookie.
const signer = await browser.newContext();
const login = await signer.request.post(`${base}/api/v1/login`, {
  data: { user: USER, password: PASSWORD, device: "dashboard benchmark" },
});
if (login.status() !== 200) throw new Error(`signing in as ${USER}: ${login.status()} ${await login.text()}`);
const storageState = await signer.storageState();
await signer.close();

const url = `${base}/inspections/${INSPECTION}`;

/** The API requests the page makes, by what they fetch: their durations are collected
 *  from the browser's resource timing, to show where the time goes. */
const API = {
  detail: new RegExp(`/api/v1/inspections/${INSPECTION}$`),
  join: /\/join$/,
  summary: /\/telemetry-summary$/,
};
const apiMs = Object.fromEntries(Object.keys(API).map((k) => [k, []]));

/** Loads the page in `page`; returns [browser ms from navigation start, wall ms]. */
async function load(page) {
  const started = performance.now();
  await page.goto(url, { waitUntil: "commit" });
  const rendered = await page.waitForFunction(
    () =>
      document.querySelector("[data-testid=telemetry-charts] rect.wc-bar") &&
      document.querySelector("[data-verdict]") &&
      document.querySelector("[data-finding]")
        ? performance.now()
        : null,
    null,
    { polling: "raf", timeout: 60_000 },
  );
  const wall = performance.now() - started;
  const entries = await page.evaluate(() =>
    performance.getEntriesByType("resource").map((e) => [new URL(e.name).pathname, e.duration]),
  );
  for (const [k, re] of Object.entries(API)) {
    // The first request of each kind: the one the page waited for.
    const hit = entries.find(([path]) => re.test(path));
    if (hit) apiMs[k].push(hit[1]);
  }
  return [await rendered.jsonValue(), wall];
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const ms = (v) => `${Math.round(v)} ms`;

async function series(name, next) {
  for (let i = 0; i < WARMUP; i++) await next();
  const browserMs = [];
  const wallMs = [];
  for (let i = 0; i < LOADS; i++) {
    const [b, w] = await next();
    browserMs.push(b);
    wallMs.push(w);
  }
  const sorted = [...browserMs].sort((a, b) => a - b);
  const wall = [...wallMs].sort((a, b) => a - b);
  return {
    name,
    median: pct(sorted, 50),
    p95: pct(sorted, 95),
    min: sorted[0],
    max: sorted.at(-1),
    wall: pct(wall, 50),
  };
}

const results = [];
results.push(
  await series("new visitor (fresh context, no cache)", async () => {
    const context = await browser.newContext({ storageState, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    try {
      return await load(page);
    } finally {
      await context.close();
    }
  }),
);
{
  const context = await browser.newContext({ storageState, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  results.push(await series("same tab (script and styles cached)", () => load(page)));
  await context.close();
}
await browser.close();

console.log(`Inspection page ${INSPECTION} as ${USER}, ${LOADS} loads after ${WARMUP} warm-up, navigation start to rendered:`);
console.log("| series | median | p95 | min | max | median, wall clock |");
console.log("|---|---|---|---|---|---|");
for (const r of results) {
  console.log(`| ${r.name} | ${ms(r.median)} | ${ms(r.p95)} | ${ms(r.min)} | ${ms(r.max)} | ${ms(r.wall)} |`);
}
const median = (xs) => pct([...xs].sort((a, b) => a - b), 50);
console.log(
  `API requests (median over every load, as the browser timed them): ${Object.entries(apiMs)
    .map(([k, xs]) => `${k} ${xs.length ? ms(median(xs)) : "-"}`)
    .join(", ")}`,
);
const worst = Math.max(...results.map((r) => r.p95));
console.log(worst < 1000 ? `aim (under 1 s): met, worst p95 ${ms(worst)}` : `aim (under 1 s): NOT met, worst p95 ${ms(worst)}`);
process.exit(0);
