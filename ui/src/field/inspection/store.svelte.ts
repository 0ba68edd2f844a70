// One open inspection: its view and checklist, and every edit the inspector makes.
// Each command answers with the whole new view, which replaces the old one; nothing
// here computes what the document holds.
import {
  AppError,
  conflictsOf,
  type ChecklistForApp,
  type ChecklistItemForApp,
  type ChecklistSectionForApp,
  type CommentTarget,
  type FieldBackend,
  type FieldRef,
} from "../../lib/api/field-types";
import type { Answer, InspectionView, Severity } from "../../lib/api/types";

/** How an item is answered: compliance buttons, or a number, date or text. */
export type AnswerKind = "compliance" | "number" | "date" | "text";

export interface AnswerSpec {
  kind: AnswerKind;
  unit: string | null;
  /** For a number: the least and most it may be, where the checklist says. */
  min?: number | null;
  max?: number | null;
}

const COMPLIANCE: AnswerSpec = { kind: "compliance", unit: null };
const KINDS: readonly string[] = ["compliance", "number", "date", "text"];

export class InspectionStore {
  view = $state.raw<InspectionView | null>(null);
  checklist = $state.raw<ChecklistForApp | null>(null);
  error = $state.raw<AppError | null>(null);
  loading = $state(false);
  /** Bumped by every edit, so a read that started before one never overwrites its result. */
  #edits = 0;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly backend: FieldBackend,
    readonly id: string,
  ) {}

  async load(): Promise<void> {
    this.loading = true;
    try {
      const open = await this.backend.openInspection(this.id);
      this.checklist = open.checklist;
      this.view = open.view;
      this.error = null;
    } catch (e) {
      this.error = AppError.from(e);
    } finally {
      this.loading = false;
    }
  }

  /**
   * Reads the view again (after a sync brought other people's changes): after the edits
   * already queued, and dropped if the inspector made another meanwhile.
   */
  refresh(): Promise<void> {
    const read = this.#queue.then(async () => {
      const edits = this.#edits;
      try {
        const view = (await this.backend.openInspection(this.id)).view;
        if (edits === this.#edits) this.view = view;
      } catch {
        // Keep what is shown; the next sync tries again.
      }
    });
    this.#queue = read;
    return read;
  }

  /**
   * Runs edits one at a time, in the order the inspector made them, so each new view
   * replaces the one before it and never a later one.
   */
  private run<T>(edit: () => Promise<T>): Promise<T> {
    this.#edits += 1;
    const result = this.#queue.then(edit).catch((e) => {
      throw AppError.from(e);
    });
    this.#queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  private apply(edit: () => Promise<InspectionView>): Promise<InspectionView> {
    return this.run(async () => {
      const v = await edit();
      this.view = v;
      return v;
    });
  }

  setAnswer(item: string, answer: Answer) {
    return this.apply(() => this.backend.setAnswer(this.id, item, answer));
  }
  editNote(item: string, text: string) {
    return this.apply(() => this.backend.editNote(this.id, item, text));
  }
  addPhoto(item: string, name: string, bytes: Uint8Array) {
    return this.run(async () => {
      const added = await this.backend.addPhoto(this.id, item, name, bytes);
      this.view = added.view;
      return added;
    });
  }
  addDevice(hostname: string, buildSeen: string) {
    return this.apply(() => this.backend.addDevice(this.id, hostname, buildSeen));
  }
  recordObservation(device: string, item: string, answer: Answer, note: string) {
    return this.apply(() => this.backend.recordObservation(this.id, device, item, answer, note));
  }
  addFinding(severity: Severity, text: string, items: string[], recommendation: string) {
    return this.apply(() => this.backend.addFinding(this.id, severity, text, items, recommendation));
  }
  addComment(target: CommentTarget, text: string) {
    return this.apply(() => this.backend.addComment(this.id, target, text));
  }
  resolveConflict(field: FieldRef, candidate: string) {
    return this.apply(() => this.backend.resolveConflict(this.id, field, candidate));
  }
  submit() {
    return this.apply(() => this.backend.submitInspection(this.id));
  }
  signOff(statement: string) {
    return this.apply(() => this.backend.signOff(this.id, statement));
  }

  // ----- what the screens read -----

  get conflicts(): FieldRef[] {
    return this.view ? conflictsOf(this.view) : [];
  }

  /** Sections answered once for the inspection. */
  get inspectionSections(): ChecklistSectionForApp[] {
    return (this.checklist?.sections ?? []).filter((s) => (s.scope ?? s.items[0]?.scope) === "inspection");
  }

  /** Sections answered once per sampled device (the Windows 10 endpoint checks). */
  get deviceSections(): ChecklistSectionForApp[] {
    return (this.checklist?.sections ?? []).filter((s) => (s.scope ?? s.items[0]?.scope) === "device");
  }

  item(id: string): ChecklistItemForApp | null {
    for (const s of this.checklist?.sections ?? []) for (const i of s.items) if (i.id === id) return i;
    return null;
  }

  /** An item's prompt, or its id when the checklist does not name it. */
  prompt(id: string): string {
    return this.item(id)?.prompt ?? id;
  }

  /**
   * How an item is answered, as the checklist `open_inspection` sent says (its item's
   * `answer`); an item it does not name, or a kind this build does not know, takes the
   * compliance answers.
   */
  answerSpec(item: string): AnswerSpec {
    const a = this.item(item)?.answer;
    if (!a || !KINDS.includes(a.kind)) return COMPLIANCE;
    if (a.kind === "number") return { kind: "number", unit: a.unit ?? null, min: a.min ?? null, max: a.max ?? null };
    return { kind: a.kind, unit: null };
  }

  /** answered / total for an inspection-scope section, from the view's progress. */
  progress(section: string): { answered: number; total: number } {
    const p = this.view?.progress.find((x) => x.section === section);
    if (p) return p;
    const s = this.checklist?.sections.find((x) => x.id === section);
    const total = s?.items.length ?? 0;
    const answered = s?.items.filter((i) => this.view?.responses[i.id]?.answer).length ?? 0;
    return { answered, total };
  }
}
