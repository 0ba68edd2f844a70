// CSV export of an inspection, made in the browser from what the page already holds.
//
// Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` as a formula (and tab
// or CR can start one after import): an inspector's note such as
// `=HYPERLINK("http://evil", "click")` must reach the reviewer's spreadsheet as text.
// Such cells get a leading `'` (OWASP's advice), then every cell is quoted as RFC 4180
// says: in double quotes when it holds a comma, quote, CR or LF, quotes doubled; lines
// end with CRLF.
import type { Detail, Join } from "../../lib/api";
import type { Checklist } from "../../lib/checklists";
import { answerLabel, VERDICT_LABEL } from "../../lib/format";

const FORMULA_START = /^[=+\-@\t\r]/;

/** One cell, neutralised and quoted. */
export function csvCell(value: unknown): string {
  let s = value === null || value === undefined ? "" : String(value);
  if (FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function toCsv(rows: unknown[][]): string {
  return rows.map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

/** Every item of the checklist (inspection scope: one row; device scope: one row per
 * sampled device), with its answer, note, photos and telemetry verdict; then every
 * finding. */
export function inspectionCsv(detail: Detail, join: Join | null, checklist: Checklist | null): string {
  const rows: unknown[][] = [
    [
      "record",
      "section",
      "item",
      "prompt",
      "device",
      "answer",
      "answered_by",
      "answered_at",
      "note",
      "photos_sha256",
      "verdict",
      "telemetry",
    ],
  ];
  const insp = detail.inspection;
  if (!insp) return toCsv(rows);
  const verdicts = new Map((join?.items ?? []).map((j) => [j.item, j]));
  const sections =
    checklist?.sections ??
    [{ id: "", title: "", scope: "inspection" as const, items: Object.keys(insp.responses).map((id) => ({ id, prompt: id })) }];
  for (const s of sections) {
    for (const item of s.items) {
      const j = verdicts.get(item.id);
      const verdict = j ? VERDICT_LABEL[j.verdict] : "";
      if (s.scope === "device") {
        for (const d of insp.devices) {
          const o = d.observations[item.id];
          if (!o) continue;
          const v = o.values[0];
          rows.push(["answer", s.title, item.id, item.prompt, d.hostname.values[0]?.value ?? "", answerLabel(v.value.answer), v.by, v.at, v.value.note, "", verdict, j?.summary ?? ""]);
        }
        continue;
      }
      const r = insp.responses[item.id];
      // An item the inspection does not hold (a section that does not apply to the trust).
      if (!r) continue;
      const a = r?.answer?.values ?? [];
      const answer = a.length > 1 ? a.map((c) => `${answerLabel(c.value)} (${c.by})`).join(" | conflict | ") : answerLabel(a[0]?.value);
      rows.push([
        "answer",
        s.title,
        item.id,
        item.prompt,
        "",
        answer,
        a[0]?.by ?? "",
        a[0]?.at ?? "",
        r?.note ?? "",
        (r?.photos ?? []).map((p) => p.value.hash).join(" "),
        verdict,
        j?.summary ?? "",
      ]);
    }
  }
  rows.push([]);
  rows.push(["record", "severity", "finding", "recommendation", "items", "by", "at", "trust_response"]);
  for (const f of insp.findings) {
    const response = detail.trust_response?.findings?.[f.id]?.values?.[0]?.value ?? "";
    rows.push(["finding", f.severity.values[0]?.value ?? "", f.text, f.recommendation, f.items.join(" "), f.created.by, f.created.at, response]);
  }
  return toCsv(rows);
}

/** Offers `text` as a file download (a Blob URL: no server round trip, no inline script). */
export function download(name: string, text: string) {
  // A byte order mark, so Excel reads the file as UTF-8.
  const blob = new Blob(["\ufeff", text], { type: "text/csv;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
