// What one entry of a field's history says, in words: shared by the dashboard and the
// field app (`HistoryList.svelte`).
import type { Answer, HistoryEntry } from "./api/types";
import { answerLabel } from "./format";

const FIELD: Record<string, string> = {
  answer: "Answer",
  note: "Note",
  photo: "Photo",
  observation: "Observation",
  severity: "Severity",
  text: "Finding",
  recommendation: "Recommendation",
  link: "Linked item",
  hostname: "Hostname",
  build_seen: "Build seen",
};

type Stamped = { value?: unknown; resolved?: { by?: string } } | null;

/** The field's name and the value it took, as a person reads them. */
export function describeEntry(e: HistoryEntry): { field: string; value: string } {
  const v = e.value as Stamped;
  const inner = v && typeof v === "object" ? v.value : undefined;
  let value: string;
  switch (e.field) {
    case "answer":
      value = answerLabel(inner as Answer);
      break;
    case "observation": {
      const o = inner as { answer?: Answer; note?: string } | undefined;
      value = `${answerLabel(o?.answer)}${o?.note ? `: ${o.note}` : ""}`;
      break;
    }
    case "note":
    case "text":
    case "recommendation":
      value = typeof e.value === "string" && e.value ? e.value : "(empty)";
      break;
    case "photo": {
      const p = inner as { caption?: string; hash?: string } | undefined;
      value = e.value === null ? `removed ${e.about?.slice(0, 12) ?? ""}` : `added ${p?.caption || (e.about ?? "").slice(0, 12)}`;
      break;
    }
    case "link":
      value = e.value === null ? `unlinked ${e.about ?? ""}` : `linked ${e.about ?? ""}`;
      break;
    default:
      value = inner === undefined || inner === null ? "(none)" : String(inner);
  }
  if (v && typeof v === "object" && v.resolved?.by) value += ` (picked by ${v.resolved.by})`;
  const about = e.field === "observation" && e.about ? ` (${e.about.slice(0, 8)})` : "";
  return { field: `${FIELD[e.field] ?? e.field}${about}`, value };
}
