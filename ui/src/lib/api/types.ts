// The JSON the server sends (sync-server/src/api/openapi.json), as the dashboard reads it.

/** `{"role": "reviewer"}`, or `{"role": "trust-lead", "trust": "RJ1"}`. */
export interface Role {
  role: "inspector" | "reviewer" | "trust-lead" | "admin";
  trust?: string;
}

export interface Me {
  user: string;
  display_name: string;
  role: Role;
  device_id: number;
}

export type State = "draft" | "in_progress" | "submitted" | "shared_with_trust" | "closed" | "cancelled";
export const STATES: State[] = ["draft", "in_progress", "submitted", "shared_with_trust", "closed", "cancelled"];

export interface InspectionRecord {
  id: string;
  trust: string;
  sites: string[];
  checklist_id: string;
  checklist_version: string;
  checklist_sha256: string;
  state: State;
  response_doc: string;
  shared_at: string | null;
  created_at: string;
  created_by: string;
  assignees: string[];
}

export interface Page {
  items: InspectionRecord[];
  next: string | null;
}

export interface ListFilter {
  trust?: string;
  state?: State;
}

export interface Stamp {
  by: string;
  at: string;
}

export interface Candidate<T> extends Stamp {
  id: string;
  value: T;
  resolved?: Stamp;
}

/** A field that may hold concurrent values: more than one is a conflict. */
export interface Field<T> {
  values: Candidate<T>[];
}

export type Answer =
  | { kind: "met" }
  | { kind: "partly-met" }
  | { kind: "not-met" }
  | { kind: "not-applicable"; reason: string }
  | { kind: "number"; value: number }
  | { kind: "date"; value: string }
  | { kind: "text"; value: string };

export interface PhotoRef {
  hash: string;
  size: number;
  width: number;
  height: number;
  mime: string;
  caption: string;
  captured_at: string | null;
}

export interface Stamped<T> extends Stamp {
  value: T;
}

export interface ResponseView {
  answer: Field<Answer> | null;
  note: string;
  note_edited: Stamp | null;
  photos: Stamped<PhotoRef>[];
}

export interface Observation {
  answer: Answer;
  note: string;
}

export interface DeviceView {
  id: string;
  hostname: Field<string>;
  build_seen: Field<string>;
  added: Stamp;
  observations: Record<string, Field<Observation>>;
}

export type Severity = "low" | "medium" | "high" | "critical";

export interface FindingView {
  id: string;
  severity: Field<Severity>;
  text: string;
  recommendation: string;
  items: string[];
  created: Stamp;
  edited: Stamp;
}

/** What a comment is about. */
export type CommentTarget = { kind: "inspection" } | { kind: "item" | "finding" | "device"; id: string };

export interface Comment {
  id: string;
  target: CommentTarget;
  text: string;
  by: string;
  at: string;
}

/** A link of the sign-off chain: a sign-off, or a reviewer's reopening (its reason as
 *  the statement). Sealed links pin the document's heads and the SHA-256 of the signed
 *  content, and name the link before them. */
export interface Signoff {
  id: string;
  role: "lead_inspector" | "reviewer";
  kind?: "sign_off" | "reopen";
  statement: string;
  by: string;
  at: string;
  heads?: string[];
  content?: string;
  prev?: string;
  hash?: string;
}

/** One value a field held: `GET /api/v1/inspections/{id}/history`. */
export interface HistoryEntry {
  field: string;
  about: string | null;
  value: unknown;
  author: string;
  device: string | null;
  at: string;
  change: string;
}

export interface History {
  entries: HistoryEntry[];
  truncated: boolean;
}

export type HistorySubject = { item: string } | { finding: string } | { device: string };

export interface TeamMember {
  user: string;
  name: string;
  role: string;
}

export interface InspectionView {
  id: string;
  meta: {
    trust: string;
    sites: string[];
    checklist: { id: string; version: string; sha256: string };
    team: TeamMember[];
    created: Stamp;
    visit_start: string | null;
    visit_end: string | null;
    state: Field<State>;
  };
  responses: Record<string, ResponseView>;
  devices: DeviceView[];
  findings: FindingView[];
  comments: Comment[];
  signoffs: Signoff[];
  /** A lead inspector's sign-off stands: the signed parts are frozen. */
  frozen?: boolean;
  progress: { section: string; answered: number; total: number }[];
  conflicts: unknown[];
}

export interface TrustResponseView {
  inspection: string;
  findings: Record<string, Field<string>>;
  accuracy: unknown[];
}

export interface Detail {
  record: InspectionRecord;
  /** Null for a caller with no right to the document (admins). */
  inspection: InspectionView | null;
  trust_response: TrustResponseView | null;
}

export type Verdict =
  | "corroborated"
  | "contradicted"
  | "telemetry_silent"
  | "insufficient_coverage"
  | "no_telemetry"
  | "unanswered";

export interface SnapshotRef {
  id: number;
  as_of: string;
}

export interface ItemJoin {
  item: string;
  section: string;
  scope: "inspection" | "device";
  check: string;
  verdict: Verdict;
  answer: "met" | "partly_met" | "not_met" | "not_applicable" | null;
  devices_answered?: number;
  /** A device-scope item: each answering device's answer beside its own record (null
   *  verdict: unmanaged, not judged). The item's verdict is theirs; the counts are the
   *  trust's, as context. */
  judged_devices?: DeviceJudgement[];
  count: number | null;
  total: number | null;
  unknown: number | null;
  /** `endpoints.unsupported_os`: devices supported only with ESU evidence. */
  esu_only?: number;
  /** `endpoints.unsupported_os`: devices on platforms the lifecycle table does not cover. */
  not_judged?: number;
  /** The share (percent) of those counted that give data. */
  coverage: number | null;
  /** How the check judges this item, in words. */
  rule: string;
  /** The figures in words. */
  summary: string;
  /** Why the verdict is what it is, in one sentence. */
  reason: string;
  snapshot: SnapshotRef | null;
}

export interface DeviceJudgement {
  device: string;
  hostname: string;
  answer: "met" | "partly_met" | "not_met" | "not_applicable";
  verdict: Verdict | null;
  reason: string;
}

export type DeviceStatus = "matched" | "unmanaged" | "build_differs" | "stale" | "no_telemetry";

export interface DeviceMatch {
  device: string;
  hostname: string;
  build_seen: string;
  observed_build: number | null;
  status: DeviceStatus;
  stale: boolean;
  telemetry: {
    device_id: string;
    device_name: string;
    site: string | null;
    os_platform: string | null;
    os_version: string | null;
    os_build: number | null;
    last_seen: string | null;
    onboarding_status: string | null;
    health_status: string | null;
    os_edition: string | null;
  } | null;
  summary: string;
}

export interface Join {
  inspection: string;
  trust: string;
  sites: string[];
  snapshots: { endpoints: SnapshotRef | null; network: SnapshotRef | null; alerts: SnapshotRef | null };
  totals: Partial<Record<Verdict, number>>;
  items: ItemJoin[];
  devices: DeviceMatch[];
}

/** Devices by whether their OS still receives security updates. */
export interface SupportMix {
  supported: number;
  unsupported: number;
  /** Windows 10 22H2 past its end: supported only with ESU evidence. */
  esu_only: number;
  unknown: number;
}

export type Support = "supported" | "unsupported" | "esu_only" | "unknown";

/** `GET /api/v1/inspections/{id}/telemetry-summary`: the figures behind the trust's charts. */
export interface TelemetrySummary {
  trust: string;
  snapshots: { endpoints: SnapshotRef | null; alerts: SnapshotRef | null };
  endpoints: {
    devices: number;
    support: SupportMix;
    /** The largest OS platform and build groups, largest first (at most 12). */
    os: { os_platform: string; os_build: number | null; os_edition: string | null; devices: number; support: Support }[];
    /** Every group not listed in `os`, summed. */
    os_other: SupportMix;
    smb1: { enabled: number; disabled: number; unknown: number };
    onboarding: { onboarded: number; inactive: number; not_onboarded: number; discovered: number };
  } | null;
  alerts: {
    alerts: number;
    acknowledged: number;
    on_time: number;
    late: number;
    open_overdue: number;
    open_within_48h: number;
    overdue: number;
    median_hours_to_acknowledge: number | null;
    hours_to_acknowledge: { label: string; from_hours: number; to_hours: number | null; alerts: number }[];
  } | null;
}

/** `PUT .../responses/{finding}`: the response document as it now stands. */
export interface Responded {
  finding: string;
  trust_response: TrustResponseView;
}

/** What a corrective action was raised from. */
export type ActionSource = { kind: "finding"; finding: string } | { kind: "item"; item: string };

export type ActionStatus = "raised" | "proposed" | "sent_back" | "accepted" | "closed";

/** The trust's plan for an action. */
export interface ActionPlan {
  steps: string;
  owner_role: string;
  date: string;
}

/** One step of an action's way, as the server kept it (stamped by the server). */
export type ActionStep = (
  | ({ step: "raise"; source: ActionSource; what: string; priority: string; due: string })
  | ({ step: "propose" } & ActionPlan)
  | { step: "accept"; note?: string | null }
  | { step: "send_back"; note: string }
  | { step: "progress"; text: string; evidence: string[] }
  | { step: "close"; note: string }
  | { step: "check"; outcome: "done" | "partly" | "not_done"; note: string }
) & { by: string; at: string };

/** A step to ask for (`POST /api/v1/actions/{id}/steps`). */
export type NewActionStep =
  | ({ step: "propose" } & ActionPlan)
  | { step: "accept"; note?: string }
  | { step: "send_back"; note: string }
  | { step: "progress"; text: string; evidence: string[] }
  | { step: "close"; note: string };

/** A corrective action (`GET /api/v1/actions/{id}`). */
export interface CorrectiveAction {
  id: string;
  trust: string;
  inspection: string;
  source: ActionSource;
  what: string;
  priority: "low" | "medium" | "high" | "critical";
  due: string;
  status: ActionStatus;
  raised_by: string;
  raised_at: string;
  plan: ActionPlan | null;
  steps: ActionStep[];
  overdue: boolean;
}

/** One trust's endpoint figures in one snapshot (`GET /api/v1/national`). */
export interface EndpointPoint {
  as_of: string;
  devices: number;
  unsupported: number;
  /** 0 to 1. */
  unsupported_share: number;
  smb1_enabled: number;
  onboardable: number;
  onboarded: number;
  onboarded_share: number | null;
}

/** One trust's NHS cyber alert figures in one snapshot. */
export interface AlertPoint {
  as_of: string;
  alerts: number;
  on_time: number;
  overdue: number;
  on_time_share: number | null;
}

/** A trust's points, oldest first. */
export interface Trend {
  endpoints: EndpointPoint[];
  alerts: AlertPoint[];
}

/** `POST /api/v1/inspections`: a visit planned by a reviewer or an admin. */
export interface NewInspection {
  trust: string;
  sites: string[];
  /** `id` or `id@version`. */
  checklist: string;
  /** The team: the first is the lead inspector. */
  assign: string[];
  visit_start: string | null;
  visit_end: string | null;
}

/** One hit of `GET /api/v1/search`. */
export interface SearchHit {
  kind: "inspection" | "note" | "finding" | "comment" | "action";
  inspection: string;
  trust: string;
  /** The finding, comment or action; the item of a note; null for the inspection. */
  target: string | null;
  snippet: string;
  created_at: string;
}

/** `GET /api/v1/search`. */
export interface SearchResults {
  hits: SearchHit[];
  truncated: boolean;
}

/** A user as the admin pages show one. */
export interface AdminUser {
  name: string;
  display_name: string;
  role: "inspector" | "reviewer" | "trust-lead" | "admin";
  trust: string | null;
  disabled: boolean;
}

/** A one-time code for setting a password, shown once. */
export interface OneTimeCode {
  user: string;
  code: string;
  expires_at: string;
}

/** A device as the admin pages show one. */
export interface AdminDevice {
  id: number;
  user_id: number;
  user_name: string;
  name: string;
  created_at: string;
  last_seen: string | null;
  revoked: boolean;
  wipe_requested: string | null;
  wiped_at: string | null;
}

/** `GET /api/v1/audit` filters (all optional). */
export interface AuditFilter {
  user?: string;
  action?: string;
  inspection?: string;
  trust?: string;
  from?: string;
  to?: string;
  before?: number | null;
}

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  device: number | null;
  action: string;
  target: string;
  from: string;
  outcome: string;
  detail?: string;
}

/** `GET /api/v1/telemetry/imports`. */
export interface TelemetryImports {
  snapshots: { id: number; kind: string; as_of: string; sha256: string; rows: number; bytes: number; imported_at: string; imported_by: string }[];
  attempts: AuditEntry[];
}

export interface AuditPage {
  events: AuditEntry[];
  next: number | null;
}

/** A PDF report the server made and keeps (`POST /api/v1/inspections/{id}/reports`). */
export interface ReportMeta {
  sha256: string;
  inspection: string;
  /** Whose rights it was made under: `regulator` (every comment) or `trust`. */
  audience: "regulator" | "trust";
  made_by: string;
  made_at: string;
  size: number;
  pages: number;
}

/** A file the server made: an evidence pack. */
export interface Download {
  blob: Blob;
  sha256: string;
  name: string;
}

/** An inspection as the national page names it. */
export interface InspectionRef {
  id: string;
  state: State;
  created_at: string;
  shared_at: string | null;
}

/** One trust on the national page. */
export interface TrustRow {
  ods_code: string;
  name: string;
  trust_type: string | null;
  major_trauma_centre: boolean;
  region: string | null;
  /** The newest inspection, in any state. */
  latest_inspection: InspectionRef | null;
  /** The newest submitted (or shared, or closed) inspection, with its join's verdicts. */
  reported_inspection: (InspectionRef & { verdicts: Record<string, number> | null; contradicted: number | null }) | null;
  actions: { open: number; overdue: number };
  endpoints: EndpointPoint | null;
  alerts: AlertPoint | null;
  trend: Trend;
}

/** `GET /api/v1/national`. */
export interface National {
  endpoint_days: string[];
  alert_days: string[];
  regions: string[];
  trust_types: string[];
  today: string;
  trusts: TrustRow[];
}

/** `GET /api/v1/trusts/{code}`. */
export interface TrustPage {
  today: string;
  endpoint_days: string[];
  alert_days: string[];
  trust: TrustRow;
  summary: TelemetrySummary;
  inspections: InspectionRecord[];
  actions: CorrectiveAction[];
}
