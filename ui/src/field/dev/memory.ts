// An in-memory stand-in for the Tauri shell, with sample inspections: the field app in
// a plain browser (`npm run dev:field`) and a fake for component tests. It keeps the
// contract's shapes, not the core's rules: the real checks live in wardcheck-core.
import { checklist as bundled } from "../../lib/checklists";
import {
  AppError,
  MAX_PHOTO_BYTES,
  photoTooLargeMessage,
  type AnswerKind,
  type AppStatus,
  type Carried,
  type CheckOutcome,
  type ChecklistForApp,
  type CommentTarget,
  type FieldBackend,
  type FieldRef,
  type InspectionSummary,
  type OpenInspection,
  type PhotoAdded,
  type SyncStatus,
  type UpdateCheck,
  type UpdateInstalled,
} from "../../lib/api/field-types";
import type { Answer, Candidate, Field, History, HistoryEntry, HistorySubject, InspectionView, Severity, State } from "../../lib/api/types";

const CHECKLIST = "cqc-onsite-cyber";
const VERSION = "2026.1";

let clockMs = Date.parse("2026-11-29T09:00:00Z");
/** Each change a minute after the last: deterministic times for tests. */
function now(): string {
  clockMs += 60_000;
  return new Date(clockMs).toISOString();
}

let ids = 0;
function nextId(prefix = "00000000-0000-4000-8000-"): string {
  ids += 1;
  return `${prefix}${String(ids).padStart(12, "0")}`;
}

function field<T>(value: T, by: string, at = now()): Field<T> {
  return { values: [{ id: `${ids++}@actor`, value, by, at }] };
}

/**
 * The bundled checklist as the shell would send it: the shell carries the checklist
 * files, so this stand-in reads the copy compiled into the UI (the field app's screens
 * never do). Guidance, how to observe a device check, and number bounds the bundled copy
 * does not keep are made up here.
 */
export function sampleChecklist(): ChecklistForApp {
  const c = bundled(CHECKLIST, VERSION);
  if (!c) throw new Error(`${CHECKLIST}@${VERSION} is not bundled`);
  return {
    id: c.id,
    version: c.version,
    title: c.title,
    sections: c.sections.map((s) => ({
      id: s.id,
      title: s.title,
      scope: s.scope,
      items: s.items.map((i) => ({
        id: i.id,
        prompt: i.prompt,
        guidance: `Guidance for ${i.id}: what to look at, and what counts as met.`,
        references: [`Reference for ${i.id}`],
        telemetry: i.telemetry ? `Telemetry: ${i.telemetry}` : null,
        scope: s.scope,
        answer: answerKind(i.answer, i.unit),
        observe: s.scope === "device" ? `Settings on the device: look for ${i.id}.` : null,
        evidence: s.scope === "device" ? ["sampled-device"] : ["photo", "note"],
      })),
    })),
  };
}

function answerKind(kind: string, unit: string | null): AnswerKind {
  switch (kind) {
    case "number":
      return { kind: "number", min: unit === "%" ? 0 : null, max: unit === "%" ? 100 : null, unit };
    case "date":
    case "text":
      return { kind };
    default:
      return { kind: "compliance" };
  }
}

function emptyView(id: string, trust: string, sites: string[], checklist: ChecklistForApp, by: string): InspectionView {
  const responses: InspectionView["responses"] = {};
  for (const s of checklist.sections)
    for (const i of s.items) if (i.scope === "inspection") responses[i.id] = { answer: null, note: "", note_edited: null, photos: [] };
  const at = now();
  return {
    id,
    meta: {
      trust,
      sites,
      checklist: { id: checklist.id, version: checklist.version, sha256: "0".repeat(64) },
      team: [{ user: by, name: "Ann Inspector", role: "lead_inspector" }],
      created: { by: "admin", at },
      visit_start: "2026-11-30",
      visit_end: null,
      state: field<State>("in_progress", by, at),
    },
    responses,
    devices: [],
    findings: [],
    comments: [],
    signoffs: [],
    progress: [],
    conflicts: [],
  };
}

export interface MemoryOptions {
  /** Start signed in (the default) or not. */
  signedIn?: boolean;
  keystore?: AppStatus["keystore"];
  /** Seed a conflict on the first item of the first inspection. */
  conflict?: boolean;
}

export class MemoryBackend implements FieldBackend {
  readonly checklist = sampleChecklist();
  readonly views = new Map<string, InspectionView>();
  status: AppStatus;
  sync: SyncStatus;
  private listeners = new Set<(s: SyncStatus) => void>();
  private photos = new Map<string, Uint8Array>();
  user = "ann";

  constructor(opts: MemoryOptions = {}) {
    const keystore = opts.keystore ?? "test";
    this.status = {
      version: "0.1.0",
      keystore,
      keystore_error: keystore === "unavailable" ? "No Secret Service provider answered on the session bus." : null,
      signed_in:
        opts.signedIn === false
          ? null
          : { server: "http://127.0.0.1:8080", user: this.user, display_name: "Ann Inspector", role: "inspector", device_id: 1 },
    };
    this.sync = {
      state: this.status.signed_in ? "offline" : "signed_out",
      last_synced_at: null,
      pending_changes: 0,
      pending_photos: 0,
      pending_photo_bytes: 0,
      pending_checks: 0,
      upload: null,
      message: null,
      photos_fetched: 0,
      changes_received: 0,
      refused: [],
    };
    const a = emptyView("11111111-1111-4111-8111-111111111111", "RJ1", ["RJ121", "RJ122"], this.checklist, this.user);
    const b = emptyView("22222222-2222-4222-8222-222222222222", "RQM", ["RQM01"], this.checklist, this.user);
    this.views.set(a.id, a);
    this.views.set(b.id, b);
    if (opts.conflict !== false) {
      const item = this.checklist.sections[0].items[0].id;
      const at = now();
      a.responses[item].answer = {
        values: [
          { id: "7@aaaa", value: { kind: "met" }, by: "ann", at },
          { id: "7@bbbb", value: { kind: "not-met" }, by: "rev", at },
        ],
      };
    }
    for (const v of this.views.values()) this.derive(v);
  }

  // ----- the contract -----

  async appStatus(): Promise<AppStatus> {
    return structuredClone(this.status);
  }

  async signIn(server: string, user: string, password: string): Promise<AppStatus> {
    if (password !== "password") throw new AppError("unauthorized", "The user name or password is wrong.");
    this.status.signed_in = { server, user, display_name: user, role: "inspector", device_id: 1 };
    this.emit({ state: "offline" });
    return this.appStatus();
  }

  async signOut(): Promise<AppStatus> {
    this.status.signed_in = null;
    this.emit({ state: "signed_out" });
    return this.appStatus();
  }

  async listInspections(): Promise<InspectionSummary[]> {
    this.signedIn();
    return [...this.views.values()].map((v) => ({
      id: v.id,
      trust: v.meta.trust,
      sites: v.meta.sites,
      state: v.meta.state.values[0].value,
      checklist_title: this.checklist.title,
      created_at: v.meta.created.at,
      visit_start: v.meta.visit_start,
      answered: v.progress.reduce((n, p) => n + p.answered, 0),
      total: v.progress.reduce((n, p) => n + p.total, 0),
      conflicts: v.conflicts.length,
      unavailable: null,
    }));
  }

  async openInspection(id: string): Promise<OpenInspection> {
    return { view: structuredClone(this.view(id)), checklist: structuredClone(this.checklist) };
  }

  async setAnswer(id: string, item: string, answer: Answer): Promise<InspectionView> {
    return this.change(id, (v) => {
      const r = v.responses[item];
      if (!r) throw new AppError("invalid", `unknown checklist item "${item}"`);
      checkAnswer(item, answer);
      r.answer = field(answer, this.user);
    });
  }

  async editNote(id: string, item: string, text: string): Promise<InspectionView> {
    return this.change(id, (v) => {
      const r = v.responses[item];
      if (!r) throw new AppError("invalid", `unknown checklist item "${item}"`);
      r.note = text;
      r.note_edited = { by: this.user, at: now() };
    });
  }

  async addPhoto(id: string, item: string, name: string, bytes: Uint8Array): Promise<PhotoAdded> {
    if (bytes.length > MAX_PHOTO_BYTES) throw new AppError("too_large", photoTooLargeMessage(bytes.length));
    const sha256 = await hash(bytes);
    this.photos.set(sha256, bytes);
    const view = await this.change(id, (v) => {
      const r = v.responses[item];
      if (!r) throw new AppError("invalid", `unknown checklist item "${item}"`);
      if (!r.photos.some((p) => p.value.hash === sha256))
        r.photos.push({
          value: { hash: sha256, size: bytes.length, width: 4000, height: 3000, mime: "image/jpeg", caption: name, captured_at: null },
          by: this.user,
          at: now(),
        });
    });
    this.emit({ pending_photos: this.sync.pending_photos + 1, pending_photo_bytes: this.sync.pending_photo_bytes + bytes.length });
    return { sha256, bytes: bytes.length, view };
  }

  async photoThumbnail(sha256: string): Promise<string> {
    const bytes = this.photos.get(sha256);
    if (!bytes) throw new AppError("not_found", `Photo ${sha256} is not on this device.`);
    let bin = "";
    for (const b of bytes.subarray(0, 200_000)) bin += String.fromCharCode(b);
    return `data:image/jpeg;base64,${btoa(bin)}`;
  }

  async addDevice(id: string, hostname: string, buildSeen: string): Promise<InspectionView> {
    return this.change(id, (v) => {
      if (!hostname.trim()) throw new AppError("invalid", "hostname must not be empty");
      v.devices.push({
        id: nextId(),
        hostname: field(hostname, this.user),
        build_seen: field(buildSeen, this.user),
        added: { by: this.user, at: now() },
        observations: {},
      });
    });
  }

  async recordObservation(id: string, device: string, item: string, answer: Answer, note: string): Promise<InspectionView> {
    return this.change(id, (v) => {
      const d = v.devices.find((x) => x.id === device);
      if (!d) throw new AppError("not_found", `unknown device ${device}`);
      checkAnswer(item, answer);
      d.observations[item] = field({ answer, note }, this.user);
    });
  }

  async addFinding(id: string, severity: Severity, text: string, items: string[], recommendation: string): Promise<InspectionView> {
    return this.change(id, (v) => {
      const at = now();
      v.findings.push({ id: nextId(), severity: field(severity, this.user, at), text, recommendation, items, created: { by: this.user, at }, edited: { by: this.user, at } });
    });
  }

  async addComment(id: string, target: CommentTarget, text: string): Promise<InspectionView> {
    return this.change(id, (v) => {
      v.comments.push({ id: nextId(), target, text, by: this.user, at: now() });
    });
  }

  async resolveConflict(id: string, ref: FieldRef, candidate: string): Promise<InspectionView> {
    return this.change(id, (v) => {
      const f = fieldOf(v, ref);
      const c = f?.values.find((x) => x.id === candidate);
      if (!f || !c) throw new AppError("invalid", `no value "${candidate}" to pick`);
      f.values = [{ ...c, resolved: { by: this.user, at: now() } } as Candidate<never>];
    });
  }

  async submitInspection(id: string): Promise<InspectionView> {
    return this.change(id, (v) => {
      const s = v.meta.state.values[0].value;
      if (s !== "in_progress" && s !== "draft") throw new AppError("invalid", `an inspection cannot go from ${s} to submitted`);
      // The shell takes a draft through in progress (the core has no draft-to-submitted
      // step); only the end state shows here.
      v.meta.state = field<State>("submitted", this.user);
    });
  }

  /** The dev backend keeps no change log: the history is what each field holds now. */
  async history(id: string, subject: HistorySubject): Promise<History> {
    const v = this.view(id);
    const entries: HistoryEntry[] = [];
    if ("item" in subject) {
      for (const c of v.responses[subject.item]?.answer?.values ?? []) {
        entries.push({ field: "answer", about: null, value: { value: c.value, by: c.by, at: c.at }, author: c.by, device: null, at: c.at, change: c.id });
      }
    }
    return { entries, truncated: false };
  }

  async signOff(id: string, statement: string): Promise<InspectionView> {
    return this.change(id, (v) => {
      if (v.meta.state.values[0].value !== "submitted") throw new AppError("invalid", "signing off needs the inspection to be submitted");
      // As the shell does: a reviewer signs as reviewer, anyone else as lead inspector.
      const role = this.status.signed_in?.role === "reviewer" ? "reviewer" : "lead_inspector";
      v.signoffs.push({ id: nextId(), role, statement, by: this.user, at: now() });
    });
  }

  /** The dev backend has no server: it offers no update. */
  async updateCheck(): Promise<UpdateCheck> {
    if (!this.status.signed_in) throw new AppError("not_signed_in", "Sign in first.");
    return { current: this.status.version, available: null };
  }

  async updateInstall(): Promise<UpdateInstalled> {
    throw new AppError("not_found", "The server offers no newer version of the app now.");
  }

  async syncStatus(): Promise<SyncStatus> {
    return structuredClone(this.sync);
  }

  /** No earlier visits in the dev backend: nothing carried over. */
  async carriedActions(_id: string): Promise<Carried> {
    return { taken_at: null, actions: [] };
  }

  async checkAction(_id: string, _action: string, _outcome: CheckOutcome, _note: string): Promise<Carried> {
    throw new AppError("not_found", "no such open action of an earlier visit to this trust");
  }

  /** Plays a sync: uploads the pending photos in steps, then reports synced. */
  async takeServersCopy(document: string): Promise<SyncStatus> {
    this.emit({ refused: this.sync.refused.filter((r) => r.document !== document) });
    return this.syncStatus();
  }

  async syncNow(): Promise<SyncStatus> {
    if (!this.status.signed_in) return this.syncStatus();
    const photos = this.sync.pending_photos;
    const total = this.sync.pending_photo_bytes;
    let step = 0;
    const steps = Math.max(1, photos * 3);
    this.emit({ state: "syncing", upload: photos ? { done_photos: 0, total_photos: photos, done_bytes: 0, total_bytes: total } : null });
    const timer = setInterval(() => {
      step += 1;
      if (step >= steps) {
        clearInterval(timer);
        this.emit({ state: "synced", last_synced_at: new Date().toISOString(), pending_changes: 0, pending_photos: 0, pending_photo_bytes: 0, upload: null });
        return;
      }
      this.emit({
        upload: photos
          ? { done_photos: Math.floor((step / steps) * photos), total_photos: photos, done_bytes: Math.floor((step / steps) * total), total_bytes: total }
          : null,
      });
    }, 700);
    return this.syncStatus();
  }

  async onSyncStatus(cb: (s: SyncStatus) => void): Promise<() => void> {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  // ----- for tests and the dev page -----

  /**
   * A photo another device took: in the view (it came with a sync), its bytes on the
   * server only, so `photoThumbnail` answers `not_found` as the shell does.
   */
  photoFromAnotherDevice(id: string, item: string, sha256: string, by = "rev"): void {
    const r = this.view(id).responses[item];
    if (!r) throw new Error(`unknown checklist item "${item}"`);
    r.photos.push({
      value: { hash: sha256, size: 2_400_000, width: 4000, height: 3000, mime: "image/jpeg", caption: "", captured_at: null },
      by,
      at: now(),
    });
  }

  /** The shell has fetched another device's photo from the server: its bytes are here
   * now, and `photos_fetched` moves, as the shell's uploader does. */
  photoArrives(sha256: string, bytes: Uint8Array): void {
    this.photos.set(sha256, bytes);
    this.emit({ photos_fetched: this.sync.photos_fetched + 1 });
  }

  /** Sets the sync status and tells every listener, as the shell's worker does. */
  emit(patch: Partial<SyncStatus>): void {
    this.sync = { ...this.sync, ...patch };
    for (const l of this.listeners) l(structuredClone(this.sync));
  }

  private signedIn() {
    if (!this.status.signed_in) throw new AppError("not_signed_in", "Sign in first.");
  }

  private view(id: string): InspectionView {
    this.signedIn();
    const v = this.views.get(id);
    if (!v) throw new AppError("not_found", "There is no such inspection on this device.");
    return v;
  }

  private async change(id: string, edit: (v: InspectionView) => void): Promise<InspectionView> {
    const v = this.view(id);
    edit(v);
    this.derive(v);
    this.emit({ pending_changes: this.sync.pending_changes + 1 });
    return structuredClone(v);
  }

  /** Progress and conflicts, as the core's view computes them. */
  private derive(v: InspectionView): void {
    v.progress = this.checklist.sections
      .filter((s) => s.items.some((i) => i.scope === "inspection"))
      .map((s) => ({ section: s.id, total: s.items.length, answered: s.items.filter((i) => v.responses[i.id]?.answer).length }));
    const conflicts: FieldRef[] = [];
    if (v.meta.state.values.length > 1) conflicts.push({ field: "state" });
    for (const [item, r] of Object.entries(v.responses)) if ((r.answer?.values.length ?? 0) > 1) conflicts.push({ field: "answer", item });
    for (const d of v.devices) {
      if (d.hostname.values.length > 1) conflicts.push({ field: "device_hostname", device: d.id });
      if (d.build_seen.values.length > 1) conflicts.push({ field: "device_build", device: d.id });
      for (const [item, o] of Object.entries(d.observations)) if (o.values.length > 1) conflicts.push({ field: "observation", device: d.id, item });
    }
    for (const f of v.findings) if (f.severity.values.length > 1) conflicts.push({ field: "finding_severity", finding: f.id });
    v.conflicts = conflicts;
  }
}

function checkAnswer(item: string, a: Answer) {
  if (a.kind === "not-applicable" && !a.reason.trim()) throw new AppError("invalid", `'not applicable' for item "${item}" needs a reason`);
}

function fieldOf(v: InspectionView, ref: FieldRef): Field<unknown> | null {
  switch (ref.field) {
    case "state":
      return v.meta.state;
    case "answer":
      return v.responses[ref.item]?.answer ?? null;
    case "device_hostname":
      return v.devices.find((d) => d.id === ref.device)?.hostname ?? null;
    case "device_build":
      return v.devices.find((d) => d.id === ref.device)?.build_seen ?? null;
    case "observation":
      return v.devices.find((d) => d.id === ref.device)?.observations[ref.item] ?? null;
    case "finding_severity":
      return v.findings.find((f) => f.id === ref.finding)?.severity ?? null;
  }
}

async function hash(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as BufferSource);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
