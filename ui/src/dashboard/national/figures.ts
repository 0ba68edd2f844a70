// How the national and trust pages write their figures, and line a trust's points up
// with the snapshot days (a trust with no rows in a snapshot has no point for it).
import type { AlertPoint, EndpointPoint } from "../../lib/api";

export const count = (v: number) => v.toLocaleString("en-GB");

/** A share (0 to 1) as a percentage: one decimal under 10%, none above. */
export function percent(v: number): string {
  const p = 100 * v;
  if (p === 0) return "0%";
  if (p > 0 && p < 0.1) return "under 0.1%";
  return `${p.toFixed(p < 10 ? 1 : 0)}%`;
}

/** `points`' values on each of `days` (null where the trust has no point). */
export function onDays<P extends EndpointPoint | AlertPoint>(
  days: string[],
  points: P[],
  value: (p: P) => number | null,
): (number | null)[] {
  const byDay = new Map(points.map((p) => [p.as_of, p]));
  return days.map((d) => {
    const p = byDay.get(d);
    return p ? value(p) : null;
  });
}

export const TYPE_LABEL: Record<string, string> = {
  acute: "Acute",
  ambulance: "Ambulance",
  "mental-health": "Mental health",
  community: "Community",
  "major-trauma-centre": "Major trauma centre",
};
