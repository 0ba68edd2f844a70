// The inspection page's view of an inspection: the checklist's sections and items in
// order, each with its answer, note, photos, comments and telemetry verdict.
import type { Comment, Detail, DeviceMatch, DeviceView, Field, ItemJoin, Join, Observation, ResponseView } from "../../lib/api";
import { checklist, promptsOf, type Checklist } from "../../lib/checklists";

export interface ItemModel {
  id: string;
  prompt: string;
  severity: string | null;
  response: ResponseView | null;
  /** Device-scope items: each sampled device's observation. */
  observations: { device: DeviceView; observation: Field<Observation> }[];
  join: ItemJoin | null;
  comments: Comment[];
}

export interface SectionModel {
  id: string;
  title: string;
  scope: "inspection" | "device";
  items: ItemModel[];
}

export interface InspectionModel {
  checklist: Checklist | null;
  sections: SectionModel[];
  /** Item id to prompt (or the id itself when this build has no such checklist). */
  prompt: (item: string) => string;
  device: (id: string) => DeviceMatch | null;
}

export function model(detail: Detail, join: Join | null): InspectionModel {
  const c = checklist(detail.record.checklist_id, detail.record.checklist_version);
  const prompts = promptsOf(c);
  const insp = detail.inspection;
  const joins = new Map((join?.items ?? []).map((j) => [j.item, j]));
  const comments = (insp?.comments ?? []).filter((x) => x.target.kind === "item");
  const item = (id: string, prompt: string, severity: string | null, scope: string): ItemModel => ({
    id,
    prompt,
    severity,
    response: insp?.responses[id] ?? null,
    observations:
      scope === "device"
        ? (insp?.devices ?? []).flatMap((d) => (d.observations[id] ? [{ device: d, observation: d.observations[id] }] : []))
        : [],
    join: joins.get(id) ?? null,
    comments: comments.filter((x) => "id" in x.target && x.target.id === id),
  });
  let sections: SectionModel[];
  if (c) {
    sections = c.sections
      // The sections the inspection holds: the server leaves out those that do not apply
      // to the trust (an acute trust's inspection has no ambulance section).
      .filter((s) => s.scope === "device" || !insp || s.items.some((i) => i.id in insp.responses))
      .map((s) => ({
        id: s.id,
        title: s.title,
        scope: s.scope,
        items: s.items.map((i) => item(i.id, i.prompt, i.severity, s.scope)),
      }));
  } else {
    // A checklist this build does not carry: the items by id, in the server's order.
    sections = [
      {
        id: "items",
        title: `${detail.record.checklist_id}@${detail.record.checklist_version}`,
        scope: "inspection",
        items: Object.keys(insp?.responses ?? {}).map((id) => item(id, id, null, "inspection")),
      },
    ];
  }
  const devices = new Map((join?.devices ?? []).map((d) => [d.device, d]));
  return {
    checklist: c,
    sections,
    prompt: (id) => prompts.get(id)?.prompt ?? id,
    device: (id) => devices.get(id) ?? null,
  };
}
