// Words for the values the server sends, as people read them.
import type { Answer, DeviceStatus, Role, Severity, State, Verdict } from "./api";

export const STATE_LABEL: Record<State, string> = {
  draft: "Draft",
  in_progress: "In progress",
  submitted: "Submitted",
  shared_with_trust: "Shared with trust",
  closed: "Closed",
  cancelled: "Cancelled",
};

export function stateLabel(s: string): string {
  return STATE_LABEL[s as State] ?? s;
}

export function answerLabel(a: Answer | null | undefined): string {
  if (!a) return "Not answered";
  switch (a.kind) {
    case "met":
      return "Met";
    case "partly-met":
      return "Partly met";
    case "not-met":
      return "Not met";
    case "not-applicable":
      return `Not applicable: ${a.reason}`;
    case "number":
      return String(a.value);
    case "date":
      return a.value;
    case "text":
      return a.value;
  }
}

/** The NHS tag colour for an answer. */
export function answerColour(a: Answer | null | undefined): string {
  switch (a?.kind) {
    case "met":
      return "green";
    case "partly-met":
      return "yellow";
    case "not-met":
      return "red";
    default:
      return "grey";
  }
}

export const VERDICT_LABEL: Record<Verdict, string> = {
  corroborated: "Corroborated",
  contradicted: "Contradicted",
  telemetry_silent: "Telemetry silent",
  insufficient_coverage: "Insufficient coverage",
  no_telemetry: "No telemetry",
  unanswered: "Not answered",
};

export const VERDICT_COLOUR: Record<Verdict, string> = {
  corroborated: "green",
  contradicted: "red",
  telemetry_silent: "blue",
  insufficient_coverage: "yellow",
  no_telemetry: "grey",
  unanswered: "white",
};

export const DEVICE_LABEL: Record<DeviceStatus, string> = {
  matched: "Matched",
  unmanaged: "Unmanaged",
  build_differs: "Build differs",
  stale: "Stale record",
  no_telemetry: "No telemetry",
};

export const DEVICE_COLOUR: Record<DeviceStatus, string> = {
  matched: "green",
  unmanaged: "red",
  build_differs: "orange",
  stale: "yellow",
  no_telemetry: "grey",
};

export const SEVERITY_COLOUR: Record<Severity, string> = {
  low: "blue",
  medium: "yellow",
  high: "orange",
  critical: "red",
};

export function roleLabel(r: Role): string {
  switch (r.role) {
    case "trust-lead":
      return `Trust lead, ${r.trust ?? "?"}`;
    case "reviewer":
      return "Reviewer";
    case "inspector":
      return "Inspector";
    case "admin":
      return "Administrator";
    default:
      return String(r.role);
  }
}

// Dates are written out by hand, not with `Intl` or `toLocale*String`: the first use of
// `Intl` in a page costs WebKit about 3.5 MiB that stays (ICU's formatters and data),
// which the field app's idle-memory aim cannot spare (BENCHMARKS.md, "Field app").
// The words are those of en-GB, as `Intl` wrote them ("Sept" included).
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sept", "Oct", "Nov", "Dec"];
const two = (n: number) => String(n).padStart(2, "0");

/** A `Date` in UTC as "8 Nov 2026". */
function utcDay(d: Date): string {
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}

/** `2026-11-08T10:50:00Z` as "8 Nov 2026, 10:50" (UTC: inspections cross no time zone). */
export function when(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${utcDay(d)}, ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
}

/** `2026-11-08` (or a full timestamp) as "8 Nov 2026", in UTC. */
export function day(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
  if (Number.isNaN(d.getTime())) return iso;
  return utcDay(d);
}

/** A `Date` as "14:32" on the 24-hour clock, in the device's own time zone. */
export function localClock(d: Date): string {
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
