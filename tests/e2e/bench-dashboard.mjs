// The review dashboard's pages, from request to rendered, in Debian's Chromium driven by
// playwright-core (BENCHMARKS.md, "Dashboard"; aims: the inspection page under 1 s, issue
// 5 §5; the national page for 209 trusts with 3 snapshots each under 1 s, issue 14).
//
// `--page national` measures the national page instead: the data folder is the demo's
// (`demo-data`: users and five inspections) with its endpoint and alert snapshots replaced by telemetry for 209 trusts
// written here and imported for each of three days (`--trusts`, `--devices` per trust and
// snapshot, default 1,000: 627,000 rows in all), and an inspection of every trust
// (created through the command line), so that every row has a latest inspection whose
// join the server makes. "Rendered" is the first frame showing every trust's row with
// its trend lines.
//
//   node tests/e2e/bench-dashboard.mjs --page national [--trusts 209 --devices 1000]
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
import { mkdtempSync, rmSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createHash } from "node:crypto";
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
const PAGE = args.page ?? "inspection";
if (!["inspection", "national"].includes(PAGE)) throw new Error("--page is inspection or national");
const NATIONAL = PAGE === "national";
const ENDPOINTS = String(args.endpoints ?? (NATIONAL ? 50_000 : 2_500_000));
const TRUSTS = Number(args.trusts ?? 209);
const DEVICES = Number(args.devices ?? 1000);
/** The rows the national page must show: every trust (read once the server is up). */
let expectedRows = 0;
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

/** Runs the server's command line on `data`; throws with its output if it fails. */
function run(data, argv) {
  const r = spawnSync(SERVER, ["--data", data, ...argv], { encoding: "utf8", maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`wardcheck-server ${argv.join(" ")} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The national page's data (see the top of this file): telemetry for TRUSTS trusts on
 *  the demo's three days, and an inspection of every trust that has none. */
function nationalData(data) {
  const started = performance.now();
  const demo = run(data, ["telemetry", "trusts"])
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split("\t"))
    .map(([code, type, mtc, region, name]) => ({ code, type, mtc: mtc === "mtc", region, name }));
  const regions = ["London", "South East", "South West", "Midlands", "East of England", "North West", "North East and Yorkshire"];
  const types = ["acute", "acute", "mental-health", "community", "ambulance"];
  const trusts = [...demo];
  for (let i = 0; trusts.length < TRUSTS; i++) {
    const code = `${"QW"[Math.floor(i / 100)]}${String(i % 100).padStart(2, "0")}`;
    trusts.push({ code, type: types[i % types.length], mtc: i % 9 === 0, region: regions[i % regions.length], name: `Synthetic NHS Trust ${code}` });
  }
  const days = run(data, ["telemetry", "snapshots"])
    .split("\n")
    .filter((l) => /\bendpoints\b/.test(l))
    .map((l) => l.match(/\d{4}-\d{2}-\d{2}/)?.[0])
    .filter(Boolean);
  if (days.length !== 3) throw new Error(`expected the demo's three endpoint days, got ${days}`);
  const dir = mkdtempSync(join(scratch ?? tmpdir(), "feeds-"));
  const file = (name, text) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const b = (v) => (v ? "true" : "false");
  const trustsCsv = ["ods_code,name,trust_type,major_trauma_centre,region", ...trusts.map((t) => `${t.code},"${t.name}",${t.type},${b(t.mtc)},${t.region}`)].join("\n");
  run(data, ["telemetry", "import", "--kind", "trusts", "--as-of", days[2], file("trusts.csv", trustsCsv)]);
  const OS = [
    ["Windows10", "22H2", 19045, "Enterprise"],
    ["Windows11", "24H2", 26100, "Enterprise"],
    ["Windows11", "23H2", 22631, "Enterprise"],
    ["WindowsServer2019", "1809", 17763, "ServerStandard"],
  ];
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  // The same device keeps its id from one snapshot to the next.
  const deviceId = (code, i) => createHash("sha1").update(`${code}-${i}`).digest("hex");
  const header = "device_id,device_name,os_platform,os_version,os_build,first_seen,last_seen,onboarding_status,health_status,exposure_level,missing_security_updates,smb1_enabled,bitlocker_on,firewall_domain,firewall_private,firewall_public,credential_guard_running,secure_boot_on,is_medical_device,trust,site,os_edition";
  for (const [d, day] of days.entries()) {
    // Fewer legacy devices on each later day: the trend the page draws.
    const legacyShare = 0.12 - 0.03 * d;
    const lines = [header];
    for (const t of trusts) {
      for (let i = 0; i < DEVICES; i++) {
        const legacy = rand() < legacyShare;
        const [platform, version, build, edition] = legacy ? ["Windows7", "6.1", 7601, ""] : OS[Math.floor(rand() * OS.length)];
        const onboarded = !legacy && rand() < 0.95;
        const k = (v) => (onboarded ? b(v) : "");
        lines.push(
          [deviceId(t.code, i), `${t.code.toLowerCase()}-ws-${i}.nhs.uk`, platform, version, build, `${day}T06:00:00Z`, `${day}T07:00:00Z`,
            onboarded ? "onboarded" : "CanBeOnboarded", onboarded ? "Active" : "NoSensorData", legacy ? "High" : "Low",
            onboarded ? "0" : "", k(rand() < 0.01), k(true), k(true), k(true), k(true), k(true), k(true), b(legacy),
            t.code, `${t.code}01`, edition].join(","),
        );
      }
    }
    run(data, ["telemetry", "import", "--kind", "endpoints", "--as-of", day, file(`endpoints-${day}.csv`, lines.join("\n"))]);
    const alerts = ["alert_id,trust,issued,acknowledged,closed"];
    const at = (daysBefore, hours = 0) => new Date(Date.parse(`${day}T09:00:00Z`) - daysBefore * 86_400_000 + hours * 3_600_000).toISOString().replace(".000Z", "Z");
    for (const t of trusts) {
      for (let i = 0; i < 26; i++) {
        const late = rand() < 0.08 + 0.02 * d;
        alerts.push(`CC-${4400 + i * 7},${t.code},${at(360 - i * 14)},${at(360 - i * 14, late ? 72 : 6)},`);
      }
    }
    run(data, ["telemetry", "import", "--kind", "alerts", "--as-of", day, file(`alerts-${day}.csv`, alerts.join("\n"))]);
  }
  const inspected = new Set(run(data, ["inspection", "list"]).split("\n").map((l) => l.match(/\b([A-Z][A-Z0-9]{2})\b/)?.[1]).filter(Boolean));
  let created = 0;
  for (const t of trusts) {
    if (inspected.has(t.code)) continue;
    run(data, ["inspection", "create", "--trust", t.code, "--site", `${t.code}01`, "--assign", "ann"]);
    created++;
  }
  log(`national data: ${trusts.length} trusts, ${days.length} days of ${trusts.length * DEVICES} endpoints and ${trusts.length * 26} alerts, ${created} inspections created, in ${Math.round((performance.now() - started) / 1000)} s`);
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
    if (NATIONAL) nationalData(data);
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
if (NATIONAL && !args.base) {
  // The inspections made above are submitted by their inspector, so every trust's row
  // reports one whose join the server makes.
  const ann = await browser.newContext();
  const ok = await ann.request.post(`${base}/api/v1/login`, { data: { user: "ann", password: PASSWORD, device: "bench" } });
  if (ok.status() !== 200) throw new Error(`signing in as ann: ${ok.status()}`);
  let after = "";
  let submitted = 0;
  for (;;) {
    const page = await (await ann.request.get(`${base}/api/v1/inspections?state=draft&limit=200${after}`)).json();
    for (const r of page.items) {
      for (const state of ["in_progress", "submitted"]) {
        const res = await ann.request.post(`${base}/api/v1/inspections/${r.id}/state`, { data: { state }, headers: { origin: base } });
        if (res.status() !== 200) throw new Error(`${r.id} to ${state}: ${res.status()} ${await res.text()}`);
      }
      submitted++;
    }
    if (!page.next) break;
    after = `&after=${page.next}`;
  }
  await ann.close();
  log(`${submitted} inspections submitted`);
}
if (NATIONAL) {
  // The first request after the server started joins every trust's latest inspection;
  // later ones read the verdict counts kept in memory.
  const t0 = performance.now();
  const first = await signer.request.get(`${base}/api/v1/national`);
  if (first.status() !== 200) throw new Error(`GET /api/v1/national: ${first.status()}`);
  expectedRows = (await first.json()).trusts.length;
  log(`first GET /api/v1/national after start: ${Math.round(performance.now() - t0)} ms (${expectedRows} trusts)`);
  const t1 = performance.now();
  await signer.request.get(`${base}/api/v1/national`);
  log(`second GET /api/v1/national: ${Math.round(performance.now() - t1)} ms`);
}
await signer.close();

const url = NATIONAL ? `${base}/national` : `${base}/inspections/${INSPECTION}`;

/** The API requests the page makes, by what they fetch: their durations are collected
 *  from the browser's resource timing, to show where the time goes. */
const API = NATIONAL
  ? { national: /\/api\/v1\/national$/ }
  : {
      detail: new RegExp(`/api/v1/inspections/${INSPECTION}$`),
      join: /\/join$/,
      summary: /\/telemetry-summary$/,
    };

/** Whether the page is drawn: run in the page, on every animation frame (passed as a
 *  function, not a string: the page's CSP refuses `eval`). */
function drawn([national, n]) {
  const ok = national
    ? document.querySelectorAll("[data-testid=national-row]").length === n &&
      document.querySelectorAll("[data-testid=national-row] .wc-spark").length >= n
    : document.querySelector("[data-testid=telemetry-charts] rect.wc-bar") &&
      document.querySelector("[data-verdict]") &&
      document.querySelector("[data-finding]");
  return ok ? performance.now() : null;
}
const apiMs = Object.fromEntries(Object.keys(API).map((k) => [k, []]));

/** Loads the page in `page`; returns [browser ms from navigation start, wall ms]. */
async function load(page) {
  const started = performance.now();
  await page.goto(url, { waitUntil: "commit" });
  const rendered = await page.waitForFunction(drawn, [NATIONAL, expectedRows], { polling: "raf", timeout: 60_000 });
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

console.log(
  NATIONAL
    ? `National page (${expectedRows} trusts) as ${USER}, ${LOADS} loads after ${WARMUP} warm-up, navigation start to rendered:`
    : `Inspection page ${INSPECTION} as ${USER}, ${LOADS} loads after ${WARMUP} warm-up, navigation start to rendered:`,
);
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
if (NATIONAL) {
  // Issue 14's aim is on the median, request to rendered.
  const worst = Math.max(...results.map((r) => r.median));
  console.log(`aim (median under 1 s): ${worst < 1000 ? "met" : "NOT met"}, worst median ${ms(worst)}`);
} else {
  const worst = Math.max(...results.map((r) => r.p95));
  console.log(worst < 1000 ? `aim (under 1 s): met, worst p95 ${ms(worst)}` : `aim (under 1 s): NOT met, worst p95 ${ms(worst)}`);
}
process.exit(0);
