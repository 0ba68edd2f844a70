// Browser tests of the review dashboard, in Debian's Chromium driven by playwright-core.
//
// Started by tests/tests/dashboard.rs, which starts the real server on demo data and
// passes its address. Talks to that test on stdin/stdout, one line each way:
//   we print   `wardcheck-e2e: ready-for-edit`  when the inspection page is open;
//   it answers `edited`                         once the trust's lead has answered a finding.
// Everything else we print goes to stderr. Exits non-zero on the first failure.
//
//   node tests/e2e/dashboard.test.mjs --base http://127.0.0.1:PORT --artifacts DIR \
//     --inspection ID --item ITEM --other ID --password PASSWORD --note TEXT \
//     --history-inspection ID --history-item ITEM

import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import assert from "node:assert/strict";

// playwright-core is a devDependency of ui/ (one npm project, one lock).
const require = createRequire(new URL("../../ui/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
for (const k of ["base", "artifacts", "inspection", "item", "other", "password", "note", "history-inspection", "history-item"]) {
  if (!args[k]) throw new Error(`missing --${k}`);
}
const base = args.base.replace(/\/$/, "");
const shots = args.artifacts;
mkdirSync(shots, { recursive: true });

const log = (...m) => console.error("e2e:", ...m);
const TIMEOUT = 20_000;

// Flags that work on these machines (see the machine notes): no sandbox as root, no GPU,
// no background connections to Google (this network refuses them).
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

/** Every CSP violation and script error in any page, checked at the end. */
const problems = [];
/** Set while a step makes the server refuse something on purpose (a 422 it expects). */
let refusalExpected = false;
async function newPage() {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/i.test(t)) problems.push(`CSP: ${t}`);
    else if (m.type() === "error" && !/status of 40[134]/.test(t) && !(refusalExpected && /status of 4(00|22)/.test(t))) problems.push(`console error: ${t}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return { context, page };
}

async function signIn(page, user) {
  await page.goto(`${base}/`);
  await page.waitForURL(/\/signin/);
  // By keyboard, as someone not using a mouse would.
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(args.password);
  await page.getByLabel("Password").press("Enter");
  await page.getByRole("heading", { name: "Inspections", level: 1 }).waitFor();
}

const steps = [];
const step = (name, fn) => steps.push([name, fn]);

const reviewer = await newPage();
const page = reviewer.page;

step("an anonymous visitor is sent to sign in; the page has the security headers", async () => {
  const res = await page.goto(`${base}/inspections/${args.inspection}`);
  const h = res.headers();
  assert.match(h["content-security-policy"], /script-src 'self'/);
  assert.match(h["content-security-policy"], /frame-ancestors 'none'/);
  assert.doesNotMatch(h["content-security-policy"], /unsafe-inline|unsafe-eval|https?:/);
  assert.equal(h["x-content-type-options"], "nosniff");
  await page.waitForURL(/\/signin\?next=/);
  await page.getByRole("heading", { name: "Sign in to Wardcheck review" }).waitFor();
  await page.screenshot({ path: join(shots, "dashboard-signin.png") });
  // A wrong password is an error summary, not a crash.
  await page.getByLabel("User name").fill("rita");
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("The user name or password is wrong").waitFor();
});

step("a reviewer signs in and sees the seeded contradiction in the list", async () => {
  await page.getByLabel("Password").fill(args.password);
  await page.getByLabel("Password").press("Enter");
  // Back where the visitor was going.
  await page.waitForURL(`${base}/inspections/${args.inspection}`);
  await page.goto(`${base}/`);
  const row = page.locator(`tr[data-inspection="${args.inspection}"]`);
  await row.getByText(/\d+ contradicted/).waitFor();
  await page.getByLabel("Has contradictions").check();
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.waitForURL(/contradictions=1/);
  await row.getByText(/\d+ contradicted/).waitFor();
  const rows = page.locator("tr[data-inspection]");
  for (const r of await rows.all()) await r.getByText(/\d+ contradicted/).waitFor();
  await page.screenshot({ path: join(shots, "dashboard-list.png"), fullPage: true });
});

step("the inspection page shows the contradiction beside the answer, devices and photos", async () => {
  await page.locator(`tr[data-inspection="${args.inspection}"] a`).click();
  await page.waitForURL(`${base}/inspections/${args.inspection}`);
  const item = page.locator(`[data-item="${args.item}"]`);
  await item.locator('[data-verdict="contradicted"]').waitFor();
  const text = await item.innerText();
  assert.match(text, /Met/, "the inspector's answer is shown");
  assert.match(text, /Contradicted/);
  assert.match(text, /\d[\d,]* of [\d,]+ endpoints run an unsupported OS/, "the figures are shown");
  // The verdict's reason in one sentence, and the rule it was judged by (issue 12).
  assert.match(await item.locator("[data-testid=verdict-reason]").innerText(), /^answered met, but [\d,]+ of [\d,]+ endpoints with data run an unsupported OS: more than the tolerance/);
  assert.match(await item.locator("[data-testid=verdict-rule]").innerText(), /^Judged on: all devices, discovered ones too; tolerance none; needs 90% coverage$/);
  const statuses = await page.locator("[data-testid=devices] tr[data-status]").evaluateAll((rs) => rs.map((r) => r.dataset.status));
  for (const s of ["matched", "unmanaged", "build_differs", "stale"]) assert.ok(statuses.includes(s), `a device ${s}: ${statuses}`);
  // A device-scope item is judged device by device, beside each device's own record; an
  // unmanaged device is never judged by the estate.
  const os = page.locator('[data-item="w10-os-supported"]');
  const judged = await os.locator("[data-testid=device-verdict]").evaluateAll((es) => es.map((e) => [e.dataset.verdict, e.textContent]));
  assert.ok(judged.length >= 4, `each sampled device's verdict: ${JSON.stringify(judged)}`);
  assert.ok(judged.some(([v, t]) => v === "unmanaged" && /not judged by the estate/.test(t)), `the unmanaged device: ${JSON.stringify(judged)}`);
  assert.match(await os.locator(".wc-verdict").innerText(), /sampled devices' own records .*context, not the verdict/s);
  // A thumbnail opens the photo full size; Escape closes it and gives focus back.
  const thumb = page.locator(".wc-thumb").first();
  await thumb.scrollIntoViewIfNeeded();
  await thumb.focus();
  await page.keyboard.press("Enter");
  const full = page.locator("dialog[open] img");
  await full.waitFor();
  await page.waitForFunction(() => document.querySelector("dialog[open] img")?.naturalWidth > 0);
  await page.screenshot({ path: join(shots, "dashboard-photo.png") });
  await page.keyboard.press("Escape");
  await page.locator("dialog[open]").waitFor({ state: "detached" });
  assert.ok(await thumb.evaluate((el) => el === document.activeElement), "focus returns to the thumbnail");
  await item.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, "dashboard-contradiction.png") });
  await page.evaluate(() => scrollTo(0, 0));
  await page.screenshot({ path: join(shots, "dashboard-inspection.png") });
});

step("an edit another user makes (the trust lead's response) appears on the open page without a reload", async () => {
  await page.evaluate(() => (window.__wardcheckNotReloaded = true));
  // The page follows the inspection's event stream: while nothing changes it reads
  // nothing (polling would have read the inspection at least twice in this window).
  await page.locator("[data-live=pushed]").waitFor();
  const path = `/api/v1/inspections/${args.inspection}`;
  const reads = [];
  const count = (r) => {
    const u = new URL(r.url());
    if (u.pathname === path || u.pathname === `${path}/join`) reads.push(u.pathname);
  };
  page.on("request", count);
  await page.waitForTimeout(3 * 2500);
  assert.deepEqual(reads, [], "no reads while nothing changed");
  process.stdout.write("wardcheck-e2e: ready-for-edit\n");
  const lines = createInterface({ input: process.stdin });
  const answer = await new Promise((resolve) => lines.once("line", resolve));
  lines.close();
  assert.equal(answer.trim(), "edited");
  // The trust lead's response to a finding (the inspection is signed off: its findings
  // are frozen, and the trust's response is what changes now).
  const rec = page.locator("[data-testid=trust-response]");
  await rec.filter({ hasText: args.note }).waitFor({ timeout: 15_000 });
  assert.equal(await page.evaluate(() => window.__wardcheckNotReloaded), true, "the page was not reloaded");
  // The response changed the response document only: the inspection was read again, the
  // join (which depends on the inspection document) was not.
  page.off("request", count);
  assert.ok(reads.includes(path), `the inspection was read again: ${JSON.stringify(reads)}`);
  assert.ok(!reads.includes(`${path}/join`), `the join was not: ${JSON.stringify(reads)}`);
});

step("the CSV export (made and audited by the server) neutralises formulas and quotes cells as RFC 4180 says", async () => {
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download CSV" }).click(),
  ]);
  const file = join(shots, "dashboard-export.csv");
  await download.saveAs(file);
  const text = readFileSync(file, "utf8").replace(/^\ufeff/, "");
  const rows = parseCsv(text);
  const header = rows[0];
  const recHeader = rows.find((r) => r[0] === "record" && r.includes("recommendation"));
  assert.ok(recHeader && recHeader.includes("trust_response"), "the findings' header row");
  const recCol = recHeader.indexOf("trust_response");
  const row = rows.find((r) => r[0] === "finding" && r[recCol]?.includes("rechecked on site"));
  assert.ok(row, "a row for the edited finding");
  assert.equal(row[recCol], `'${args.note}`, "the cell starts with ' so it is text, not a formula");
  assert.ok(text.includes(`"'${args.note.replaceAll('"', '""')}"`), "the cell is quoted, its quotes doubled");
  for (const r of rows) for (const cell of r) assert.doesNotMatch(cell, /^[=+\-@\t\r]/, `a live formula: ${cell}`);
  const contradiction = rows.find((r) => r[2] === args.item);
  assert.ok(contradiction.includes("Contradicted"), "the verdict is in the export");
});

step("the printable report holds the findings, verdicts and every photo's SHA-256, and prints to PDF", async () => {
  const detail = await (await page.request.get(`${base}/api/v1/inspections/${args.inspection}`)).json();
  const findings = detail.inspection.findings.map((f) => f.text);
  const hashes = Object.values(detail.inspection.responses).flatMap((r) => r.photos.map((p) => p.value.hash));
  assert.ok(findings.length > 0 && hashes.length > 0, "the demo inspection has findings and photos");
  await page.getByRole("link", { name: "Printable report" }).click();
  await page.waitForURL(/\/report$/);
  const report = page.locator("[data-testid=report]");
  await report.waitFor();
  await page.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0));
  const shown = await page.locator("[data-testid=photo-sha256]").allInnerTexts();
  for (const h of hashes) assert.ok(shown.some((s) => s.includes(h)), `photo ${h} listed with its SHA-256`);
  const onPage = await report.innerText();
  for (const f of findings) assert.ok(onPage.includes(f), `finding on the page: ${f}`);
  assert.match(onPage, /Contradicted/);
  // The sign-off chain, each link with its hash and the hash of what it signed.
  const links = detail.inspection.signoffs;
  assert.ok(links.length >= 2 && links.every((l) => l.hash && l.content), "the demo inspection is signed, and its links sealed");
  assert.equal(await report.locator("[data-testid=signoff-link]").count(), links.length, "every link of the chain is printed");
  for (const l of links) assert.ok(onPage.includes(l.hash) && onPage.includes(l.content), `link ${l.hash} and its content hash printed`);
  assert.equal(links[1].prev, links[0].hash, "the reviewer's sign-off follows the lead inspector's");
  await page.screenshot({ path: join(shots, "dashboard-report.png"), fullPage: true });
  await page.emulateMedia({ media: "print" });
  const pdf = join(shots, "dashboard-report.pdf");
  await page.pdf({ path: pdf, format: "A4", printBackground: true, margin: { top: "15mm", bottom: "15mm", left: "12mm", right: "12mm" } });
  await page.emulateMedia({ media: "screen" });
  assert.equal(readFileSync(pdf).subarray(0, 5).toString(), "%PDF-");
  if (existsSync("/usr/bin/pdftotext")) {
    const text = execFileSync("/usr/bin/pdftotext", [pdf, "-"]).toString().replace(/\s+/g, " ");
    for (const f of findings) assert.ok(text.includes(f.replace(/\s+/g, " ")), `finding in the PDF: ${f}`);
    for (const h of hashes) assert.ok(text.replace(/ /g, "").includes(h), `SHA-256 in the PDF: ${h}`);
    for (const l of links) assert.ok(text.replace(/ /g, "").includes(l.hash), `sign-off link in the PDF: ${l.hash}`);
    assert.doesNotMatch(text, /Print this page|Make the PDF report|Sign in as someone else/, "no buttons or header in print");
  } else {
    log("pdftotext not installed (poppler-utils): checked the page's text instead of the PDF's");
  }
});

step("the server's PDF report is made, kept and shown with its SHA-256; the evidence pack downloads with its hash", async () => {
  const sha256 = (b) => createHash("sha256").update(b).digest("hex");
  await page.locator("[data-testid=kept-reports]").waitFor();
  const before = await page.locator("[data-testid=kept-report]").count();
  await page.getByRole("button", { name: "Make the PDF report" }).click();
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=kept-report]").length === n + 1, before);
  const shown = (await page.locator("[data-testid=report-sha256]").first().innerText()).trim();
  const listed = await (await page.request.get(`${base}/api/v1/inspections/${args.inspection}/reports`)).json();
  assert.equal(shown, listed.reports[0].sha256, "the page shows the kept report's SHA-256");
  // The link downloads the very file the hash names.
  const [pdfDownload] = await Promise.all([page.waitForEvent("download"), page.locator("[data-testid=report-sha256]").first().click()]);
  const pdfPath = join(shots, "server-report.pdf");
  await pdfDownload.saveAs(pdfPath);
  const pdf = readFileSync(pdfPath);
  assert.equal(pdf.subarray(0, 5).toString(), "%PDF-");
  assert.equal(sha256(pdf), shown, "the downloaded PDF hashes to what the page shows");
  const detail = await (await page.request.get(`${base}/api/v1/inspections/${args.inspection}`)).json();
  const text = execFileSync("/usr/bin/pdftotext", [pdfPath, "-"]).toString().replace(/\s+/g, " ");
  for (const f of detail.inspection.findings) assert.ok(text.includes(f.text.replace(/\s+/g, " ")), `finding in the server's PDF: ${f.text}`);
  for (const l of detail.inspection.signoffs) assert.ok(text.replace(/ /g, "").includes(l.hash), `sign-off link in the server's PDF: ${l.hash}`);
  for (const [item, r] of Object.entries(detail.inspection.responses)) {
    if (r.answer) assert.ok(text.includes(`${item} `), `item ${item} in the server's PDF`);
  }

  const [zip] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download the evidence pack (ZIP)" }).click()]);
  const zipPath = join(shots, "evidence-pack.zip");
  await zip.saveAs(zipPath);
  const packSha = (await page.locator("[data-testid=pack-sha256]").innerText()).trim();
  assert.equal(sha256(readFileSync(zipPath)), packSha, "the ZIP hashes to what the page shows");
  assert.equal(readFileSync(zipPath).subarray(0, 2).toString(), "PK");
  await page.screenshot({ path: join(shots, "dashboard-kept-reports.png") });
});

step("a trust lead sees only their trust, and another trust's inspection is exactly a missing one", async () => {
  const lead = await newPage();
  const p = lead.page;
  await signIn(p, "lead-rj1");
  await p.locator("tr[data-inspection]").first().waitFor();
  const trusts = await p.locator("tr[data-inspection] td:first-child").allInnerTexts();
  assert.ok(trusts.length > 0 && trusts.every((t) => t.startsWith("RJ1")), `only RJ1: ${trusts}`);
  assert.equal(await p.locator(`tr[data-inspection="${args.other}"]`).count(), 0);
  await p.screenshot({ path: join(shots, "dashboard-trust-lead.png"), fullPage: true });

  const random = crypto.randomUUID();
  const seen = async (id) => {
    await p.goto(`${base}/inspections/${id}`);
    await p.getByRole("heading", { name: "Inspection not found" }).waitFor();
    return p.locator("main").innerText();
  };
  assert.equal(await seen(args.other), await seen(random), "the page says the same for both");
  for (const suffix of ["", "/join"]) {
    const a = await p.request.get(`${base}/api/v1/inspections/${args.other}${suffix}`);
    const b = await p.request.get(`${base}/api/v1/inspections/${random}${suffix}`);
    assert.equal(a.status(), 404);
    assert.equal(b.status(), 404);
    assert.equal(await a.text(), await b.text(), `the API answers the same for both (${suffix || "detail"})`);
  }
  // Their own trust's inspection opens, read-only.
  await p.goto(`${base}/inspections/${args.inspection}`);
  await p.getByText("It cannot be changed here").waitFor();
  await lead.context.close();
});

step("the trust's telemetry charts render, with the figures the API gives", async () => {
  await page.goto(`${base}/inspections/${args.inspection}`);
  const charts = page.locator("[data-testid=telemetry-charts]");
  await charts.waitFor();
  const summary = await (await page.request.get(`${base}/api/v1/inspections/${args.inspection}/telemetry-summary`)).json();
  assert.ok(summary.endpoints && summary.alerts, "the demo trust has endpoint and alert telemetry");
  const n = (v) => v.toLocaleString("en-GB");
  const figure = async (chart, label) =>
    Number(await charts.locator(`[data-testid=chart-${chart}] tr`).filter({ has: page.getByRole("rowheader", { name: label, exact: true }) }).locator("td[data-value]").getAttribute("data-value"));
  assert.equal(await figure("os-support", "Unsupported"), summary.endpoints.support.unsupported);
  assert.equal(await figure("os-support", "Supported"), summary.endpoints.support.supported);
  assert.equal(await figure("smb1", "SMBv1 enabled"), summary.endpoints.smb1.enabled);
  assert.equal(await figure("onboarding", "Not onboarded"), summary.endpoints.onboarding.not_onboarded);
  assert.equal(await figure("onboarding", "Onboarded, sensor inactive"), summary.endpoints.onboarding.inactive);
  // Windows 10 22H2 is its own group, in its own colour: supported only with ESU evidence.
  const esu = "Supported only with ESU evidence (Windows 10 22H2)";
  assert.ok(summary.endpoints.support.esu_only > 0, "the demo trust has 22H2 devices");
  assert.equal(await figure("os-support", esu), summary.endpoints.support.esu_only);
  const esuFill = await charts.locator("[data-testid=chart-os-support] rect.wc-bar--esu").evaluate((r) => getComputedStyle(r).fill);
  assert.equal(esuFill, "rgb(255, 184, 28)", "amber, not the red of unsupported or the grey of unknown");
  assert.equal(await figure("alerts", "Not acknowledged, past 48 hours"), summary.alerts.open_overdue);
  const headline = await page.locator("[data-testid=telemetry-headline]").innerText();
  assert.ok(headline.includes(`${n(summary.endpoints.support.unsupported)} of ${n(summary.endpoints.devices)} endpoints`), headline);
  const alerts = await page.locator("[data-testid=alerts-headline]").innerText();
  assert.ok(alerts.includes(`${n(summary.alerts.overdue)} of ${n(summary.alerts.alerts)}`), alerts);
  // Every chart draws bars, and a row above zero has a bar above zero.
  for (const id of ["os-support", "os-builds", "smb1", "onboarding", "alerts"]) {
    const widths = await charts.locator(`[data-testid=chart-${id}] rect.wc-bar`).evaluateAll((rs) => rs.map((r) => r.getBBox().width));
    const values = await charts.locator(`[data-testid=chart-${id}] td[data-value]`).evaluateAll((ts) => ts.map((t) => Number(t.dataset.value)));
    assert.ok(widths.length > 0 && widths.length === values.length, `${id}: a bar per row`);
    values.forEach((v, i) => assert.equal(widths[i] > 0, v > 0, `${id} row ${i}: bar ${widths[i]} for ${v}`));
  }
  // The bars are decoration for screen readers: the table's figures are the text.
  assert.equal(await charts.locator("svg[aria-hidden=true]").count(), await charts.locator("svg").count());
  await charts.scrollIntoViewIfNeeded();
  await charts.screenshot({ path: join(shots, "dashboard-charts.png") });
});

const COMMENT = `Checked against the trust's asset register on ${new Date().toISOString().slice(0, 10)}`;

step("a reviewer comments on the inspection and an item; the comments are kept after a reload", async () => {
  const form = page.locator("[data-testid=comment-inspection-form]");
  // Bad input first: a clear error by the box, nothing sent.
  await form.getByRole("button", { name: "Add comment" }).click();
  await form.getByText("Enter your comment").waitFor();
  await form.getByLabel("Comment on the inspection").fill("x".repeat(20_001));
  await form.getByRole("button", { name: "Add comment" }).click();
  await form.getByText("must be 20,000 characters or fewer").waitFor();
  await form.getByLabel("Comment on the inspection").fill(COMMENT);
  await form.getByRole("button", { name: "Add comment" }).click();
  await form.getByText("Saved.").waitFor();
  await page.locator("[data-testid=comment]").filter({ hasText: COMMENT }).waitFor();
  await page.locator("[data-testid=review]").screenshot({ path: join(shots, "dashboard-review.png") });
  const item = page.locator(`[data-item="${args.item}"]`);
  await item.locator("summary").filter({ hasText: "Comment on this item" }).click();
  await item.getByLabel("Your comment on this item").fill(`${COMMENT} (item)`);
  await item.getByRole("button", { name: "Add comment" }).click();
  await item.locator("[data-testid=item-comment]").filter({ hasText: `${COMMENT} (item)` }).waitFor();
  await page.reload();
  await page.locator("[data-testid=comment]").filter({ hasText: COMMENT }).waitFor();
  await page.locator(`[data-item="${args.item}"] [data-testid=item-comment]`).filter({ hasText: `${COMMENT} (item)` }).waitFor();
  const detail = await (await page.request.get(`${base}/api/v1/inspections/${args.inspection}`)).json();
  const mine = detail.inspection.comments.filter((c) => c.text.startsWith(COMMENT));
  assert.equal(mine.length, 2, "both comments are in the document");
  assert.ok(mine.every((c) => c.by === "rita"), "stamped with the reviewer");
});

step("the history of an item three people answered lists every value with its author, device and time", async () => {
  await page.goto(`${base}/inspections/${args["history-inspection"]}`);
  const item = page.locator(`[data-item="${args["history-item"]}"]`);
  await item.locator("[data-testid=history] summary").click();
  const entries = item.locator("[data-testid=history-entry]").filter({ hasText: "Answer:" });
  await entries.nth(2).waitFor();
  const texts = await entries.allInnerTexts();
  assert.equal(texts.length, 3, `three answers: ${texts.join(" | ")}`);
  const expected = [
    ["Met", "ann"],
    ["Partly met", "ian"],
    ["Not met", "ivy"],
  ];
  expected.forEach(([answer, who], i) => {
    assert.match(texts[i], new RegExp(`Answer: ${answer}\\b`), texts[i]);
    assert.match(texts[i], new RegExp(`by ${who} on ${who}'s tablet, \\d`), `author, device and time: ${texts[i]}`);
  });
  await item.screenshot({ path: join(shots, "dashboard-history.png") });
  await page.goto(`${base}/inspections/${args.inspection}`);
  await page.locator(`[data-item="${args.item}"]`).waitFor();
});

step("a reviewer shares a submitted inspection with its trust from the page; a draft has no such button", async () => {
  // A page of its own, so the reviewer's open page stays on the contradiction.
  const own = await newPage();
  const page = own.page;
  await signIn(page, "rita");
  const list = await (await page.request.get(`${base}/api/v1/inspections?limit=200`)).json();
  const submitted = list.items.find((r) => r.state === "submitted");
  assert.ok(submitted, "the demo holds a submitted inspection");
  assert.equal(submitted.shared_at, null, "not shared yet");
  await page.goto(`${base}/inspections/${submitted.id}`);
  const review = page.locator("[data-testid=review]");
  await review.getByRole("button", { name: "Share with the trust" }).click();
  await review.getByText("The inspection is now shared with trust.").waitFor();
  const after = await (await page.request.get(`${base}/api/v1/inspections/${submitted.id}`)).json();
  assert.equal(after.record.state, "shared_with_trust", "sharing is the move to shared with the trust");
  assert.ok(after.record.shared_at, "and the record says since when");
  assert.equal(after.inspection.meta.state.values[0].value, "shared_with_trust", "made in the document");
  assert.equal(after.inspection.meta.state.values[0].by, "rita", "by the reviewer");
  // Sharing a draft is refused by the server, whatever a page offers.
  const draft = list.items.find((r) => r.state === "draft");
  assert.ok(draft, "the demo holds a draft");
  // Sent as the page would (a browser says where a write comes from: the server refuses
  // a cookie-signed write without it).
  const refused = await page.request.post(`${base}/api/v1/inspections/${draft.id}/share`, { headers: { origin: base } });
  assert.equal(refused.status(), 409, "a draft is never shared");
  assert.equal((await refused.json()).error.code, "illegal_transition");
  await page.goto(`${base}/inspections/${draft.id}`);
  await page.locator("h1").first().waitFor();
  assert.equal(await page.getByRole("button", { name: "Share with the trust" }).count(), 0, "no share button on a draft");
  await own.context.close();
});

const RESPONSE = "We are isolating the remaining Windows 7 imaging workstations on their own VLAN by March.";
let respondedFinding = null;

step("the trust lead writes a response to a finding, and the reviewer sees it", async () => {
  // The lead may respond once the inspection is shared with the trust: share it first if
  // the demo left it unshared.
  const before = await (await page.request.get(`${base}/api/v1/inspections/${args.inspection}`)).json();
  if (!before.record.shared_at) {
    const shared = await page.request.post(`${base}/api/v1/inspections/${args.inspection}/share`, { headers: { origin: base } });
    assert.equal(shared.status(), 200, "the reviewer shares the inspection");
  }
  respondedFinding = before.inspection.findings[0].id;
  const lead = await newPage();
  const p = lead.page;
  await signIn(p, "lead-rj1");
  await p.goto(`${base}/inspections/${args.inspection}`);
  const card = p.locator(`[data-finding="${respondedFinding}"]`);
  const box = card.locator("textarea");
  await box.waitFor();
  // Too long: refused with a clear error.
  await box.fill("y".repeat(20_001));
  await card.getByRole("button", { name: "Save response" }).click();
  await card.getByText("must be 20,000 characters or fewer").waitFor();
  await box.fill(RESPONSE);
  await card.getByRole("button", { name: "Save response" }).click();
  await card.getByText("Saved.").waitFor();
  await card.locator("[data-testid=trust-response]").filter({ hasText: RESPONSE }).waitFor();
  // The lead reads the trust's charts too, and may not comment.
  await p.locator("[data-testid=telemetry-charts]").waitFor();
  assert.equal(await p.locator("[data-testid=review]").count(), 0, "no review panel for a trust lead");
  assert.equal(await p.getByText("Comment on this finding").count(), 0, "no comment forms for a trust lead");
  await card.screenshot({ path: join(shots, "dashboard-trust-response.png") });
  await lead.context.close();

  // The reviewer's open page shows it (live), and so does a fresh load.
  const seen = page.locator(`[data-finding="${respondedFinding}"] [data-testid=trust-response]`).filter({ hasText: RESPONSE });
  await seen.waitFor({ timeout: 15_000 });
  await page.reload();
  await seen.waitFor();
  assert.equal(await page.getByRole("button", { name: "Save response" }).count(), 0, "a reviewer cannot write the trust's response");
});

step("corrective actions: raised from two findings, planned, sent back, accepted, reported on with a photo, verified and closed", async () => {
  const detail = await (await page.request.get(`${base}/api/v1/inspections/${args.inspection}`)).json();
  const findings = detail.inspection.findings;
  assert.ok(findings.length >= 2, "the demo's inspection has two findings");
  const due = new Date(Date.now() + 90 * 86_400_000).toISOString().slice(0, 10);
  await page.goto(`${base}/inspections/${args.inspection}`);
  const panel = page.locator("[data-testid=actions]");
  // The reviewer raises one from each of two findings.
  const raised = [];
  for (const [i, f] of findings.slice(0, 2).entries()) {
    const form = panel.locator("[data-testid=raise-action]");
    if ((await form.getAttribute("open")) === null) await form.locator("summary").click();
    await panel.locator("[data-testid=raise-finding]").selectOption(f.id);
    await panel.locator("[data-testid=raise-what]").fill(`Corrective action ${i + 1}: ${f.recommendation}`);
    await panel.locator("[data-testid=raise-due]").fill(due);
    await panel.locator("[data-testid=raise]").click();
    const card = panel.locator(".wc-action").filter({ hasText: `Corrective action ${i + 1}:` });
    await card.waitFor();
    raised.push(await card.getAttribute("data-action"));
  }
  const api = async (p, id) => (await p.request.get(`${base}/api/v1/actions/${id}`)).json();
  const first = await api(page, raised[0]);
  assert.equal(first.priority, findings[0].severity.values[0].value, "the priority is the finding's severity");
  assert.equal(first.raised_by, "rita");

  // The trust lead proposes a plan; the reviewer sends it back; the lead proposes again.
  const lead = await newPage();
  const p = lead.page;
  await signIn(p, "lead-rj1");
  await p.goto(`${base}/inspections/${args.inspection}`);
  const leadCard = p.locator(`[data-action="${raised[0]}"]`);
  const propose = async (steps) => {
    await leadCard.locator("[data-testid=plan-steps]").fill(steps);
    await leadCard.locator("[data-testid=plan-owner]").fill("Head of IT");
    await leadCard.locator("[data-testid=plan-date]").fill(due);
    await leadCard.locator("[data-testid=propose]").click();
    await p.locator(`[data-action="${raised[0]}"][data-status=proposed]`).waitFor();
  };
  await propose("Name a deputy; track each alert in the service desk").catch(async (e) => {
    await p.screenshot({ path: join(shots, "dashboard-actions-lead-failure.png"), fullPage: true });
    throw e;
  });
  assert.equal(await p.locator("[data-testid=raise-action]").count(), 0, "a trust lead raises nothing");
  assert.equal(await leadCard.locator("[data-testid=accept]").count(), 0, "nor accepts");
  await page.reload();
  const card = page.locator(`[data-action="${raised[0]}"]`);
  await card.locator("[data-testid=decision-note]").fill("Say who deputises at weekends");
  await card.locator("[data-testid=send-back]").click();
  await page.locator(`[data-action="${raised[0]}"][data-status=sent_back]`).waitFor();
  await p.reload();
  await propose("Name a deputy for weekdays and one for weekends; track each alert in the service desk");
  await page.reload();
  await card.locator("[data-testid=accept]").click();
  await page.locator(`[data-action="${raised[0]}"][data-status=accepted]`).waitFor();

  // The lead reports progress with a photo as evidence (made in the page, a PNG).
  await p.reload();
  const png = await p.evaluate(() => {
    const c = document.createElement("canvas");
    c.width = 64;
    c.height = 48;
    const g = c.getContext("2d");
    g.fillStyle = "#005eb8";
    g.fillRect(0, 0, 64, 48);
    g.fillStyle = "#ffeb3b";
    g.fillRect(8, 8, 24, 16);
    return c.toDataURL("image/png").split(",")[1];
  });
  await leadCard.locator("[data-testid=progress-text]").fill("The rota started on 1 December; 12 alerts acknowledged in time");
  await leadCard.locator("[data-testid=progress-evidence]").setInputFiles({ name: "rota.png", mimeType: "image/png", buffer: Buffer.from(png, "base64") });
  await leadCard.locator("[data-testid=report-progress]").click();
  await leadCard.locator("[data-testid=evidence]").waitFor();
  const reported = await api(p, raised[0]);
  const evidence = reported.steps.at(-1).evidence[0];
  assert.match(evidence, /^[0-9a-f]{64}$/, "evidence by SHA-256");
  await lead.context.close();

  // The reviewer reads the evidence, verifies and closes the action; the other stays open.
  const photo = await page.request.get(`${base}/api/v1/blobs/${evidence}`);
  assert.equal(photo.status(), 200, "the reviewer reads the evidence");
  await page.reload();
  await card.locator("[data-testid=close-note]").fill("Saw the rota and the service desk records");
  await card.locator("[data-testid=close]").click();
  await page.locator(`[data-action="${raised[0]}"][data-status=closed]`).waitFor();
  const closed = await api(page, raised[0]);
  assert.deepEqual(
    closed.steps.map((s) => `${s.step} ${s.by}`),
    ["raise rita", "propose lead-rj1", "send_back rita", "propose lead-rj1", "accept rita", "progress lead-rj1", "close rita"],
  );
  assert.equal((await api(page, raised[1])).status, "raised", "the other action is still open");
  await panel.screenshot({ path: join(shots, "dashboard-actions.png") });
  openAction = raised[1];
});

/** The action left open by the step above. */
let openAction = null;

/** Asks the Rust test to do `what` behind the server's back; waits for its answer. */
async function ask(what, want) {
  process.stdout.write(`wardcheck-e2e: ${what}\n`);
  const lines = createInterface({ input: process.stdin });
  const answer = await new Promise((resolve) => lines.once("line", resolve));
  lines.close();
  assert.equal(answer.trim(), want);
}

step("the national picture: the open action, its due date passed, stands out as overdue; every figure is the API's; sorting, filters, the trust page; a trust lead sees only their trust", async () => {
  assert.ok(openAction, "an open action from the step before");
  await ask(`make-overdue ${openAction}`, "overdue");
  await page.goto(`${base}/national`);
  await page.getByRole("heading", { name: "National picture" }).waitFor();
  const rows = page.locator("[data-testid=national-row]");
  await rows.first().waitFor();
  const national = await (await page.request.get(`${base}/api/v1/national`)).json();
  assert.equal(await rows.count(), national.trusts.length, "a row per trust");
  const rj1 = page.locator("[data-testid=national-row][data-trust=RJ1]");
  const overdue = rj1.locator("[data-testid=national-overdue]");
  assert.equal(await overdue.getAttribute("data-value"), "1", "RJ1's overdue action");
  assert.match(await overdue.innerText(), /1 overdue/);
  assert.equal(await overdue.locator(".nhsuk-tag--red").count(), 1, "it stands out");
  // Every row's figures are the API's.
  for (const t of national.trusts) {
    const row = page.locator(`[data-testid=national-row][data-trust=${t.ods_code}]`);
    const cell = async (id) => row.locator(`[data-testid=national-${id}]`).getAttribute("data-value");
    assert.equal(await cell("open"), String(t.actions.open), `${t.ods_code} open`);
    assert.equal(await cell("overdue"), String(t.actions.overdue), `${t.ods_code} overdue`);
    assert.equal(await cell("contradicted"), String(t.reported_inspection?.contradicted ?? ""), `${t.ods_code} contradicted`);
    assert.equal(await cell("unsupported"), String(t.endpoints?.unsupported ?? ""), `${t.ods_code} unsupported`);
    assert.equal(await cell("smb1"), String(t.endpoints?.smb1_enabled ?? ""), `${t.ods_code} smb1`);
    assert.equal(await cell("onboarded"), String(t.endpoints?.onboarded ?? ""), `${t.ods_code} onboarded`);
    assert.equal(await cell("alerts"), String(t.alerts?.overdue ?? ""), `${t.ods_code} alerts`);
  }
  // Sorted by overdue actions first: RJ1 leads. Sorting by contradicted items puts the
  // trust with the most first.
  assert.equal(await rows.first().getAttribute("data-trust"), "RJ1");
  await page.locator("[data-testid=sort-contradicted]").click();
  const most = [...national.trusts].sort((a, b) => (b.reported_inspection?.contradicted ?? -1) - (a.reported_inspection?.contradicted ?? -1))[0];
  assert.equal(await rows.first().locator("[data-testid=national-contradicted]").getAttribute("data-value"), String(most.reported_inspection.contradicted));
  // Trends: a line per figure over the snapshots.
  assert.ok(national.endpoint_days.length >= 3, "the demo's three snapshots");
  assert.ok((await rj1.locator(".wc-spark polyline").count()) >= 3, "sparklines drawn");
  await page.screenshot({ path: join(shots, "dashboard-national.png"), fullPage: true });
  // The region filter, in the address.
  await page.locator("#filter-region").selectOption("London");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.waitForURL(/\/national\?region=London/);
  await page.locator("[data-testid=national-status]").filter({ hasText: /trusts?;/ }).waitFor();
  const london = national.trusts.filter((t) => t.region === "London").length;
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid=national-row]").length === n, london);
  // The trust page, from its row.
  await page.locator("[data-testid=national-row][data-trust=RJ1] a").first().click();
  await page.waitForURL(/\/trusts\/RJ1$/);
  await page.locator("[data-testid=trust-name]").waitFor();
  assert.match(await page.locator("[data-testid=trust-actions-count]").innerText(), /^1 open, 1 overdue/);
  assert.equal(await page.locator("[data-testid=trend-unsupported] tbody tr").count(), national.endpoint_days.length);
  await page.locator("[data-testid=chart-os-support]").waitFor();
  await page.screenshot({ path: join(shots, "dashboard-trust.png"), fullPage: true });

  // RJ1's lead: only RJ1, and another trust's page is a missing one.
  const lead = await newPage();
  await signIn(lead.page, "lead-rj1");
  await lead.page.goto(`${base}/national`);
  await lead.page.locator("[data-testid=national-row]").first().waitFor();
  assert.deepEqual(await lead.page.locator("[data-testid=national-row]").evaluateAll((rs) => rs.map((r) => r.dataset.trust)), ["RJ1"]);
  // A follow-up visit to RJ1 (created by the Rust test, as the command line does) shows
  // the open action, overdue, among those from other visits.
  process.stdout.write("wardcheck-e2e: follow-up\n");
  const followUp = await new Promise((resolve) => {
    const lines = createInterface({ input: process.stdin });
    lines.once("line", (l) => {
      lines.close();
      resolve(l.trim());
    });
  });
  assert.match(followUp, /^[0-9a-f-]{36}$/, "the follow-up's id");
  await page.goto(`${base}/inspections/${followUp}`);
  const carried = page.locator(`[data-testid=carried-actions] [data-action="${openAction}"]`);
  await carried.waitFor();
  assert.equal(await carried.locator("[data-testid=overdue]").count(), 1, "overdue there too");
  await page.locator("[data-testid=actions]").screenshot({ path: join(shots, "dashboard-follow-up.png") });
  await lead.page.goto(`${base}/trusts/RTH`);
  await lead.page.getByRole("heading", { name: "Page not found" }).waitFor();
  assert.equal((await lead.page.request.get(`${base}/api/v1/trusts/RTH`)).status(), 404);
  await lead.context.close();
});

step("search finds the open action by its words, in another letter case, and leads to its inspection; too short a search is refused on the page", async () => {
  await page.goto(`${base}/`);
  await page.locator("[data-testid=nav-search]").click();
  await page.waitForURL(/\/search$/);
  await page.locator("[data-testid=search-q]").fill("CORRECTIVE ACTION 2");
  await page.locator("[data-testid=search-go]").click();
  await page.waitForURL(/\/search\?q=/);
  const hit = page.locator(`[data-testid=search-hit][data-kind=action][data-target="${openAction}"]`);
  await hit.waitFor();
  await hit.locator("a").click();
  await page.waitForURL(new RegExp(`/inspections/${args.inspection}$`));
  // One character: the server's 400 is shown, not a blank page.
  refusalExpected = true;
  await page.goto(`${base}/search?q=x`);
  await page.locator(".nhsuk-error-summary").filter({ hasText: "2 to 100 characters" }).waitFor();
  refusalExpected = false;
});

step("a reviewer plans an inspection with visit dates and a team; a mistake is refused and nothing kept; the assigned inspector's list has it", async () => {
  const count = async () => (await (await page.request.get(`${base}/api/v1/inspections?limit=200`)).json()).items.length;
  const before = await count();
  await page.goto(`${base}/`);
  await page.locator("[data-testid=nav-plan]").click();
  await page.waitForURL(/\/plan$/);
  const day = (n) => new Date(Date.now() + n * 86_400_000).toISOString().slice(0, 10);
  await page.locator("[data-testid=plan-trust]").fill("RTH");
  await page.locator("[data-testid=plan-sites]").fill("RTH08");
  await page.locator("[data-testid=plan-start]").fill(day(14));
  await page.locator("[data-testid=plan-end]").fill(day(16));
  await page.locator("[data-testid=plan-lead]").fill("ann");
  // A team member who does not exist: the server refuses, the page says why.
  await page.locator("[data-testid=plan-team]").fill("nobody-here");
  refusalExpected = true;
  await page.locator("[data-testid=plan-submit]").click();
  await page.locator("[data-testid=plan-error]").filter({ hasText: "nobody-here" }).waitFor();
  refusalExpected = false;
  assert.equal(await count(), before, "nothing kept of a refused plan");
  await page.locator("[data-testid=plan-team]").fill("");
  await page.locator("[data-testid=plan-submit]").click();
  await page.waitForURL(/\/inspections\/[0-9a-f-]{36}$/);
  const id = new URL(page.url()).pathname.split("/").pop();
  await page.locator("[data-testid=visit]").filter({ hasText: "to" }).waitFor();
  assert.match(await page.locator("[data-testid=team]").innerText(), /lead inspector/);
  const detail = await (await page.request.get(`${base}/api/v1/inspections/${id}`)).json();
  assert.equal(detail.inspection.meta.visit_start, day(14));
  assert.equal(detail.inspection.meta.visit_end, day(16));
  assert.deepEqual(detail.record.sites, ["RTH08"]);
  // The assigned inspector's list (what the field app syncs and keeps offline) has it.
  const ann = await newPage();
  const login = await ann.context.request.post(`${base}/api/v1/login`, { data: { user: "ann", password: args.password, device: "planning test" }, headers: { origin: base } });
  assert.equal(login.status(), 200);
  const listed = await (await ann.context.request.get(`${base}/api/v1/inspections?limit=200`)).json();
  assert.ok(listed.items.some((r) => r.id === id && r.lead === "ann"), "ann's list has the planned visit, ann leading");
  await ann.context.close();
  await page.screenshot({ path: join(shots, "dashboard-planned.png"), fullPage: true });
  // Rescheduled from its page: the new dates come back through the live update.
  const shownBefore = await page.locator("[data-testid=visit]").innerText();
  await page.locator("[data-testid=reschedule]").click();
  const form = page.locator("[data-testid=reschedule-form]");
  await form.getByLabel("First day").fill(day(21));
  await form.getByLabel("Last day (optional)").fill(day(22));
  await form.getByRole("button", { name: "Move the visit" }).click();
  await form.waitFor({ state: "detached" });
  const moved = await (await page.request.get(`${base}/api/v1/inspections/${id}`)).json();
  assert.equal(moved.inspection.meta.visit_start, day(21));
  assert.equal(moved.inspection.meta.visit_end, day(22));
  await page.waitForFunction((b) => document.querySelector("[data-testid=visit]")?.textContent !== b, shownBefore);
  assert.ok(moved.inspection.meta.visit_start > detail.inspection.meta.visit_start, "moved later");
  // Called off: the state says so, and the page offers no more changes of the visit.
  page.once("dialog", (d) => d.accept());
  await page.locator("[data-testid=cancel-visit]").click();
  await page.locator("[data-testid=state]").filter({ hasText: "Cancelled" }).waitFor();
  await page.locator("[data-testid=reschedule]").waitFor({ state: "detached" });
  const cancelled = await (await page.request.get(`${base}/api/v1/inspections/${id}`)).json();
  assert.equal(cancelled.record.state, "cancelled");
});

step("an admin adds a user, who sets a password with the one-time code and signs in; the admin disables them, searches the audit log, exports it and revokes the device", async () => {
  const admin = await newPage();
  const a = admin.page;
  await signIn(a, "admin");
  await a.getByRole("link", { name: "Administration" }).click();
  await a.getByRole("heading", { name: "Administration", level: 1 }).waitFor();
  const add = a.locator("[data-testid=add-user]");
  await add.getByLabel("User name").fill("nora");
  await add.getByLabel("Display name").fill("Nora Newcomer");
  await add.getByLabel("Role").selectOption("inspector");
  await add.getByRole("button", { name: "Add user" }).click();
  const code = (await a.locator("[data-testid=one-time-code]").innerText()).trim();
  assert.match(code, /^[1-9A-HJ-NP-Za-km-z]{16}$/, "a 16-character base58 code");
  await a.locator("[data-testid=admin-user][data-user=nora]").waitFor();

  // Nora, on a browser of her own: the code turns into a password.
  const nora = await newPage();
  const n = nora.page;
  await n.goto(`${base}/signin`);
  await n.getByRole("link", { name: "Set your password with a one-time code" }).click();
  await n.getByRole("heading", { name: "Set your password" }).waitFor();
  await n.getByLabel("User name").fill("nora");
  await n.getByLabel("One-time code").fill(code);
  await n.getByLabel("New password (at least 12 characters)").fill("nora's own password");
  await n.getByLabel("The new password again").fill("nora's own password");
  await n.getByRole("button", { name: "Set password" }).click();
  await n.locator("[data-testid=password-set]").waitFor();
  await n.getByRole("link", { name: "Sign in" }).click();
  await n.getByLabel("User name").fill("nora");
  await n.getByLabel("Password").fill("nora's own password");
  await n.getByLabel("Password").press("Enter");
  await n.getByRole("heading", { name: "Inspections", level: 1 }).waitFor();

  // The admin disables her: her session is refused.
  await a.reload();
  const row = a.locator("[data-testid=admin-user][data-user=nora]");
  a.once("dialog", (d) => d.accept());
  await row.getByRole("button", { name: "Disable nora" }).click();
  await row.filter({ hasText: "Disabled" }).waitFor();
  assert.equal((await n.request.get(`${base}/api/v1/me`)).status(), 401, "a disabled user's session is refused");

  // The audit log: her password, found by user; exported as CSV with the same events.
  const audit = a.locator("[data-testid=admin-audit]");
  await audit.getByLabel("User", { exact: true }).fill("nora");
  await audit.getByRole("button", { name: "Search the log" }).click();
  await audit.locator("[data-testid=audit-event]", { hasText: "password_set" }).first().waitFor();
  const [csv] = await Promise.all([a.waitForEvent("download"), audit.locator("[data-testid=audit-csv]").click()]);
  const csvPath = join(shots, "audit.csv");
  await csv.saveAs(csvPath);
  const rows = parseCsv(readFileSync(csvPath, "utf8"));
  assert.deepEqual(rows[0], ["seq", "at", "actor", "device", "action", "target", "from", "outcome", "detail"]);
  const events = rows.slice(1).filter((r) => r.length > 1);
  assert.ok(events.length >= 2 && events.every((r) => r[2] === "nora"), "only nora's events");
  assert.ok(events.some((r) => r[4] === "password_set"), "her password in the export");

  // Her device, with when it was last seen; revoked from the page.
  const device = a.locator("[data-testid=admin-device]", { hasText: "nora" }).first();
  await device.waitFor();
  a.once("dialog", (d) => d.accept());
  await device.getByRole("button", { name: /^Revoke device/ }).click();
  await device.locator("[data-testid=device-state]", { hasText: "Revoked" }).waitFor();
  await a.screenshot({ path: join(shots, "dashboard-admin.png"), fullPage: true });
  await nora.context.close();
  await admin.context.close();
});

step("signing out revokes the session: the page goes to sign in and the API answers 401", async () => {
  const [cookie] = (await reviewer.context.cookies(base)).filter((c) => c.name === "wardcheck_token");
  assert.ok(cookie?.value, "signed in with the HttpOnly cookie");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/signin/);
  await page.getByRole("heading", { name: "Sign in to Wardcheck review" }).waitFor();
  const me = await page.request.get(`${base}/api/v1/me`);
  assert.equal(me.status(), 401, "no session in the browser");
  assert.equal((await reviewer.context.cookies(base)).filter((c) => c.name === "wardcheck_token").length, 0, "the cookie is gone");
  // A copy of the old token is refused too: the server revoked it.
  const old = await fetch(`${base}/api/v1/me`, { headers: { Authorization: `Bearer ${cookie.value}` } });
  assert.equal(old.status, 401, "the old token is revoked");
  // And the inspection page asks to sign in again.
  await page.goto(`${base}/inspections/${args.inspection}`);
  await page.waitForURL(/\/signin\?next=/);
});

let failed = 0;
for (const [name, fn] of steps) {
  try {
    await fn();
    log(`ok - ${name}`);
  } catch (e) {
    failed++;
    log(`FAILED - ${name}\n${e?.stack ?? e}`);
    await page.screenshot({ path: join(shots, "dashboard-failure.png"), fullPage: true }).catch(() => {});
    break;
  }
}
if (!failed && problems.length) {
  failed++;
  log(`FAILED - the pages logged problems:\n${problems.join("\n")}`);
}
writeFileSync(join(shots, "dashboard-result.txt"), failed ? "failed\n" : "passed\n");
await browser.close();
process.exit(failed ? 1 : 0);

/** RFC 4180: fields separated by commas, records by CRLF, quoted fields with "" for ". */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell === "") quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else cell += c;
  }
  if (cell || row.length) rows.push([...row, cell]);
  return rows;
}
