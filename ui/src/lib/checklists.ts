// Prompts and section titles for the checklists this build carries (made from
// ../checklists/*.toml by scripts/checklists.mjs). The server's views name items only
// by id; a checklist this build does not carry shows ids in place of prompts.
import data from "../generated/checklists.json";

export interface ChecklistItem {
  id: string;
  prompt: string;
  severity: string;
  answer: string;
  unit: string | null;
  telemetry: string | null;
}

export interface ChecklistSection {
  id: string;
  title: string;
  scope: "inspection" | "device";
  items: ChecklistItem[];
}

export interface Checklist {
  id: string;
  version: string;
  title: string;
  sections: ChecklistSection[];
}

const all = data as unknown as Record<string, Checklist>;

/** Every checklist this build carries, by id and version. */
export function allChecklists(): Checklist[] {
  return Object.values(all).sort((a, b) => `${a.id}@${a.version}`.localeCompare(`${b.id}@${b.version}`));
}

/** The checklist `id@version`, if this build carries it. */
export function checklist(id: string, version: string): Checklist | null {
  return all[`${id}@${version}`] ?? null;
}

/** Item id to its prompt, for every item of `c`. */
export function promptsOf(c: Checklist | null): Map<string, ChecklistItem> {
  const m = new Map<string, ChecklistItem>();
  for (const s of c?.sections ?? []) for (const i of s.items) m.set(i.id, i);
  return m;
}
