// The one interface the dashboard's components use to reach a backend. `http.ts`
// implements it over the server's JSON API (the review dashboard, signed in with the
// HttpOnly cookie). The field app has its own, `FieldBackend` (field-types.ts), over the
// Tauri commands.
import type {
  ActionSource,
  AdminDevice,
  AdminUser,
  AuditFilter,
  AuditPage,
  OneTimeCode,
  TelemetryImports,
  Comment,
  CorrectiveAction,
  Download,
  CommentTarget,
  Detail,
  History,
  HistorySubject,
  InspectionRecord,
  Join,
  ListFilter,
  Me,
  National,
  NewInspection,
  NewActionStep,
  Page,
  ReportMeta,
  Responded,
  SearchResults,
  Signoff,
  State,
  TelemetrySummary,
  TrustPage,
} from "./types";

/** A failed call, with the server's stable error code (`not_found`, `unauthorized`...). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface Backend {
  /** Signs in; the session lives in an HttpOnly cookie the page never sees. */
  signIn(user: string, password: string): Promise<Me>;
  /** Signs out: the server revokes this device's token and clears the cookie. */
  signOut(): Promise<void>;
  /** Who is signed in, or null when no one is. */
  me(): Promise<Me | null>;
  /** One page of the inspections the caller may see. */
  listInspections(filter: ListFilter, after?: string | null): Promise<Page>;
  /** Every page of the inspections the caller may see. */
  allInspections(filter: ListFilter): Promise<InspectionRecord[]>;
  inspection(id: string): Promise<Detail>;
  /** The answers beside telemetry; null when the join is not available to the caller. */
  join(id: string): Promise<Join | null>;
  /** The figures behind the trust's charts; null when not available to the caller. */
  telemetrySummary(id: string): Promise<TelemetrySummary | null>;
  /** A reviewer's comment on the inspection, an item, a finding or a device. */
  comment(id: string, target: CommentTarget, text: string): Promise<Comment>;
  /** A reviewer's sign-off of a submitted inspection. */
  signOff(id: string, statement: string): Promise<Signoff>;
  /** A reviewer reopens a signed inspection, with a reason; a new sign-off is then needed. */
  reopen(id: string, reason: string): Promise<void>;
  /** Every value a field of one item, finding or device has held, with author and time. */
  history(id: string, subject: HistorySubject): Promise<History>;
  /** Moves the inspection through its life (reviewers; assigned inspectors). */
  changeState(id: string, state: State): Promise<InspectionRecord>;
  /** Lets the inspection's trust lead read it (reviewers and admins). */
  share(id: string): Promise<InspectionRecord>;
  /** The trust lead's response to a finding (replaces an earlier one). */
  respond(id: string, finding: string, text: string): Promise<Responded>;
  /** The corrective actions the caller may see (of one trust, if given). */
  actions(trust?: string | null): Promise<CorrectiveAction[]>;
  /** Raises a corrective action from a finding or a failed item of a submitted inspection. */
  raiseAction(id: string, source: ActionSource, what: string, due: string): Promise<CorrectiveAction>;
  /** The next step of an action. */
  actionStep(action: string, step: NewActionStep): Promise<CorrectiveAction>;
  /** Creates (plans) an inspection: reviewers and admins. */
  createInspection(plan: NewInspection): Promise<InspectionRecord>;
  /** Calls a planned visit off (reviewers and admins, a draft only). */
  cancelVisit(id: string): Promise<InspectionRecord>;
  /** Moves a planned visit to new dates (reviewers and admins, a draft only). */
  reschedule(id: string, start: string, end: string | null): Promise<{ visit_start: string; visit_end: string | null }>;
  /** Words across inspections, findings, notes, comments and actions the caller may see. */
  search(q: string): Promise<SearchResults>;
  /** Every trust the caller sees, with its headline figures and trends (filters optional). */
  national(region?: string | null, trustType?: string | null): Promise<National>;
  /** One trust's page (no inspection needed). */
  trust(code: string): Promise<TrustPage>;
  /** Renders the inspection's PDF report on the server, which keeps it under its SHA-256. */
  makeReport(id: string): Promise<ReportMeta>;
  /** The reports kept for an inspection that the caller may read, newest first. */
  reports(id: string): Promise<ReportMeta[]>;
  /** The address of the inspection's CSV (answers and findings), made and audited by the server. */
  inspectionCsvUrl(id: string): string;
  /** The address of a kept report's PDF. */
  reportUrl(sha256: string): string;
  /** The inspection's evidence pack (ZIP with a manifest of SHA-256s). */
  evidencePack(id: string): Promise<Download>;
  /** Admins: every user. */
  users(): Promise<AdminUser[]>;
  /** Admins: adds a user; the answer's one-time code sets their password. */
  addUser(name: string, displayName: string, role: string, trust: string | null): Promise<OneTimeCode>;
  /** Admins: disables or re-enables a user. */
  setUserDisabled(name: string, disabled: boolean): Promise<AdminUser>;
  /** Admins: a new one-time code for a user (a password reset). */
  passwordCode(name: string): Promise<OneTimeCode>;
  /** Anyone with a one-time code: sets the password. */
  setPassword(user: string, code: string, password: string): Promise<void>;
  /** Admins: every device. */
  devices(): Promise<AdminDevice[]>;
  /** Admins: revokes a device's token, and with `wipe` has it delete its store. */
  revokeDevice(id: number, wipe: boolean): Promise<void>;
  /** Admins: a page of the audit log. */
  audit(filter: AuditFilter): Promise<AuditPage>;
  /** Admins: the address of the same search as CSV. */
  auditCsvUrl(filter: AuditFilter): string;
  /** Admins: telemetry snapshots imported, and import attempts with their errors. */
  telemetryImports(): Promise<TelemetryImports>;
  /** Uploads a photo (evidence) under its SHA-256; returns the hash. */
  uploadPhoto(bytes: ArrayBuffer): Promise<string>;
  /** The address of a stored photo (same origin, so the cookie goes with it). */
  photoUrl(sha256: string): string;
}
